"""Give a ClapEncoder its OpenVINO towers: load the verified export, or make it once, or say why not.

`audio_tower(encoder)` and `text_tower(encoder)` return the OpenVINO tower the encoder should
run, or None when it should stay on torch. With `--runtime openvino` a tower that cannot be
had (the export failed its check, or could not be made) is an error saying what to do; with
`auto` it is a logged fallback to torch, and so is an audio export that was slower than torch
on this machine when it was made. A failed export is remembered in the cache folder, so later
processes do not pay for it again (delete the folder to retry).
"""

from __future__ import annotations

import logging

from . import RuntimeUnavailable, cache

log = logging.getLogger(__name__)


def _refuse_or_fallback(encoder, tower: str, reason: str) -> None:
    if encoder.runtime_requested == "openvino":
        raise RuntimeUnavailable(f"the OpenVINO {tower} tower of this checkpoint cannot be used ({reason}); "
                                 "use --runtime torch")
    log.warning("OpenVINO %s tower not used (%s); running it on torch", tower, reason)


def audio_tower(encoder):
    from . import ov_audio

    precision = encoder.precision
    tower = ov_audio.load(encoder.path, precision)
    if tower is None:
        failed = cache.failed_before(ov_audio.facts(encoder.path, precision))
        if failed:
            _refuse_or_fallback(encoder, "audio", failed)
            return None
        log.info("exporting the audio tower of %s to OpenVINO (once per checkpoint)", encoder.model_id)
        try:
            ov_audio.export(encoder.path, precision, load_fp32=lambda: encoder.load_torch_tower("audio", "fp32"),
                            mel_fn=encoder.frontend.mel, torch_rate=_torch_rate(encoder))
        except (RuntimeError, OSError, ValueError) as exc:
            _refuse_or_fallback(encoder, "audio", str(exc).splitlines()[0][:300])
            return None
        tower = ov_audio.load(encoder.path, precision)
        if tower is None:
            _refuse_or_fallback(encoder, "audio", "its cache entry could not be read back")
            return None
    if encoder.runtime_requested == "auto" and not ov_audio.faster_than_torch(tower.meta):
        log.info("OpenVINO measured slower than torch for this checkpoint here; auto runs torch")
        return None
    return tower


def _torch_rate(encoder):
    """A function timing torch at the precision the encoder would run it, for `auto`'s choice."""

    def run(mel):
        import torch

        model = encoder.load_torch_tower("audio", encoder.precision)
        dtype = next(model.parameters()).dtype
        with torch.inference_mode():
            model(input_features=mel[:, None].to(dtype).contiguous(),
                  is_longer=torch.zeros(mel.shape[0], 1, dtype=torch.bool))

    return run


def text_tower(encoder):
    """The verified OpenVINO text tower at the encoder's precision; where a bf16 export fails its
    check (bf16 text vectors further from fp32 than the tolerance, as with some checkpoints),
    the same tower in fp32: a query is one short sequence, and fp32 on OpenVINO still keeps
    torch out of it, where falling back to torch would import it."""
    from . import ov_text

    reason = None
    for precision in ov_text.precisions(encoder.precision):
        tower = ov_text.load(encoder.path, precision)
        if tower is not None:
            return tower
        reason = cache.failed_before(ov_text.facts(encoder.path, precision))
        if reason:
            continue
        log.info("exporting the text tower of %s to OpenVINO in %s (once per checkpoint)",
                 encoder.model_id, precision)
        try:
            ov_text.export(encoder.path, precision, load_fp32=lambda: encoder.load_torch_tower("text", "fp32"),
                           hf_tokenizer=encoder.hf_tokenizer())
        except (RuntimeError, OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0][:300]
            continue
        tower = ov_text.load(encoder.path, precision)
        if tower is not None:
            return tower
        reason = "its cache entry could not be read back"
    _refuse_or_fallback(encoder, "text", reason)
    return None


def int8_tower(encoder):
    """The index's int8 audio model (made by `prepare_int8` in a build), or an error saying how."""
    from . import RuntimeUnavailable, int8
    from .ov_audio import OvAudioTower

    found = int8.read(encoder.int8_dir, int8.checkpoint_key(encoder.path)) if encoder.int8_dir else None
    if found is None:
        raise RuntimeUnavailable("this index has no int8 model for this checkpoint yet: "
                                 "run sfx-index build --precision int8 on your library first")
    xml, meta = found
    return OvAudioTower(xml, "int8", meta)


def prepare_int8(encoder, files, echo) -> dict:
    """Make the index's int8 model when missing (calibrated on windows of `files`), and print
    its fidelity report with `echo` before it is used. Returns the model's meta."""
    from . import RuntimeUnavailable, int8

    key = int8.checkpoint_key(encoder.path)
    found = int8.read(encoder.int8_dir, key)
    if found is None:
        windows = int8.calibration_windows(files)
        if len(windows) < 2:
            raise RuntimeUnavailable("--precision int8 calibrates on your library's audio: "
                                     "no readable audio found yet; build in float first")
        echo(f"calibrating the int8 audio model on {len(windows)} windows of your library (once per index)")
        features = encoder.frontend(windows)[0]
        float_tower = audio_tower_float(encoder)
        try:
            meta = int8.quantize(float_tower.path, features, encoder.int8_dir / int8.FOLDER, key, float_tower)
        except ImportError:
            raise RuntimeUnavailable("--precision int8 needs NNCF: pip install 'sfx-index[int8]'") from None
    else:
        meta = found[1]
    for line in int8.report_lines(meta["fidelity"], meta.get("reference", "the float model")):
        echo(line)
    return meta


def audio_tower_float(encoder):
    """The float OpenVINO audio tower of the encoder's checkpoint (the int8 model's reference)."""
    saved = encoder.runtime_requested
    encoder.runtime_requested = "openvino"
    try:
        tower = audio_tower(encoder)
    finally:
        encoder.runtime_requested = saved
    return tower

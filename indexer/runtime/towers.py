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
    from . import ov_text

    precision = encoder.precision
    tower = ov_text.load(encoder.path, precision)
    if tower is not None:
        return tower
    failed = cache.failed_before(ov_text.facts(encoder.path, precision))
    if failed:
        _refuse_or_fallback(encoder, "text", failed)
        return None
    log.info("exporting the text tower of %s to OpenVINO (once per checkpoint)", encoder.model_id)
    try:
        ov_text.export(encoder.path, precision, load_fp32=lambda: encoder.load_torch_tower("text", "fp32"),
                       hf_tokenizer=encoder.hf_tokenizer())
    except (RuntimeError, OSError, ValueError) as exc:
        _refuse_or_fallback(encoder, "text", str(exc).splitlines()[0][:300])
        return None
    tower = ov_text.load(encoder.path, precision)
    if tower is None:
        _refuse_or_fallback(encoder, "text", "its cache entry could not be read back")
    return tower

"""Finding a CLAP checkpoint and its preprocessor without loading any weights.

A model is a Hugging Face id or a local directory. An id is resolved to its snapshot in the
Hugging Face cache first (no network when it is there) and downloaded only when missing and
HF_HUB_OFFLINE is not set. `load_frontend` gives worker processes the checkpoint's frontend
(the preprocessor config that is also the batched log-mel, indexer.mel) and the fingerprint the
catalog records, so that a decode worker or a no-op build never touches the weights.
`indexer.clap` loads the towers and re-exports these names.

Importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

from .config import WINDOW_SAMPLES, UserError

# Keys of config.json that say how a file was written, not what the model computes.
_VOLATILE_CONFIG_KEYS = {"transformers_version", "_name_or_path", "_commit_hash"}
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")
_HINT = ("point --model or SFX_MODEL at a local checkpoint directory "
         "(for example one made by scripts/make_random_clap.py)")


class ModelLoadError(UserError):
    """The model cannot be found or is not a usable CLAP checkpoint (one line, says what to do)."""


# --- finding a checkpoint ----------------------------------------------------------------------

def _offline() -> bool:
    # Read the environment now: huggingface_hub caches HF_HUB_OFFLINE at its import.
    value = os.environ.get("HF_HUB_OFFLINE", "")
    if value.strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    try:
        from huggingface_hub import constants
        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - hub not installed
        return False


def resolve_checkpoint(model: str) -> Path:
    """The local directory holding `model` (an HF id or a directory); ModelLoadError if none."""
    path = Path(model).expanduser()
    if path.is_dir():
        return _check_dir(path.resolve(), model)
    if path.exists() or model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ModelLoadError(f"model directory '{model}' does not exist; {_HINT}")
    from . import models

    snap = cached_snapshot(model)
    if snap is None:
        if _offline():
            raise ModelLoadError(
                f"model '{model}' is not in the Hugging Face cache and HF_HUB_OFFLINE is set; {_HINT}")
        try:
            with quiet_transformers():
                snap = models.pull(model, progress=False, echo=lambda msg: None)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, UserError) else type(exc).__name__
            raise ModelLoadError(
                f"model '{model}' is not in the Hugging Face cache and cannot be downloaded "
                f"({reason}); {_HINT}") from None
    return _check_dir(Path(snap), model)


def cached_snapshot(model: str) -> Path | None:
    """The Hugging Face cache's snapshot of the model id `model`, or None; never downloads."""
    from huggingface_hub import snapshot_download

    from . import models

    try:  # the cache as the environment says now (huggingface_hub read it at its import)
        return Path(snapshot_download(model, local_files_only=True, cache_dir=models.hub_cache_dir()))
    except Exception:  # not cached, or not a repository id
        return None


def _check_dir(path: Path, model: str) -> Path:
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise ModelLoadError(f"'{model}' is not a model directory (no config.json); {_HINT}")
    try:
        cfg = json.loads(cfg_file.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"'{model}' has an unreadable config.json ({exc}); {_HINT}") from None
    kind = cfg.get("model_type") if isinstance(cfg, dict) else None
    if kind != "clap":
        raise ModelLoadError(f"'{model}' is a '{kind}' checkpoint, not CLAP (model_type 'clap'); {_HINT}")
    if not (path / "preprocessor_config.json").is_file() and not _nested_feature_config(path):
        raise ModelLoadError(f"'{model}' has no preprocessor_config.json (nor a processor_config.json holding "
                             f"the feature extractor); the checkpoint is incomplete; {_HINT}")
    if not any((path / f).is_file() for f in _WEIGHT_FILES):
        raise ModelLoadError(f"'{model}' has a CLAP config but no weights (model.safetensors); "
                             f"the checkpoint is incomplete; {_HINT}")
    return path


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def _nested_feature_config(ckpt: Path) -> dict | None:
    """The feature extractor inside processor_config.json, as transformers 5's
    `ClapProcessor.save_pretrained` writes it (with no preprocessor_config.json)."""
    try:
        nested = read_json(ckpt / "processor_config.json").get("feature_extractor")
    except (OSError, ValueError, AttributeError):
        return None
    return nested if isinstance(nested, dict) else None


def feature_config(ckpt: Path) -> dict:
    """The checkpoint's ClapFeatureExtractor settings, from either file transformers writes."""
    if (ckpt / "preprocessor_config.json").is_file():
        return read_json(ckpt / "preprocessor_config.json")
    nested = _nested_feature_config(ckpt)
    if nested is None:
        raise ModelLoadError(f"'{ckpt}' has no feature extractor config; {_HINT}")
    return nested


def checkpoint_fingerprint(model: str, ckpt: Path, fe_config: dict, frontend_settings: dict) -> dict:
    cfg = {k: v for k, v in read_json(ckpt / "config.json").items() if k not in _VOLATILE_CONFIG_KEYS}
    canon = json.dumps({"config": cfg, "preprocessor": fe_config}, sort_keys=True, separators=(",", ":"))
    is_dir = Path(model).expanduser().is_dir()
    return {
        "model_id": str(ckpt) if is_dir else model,
        "config_hash": hashlib.sha256(canon.encode()).hexdigest(),
        "frontend": frontend_settings,
    }


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports, warnings and progress bars for the duration."""
    import warnings

    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


# --- the frontend ------------------------------------------------------------------------------

class ClapFrontend(dict):
    """A checkpoint's preprocessor config (a plain dict, picklable for worker processes) that is
    also the frontend: `frontend(windows, n_real=None) -> (input_features, is_longer)`.

    input_features is (B, 4, 1001, 64) for fused checkpoints (the mel stacked 4 times, as
    ClapFeatureExtractor does for clips of at most 10 s) and (B, 1, 1001, 64) for unfused ones.
    """

    @property
    def fused(self) -> bool:
        return self.get("truncation", "fusion") == "fusion"

    @property
    def max_samples(self) -> int:
        return int(self.get("nb_max_samples") or int(self.get("max_length_s", 10)) * int(self.get("sampling_rate", 48000)))

    def log_mel(self):
        fe = self.__dict__.get("_mel")
        if fe is None:
            from .mel import LogMelFrontend

            fe = self.__dict__["_mel"] = LogMelFrontend.from_config(self)
        return fe

    def __reduce__(self):  # pickle as the config alone; the filters are rebuilt on use
        return (ClapFrontend, (dict(self),))

    def settings(self) -> dict:
        from .melconfig import (
            settings_from_config,  # torch-free: a no-op build needs only this
        )

        s = settings_from_config(self)
        s.update(channels=4 if self.fused else 1, is_longer="from_length", padding=self.get("padding", "repeatpad"))
        return s

    def is_longer(self, n: int, n_real=None):
        import numpy as np

        if n_real is None:
            return np.zeros(n, dtype=bool)
        n_real = np.asarray(n_real).reshape(-1)
        if n_real.shape[0] != n:
            raise ValueError(f"n_real has {n_real.shape[0]} entries for {n} windows")
        return n_real > self.max_samples

    def mel(self, windows):
        """(B, 480000) float32 -> (B, 1001, 64) log-mel, a torch tensor."""
        import numpy as np
        import torch

        x = torch.as_tensor(np.ascontiguousarray(windows, dtype=np.float32) if not torch.is_tensor(windows) else windows)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != WINDOW_SAMPLES:
            raise ValueError(f"windows must be (n, {WINDOW_SAMPLES}) at 48 kHz, got shape {tuple(x.shape)}")
        return self.log_mel()(x)

    def __call__(self, windows, n_real=None):
        mel = self.mel(windows)
        longer = self.is_longer(mel.shape[0], n_real)
        feats = mel[:, None].expand(-1, 4, -1, -1) if self.fused else mel[:, None]
        return feats.contiguous().numpy(), longer


def load_frontend(model: str) -> tuple[ClapFrontend, dict]:
    """(frontend, fingerprint) of `model` without loading any weights (for worker processes)."""
    ckpt = resolve_checkpoint(model)
    frontend = ClapFrontend(feature_config(ckpt))
    return frontend, checkpoint_fingerprint(model, ckpt, dict(frontend), frontend.settings())


# --- the logit scales, read without building the model -------------------------------------------

def read_logit_scales(ckpt: Path) -> dict[str, float]:
    """exp() of logit_scale_a / logit_scale_t, read straight from the weights file (no model
    built): safetensors, else pytorch_model.bin (repositories without safetensors), memory-mapped."""
    import math

    names = ("logit_scale_a", "logit_scale_t")
    safetensors = (ckpt / "model.safetensors").is_file() or (ckpt / "model.safetensors.index.json").is_file()
    base = "model.safetensors" if safetensors else "pytorch_model.bin"
    index = ckpt / f"{base}.index.json"
    files = {n: read_json(index)["weight_map"][n] if index.is_file() else base for n in names}
    out = {}
    try:
        for n in names:
            out[n] = float(math.exp(float(_first_value(ckpt / files[n], n, safetensors))))
    except Exception as exc:
        raise ModelLoadError(f"cannot read {', '.join(names)} from '{ckpt}': {type(exc).__name__}") from None
    return out


def _first_value(path: Path, name: str, safetensors: bool):
    if safetensors:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            return f.get_tensor(name).reshape(-1)[0]
    import torch

    return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)[name].reshape(-1)[0]

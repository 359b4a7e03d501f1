"""The CLAP encoder: find and load a checkpoint, turn 10 s windows and texts into unit vectors.

A model is a Hugging Face id or a local directory, loaded with `from_pretrained`. An id is
resolved to its snapshot in the Hugging Face cache first (no network when it is there) and
downloaded only when missing and HF_HUB_OFFLINE is not set. Each tower loads on its own:
`ClapTextModelWithProjection` takes the `text_model.`/`text_projection.` tensors of the full
ClapModel checkpoint (memory-mapped safetensors), so a query never pays for the audio tower,
and `ClapAudioModelWithProjection` likewise for audio.

Audio goes through our batched torch frontend (indexer.mel.LogMelFrontend) instead of
transformers' ClapFeatureExtractor. `is_longer` comes from the real length of each window,
which for windows of at most 10 s is always False: transformers marks a random clip of the
batch as longer in fusion mode when none is, which makes a vector depend on its batch.

Each tower runs on a runtime (indexer.runtime): torch, or an OpenVINO export of the same
checkpoint that was checked against torch fp32 before it is trusted. On OpenVINO a text query
imports neither torch nor transformers.

Importing this module imports neither torch nor transformers: `sfx-search`'s cold start
depends on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Iterator, Sequence

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
    from huggingface_hub import snapshot_download

    from . import models

    try:  # the cache as the environment says now (huggingface_hub read it at its import)
        snap = snapshot_download(model, local_files_only=True, cache_dir=models.hub_cache_dir())
    except Exception:
        snap = None
    if snap is None:
        if _offline():
            raise ModelLoadError(
                f"model '{model}' is not in the Hugging Face cache and HF_HUB_OFFLINE is set; {_HINT}")
        try:
            with _quiet():
                snap = models.pull(model, progress=False, echo=lambda msg: None)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, UserError) else type(exc).__name__
            raise ModelLoadError(
                f"model '{model}' is not in the Hugging Face cache and cannot be downloaded "
                f"({reason}); {_HINT}") from None
    return _check_dir(Path(snap), model)


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


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def _nested_feature_config(ckpt: Path) -> dict | None:
    """The feature extractor inside processor_config.json, as transformers 5's
    `ClapProcessor.save_pretrained` writes it (with no preprocessor_config.json)."""
    try:
        nested = _read_json(ckpt / "processor_config.json").get("feature_extractor")
    except (OSError, ValueError, AttributeError):
        return None
    return nested if isinstance(nested, dict) else None


def feature_config(ckpt: Path) -> dict:
    """The checkpoint's ClapFeatureExtractor settings, from either file transformers writes."""
    if (ckpt / "preprocessor_config.json").is_file():
        return _read_json(ckpt / "preprocessor_config.json")
    nested = _nested_feature_config(ckpt)
    if nested is None:
        raise ModelLoadError(f"'{ckpt}' has no feature extractor config; {_HINT}")
    return nested


def _fingerprint(model: str, ckpt: Path, fe_config: dict, frontend_settings: dict) -> dict:
    cfg = {k: v for k, v in _read_json(ckpt / "config.json").items() if k not in _VOLATILE_CONFIG_KEYS}
    canon = json.dumps({"config": cfg, "preprocessor": fe_config}, sort_keys=True, separators=(",", ":"))
    is_dir = Path(model).expanduser().is_dir()
    return {
        "model_id": str(ckpt) if is_dir else model,
        "config_hash": hashlib.sha256(canon.encode()).hexdigest(),
        "frontend": frontend_settings,
    }


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
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
        from .melconfig import settings_from_config  # torch-free: a no-op build needs only this

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
    return frontend, _fingerprint(model, ckpt, dict(frontend), frontend.settings())


# --- device, precision, threads ----------------------------------------------------------------

def cpu_has_fast_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    words = set(flags.split())
    return "avx512_bf16" in words or any(w.startswith("amx") for w in words)


def resolve_device(device: str) -> str:
    """'cpu', 'cuda' or 'mps'. `auto` asks torch only on a machine that may have a GPU, so that
    a query on a CPU-only machine never imports it."""
    from .runtime import cuda_possible, mps_possible

    if device not in ("auto", "cpu", "cuda", "mps"):
        raise ModelLoadError(f"unknown device '{device}'; use auto, cpu, cuda or mps")
    if device == "cpu" or (device == "auto" and not cuda_possible() and not mps_possible()):
        return "cpu"
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda was asked for but this torch has no usable CUDA; use --device cpu")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelLoadError("--device mps was asked for but this torch has no usable MPS; use --device cpu")
    return device


def resolve_precision(precision: str, device: str) -> str:
    """The float precision of the torch towers (and of OpenVINO's float ops): fp32 or bf16.

    `auto` -> bf16 where the hardware has fast bf16, else fp32; resolved on the machine that
    embeds (a build passes the asked precision on, to its workers or Ray actors). bf16 keeps
    invariant 2: a window's bf16 vector is bit-identical alone or in any batch, order or
    thread count, and in a fresh process (tests/test_clap.py); its distance to fp32 is in
    docs/benchmarks.md."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ModelLoadError(f"unknown precision '{precision}'; use auto, fp32, bf16 (or int8 on OpenVINO)")
    if precision != "auto":
        return precision
    if device == "cuda":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device == "mps":
        return "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def _set_threads() -> None:
    import torch

    if os.environ.get("OMP_NUM_THREADS") or getattr(_set_threads, "done", False):
        return  # the user (or a worker pool) decided
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    torch.set_num_threads(max(1, n))
    _set_threads.done = True


# --- the encoder -------------------------------------------------------------------------------

class ClapEncoder:
    """Audio windows and texts -> L2-normalised float32 vectors of one CLAP checkpoint."""

    batch_size = 16  # windows per model call inside embed_audio (bounds memory)
    gpu_batch_size = 128  # on a GPU: large batches keep it busy

    def __init__(self, model: str, ckpt: Path, device: str, precision: str, runtime: str = "torch",
                 runtime_requested: str = "torch"):
        self.model_id = model
        self.path = ckpt
        self.device = device
        self.precision = precision
        # Per tower: "torch" or "openvino". `auto` settles on the first use of a tower.
        self.runtime_requested = runtime_requested
        self.runtimes = {"audio": runtime, "text": runtime}
        self._ov = {}
        self.audio_precision = precision  # "int8" when the audio tower is the quantized one
        self.int8_dir = None
        self.config = _read_json(ckpt / "config.json")
        self.frontend = ClapFrontend(feature_config(ckpt))
        self.dim = int(self.config.get("projection_dim", 512))
        self._audio = None
        self._text = None
        self._tokenizer = None
        self._fingerprint = None
        self._scales = None

    @classmethod
    def load(cls, model: str, *, device: str = "auto", precision: str = "auto",
             parts: Sequence[str] = ("audio", "text"), runtime: str | None = None,
             int8_dir: Path | None = None) -> "ClapEncoder":
        """Resolve `model` and load the towers named in `parts` (the others load on first use).

        runtime: auto|torch|openvino, else $SFX_RUNTIME, else auto (indexer.runtime).
        precision int8 (audio on OpenVINO only) reads the quantized model that a build made in
        the index folder `int8_dir` (indexer.runtime.int8); the text tower stays float."""
        from . import runtime as rt

        bad = set(parts) - {"audio", "text"}
        if bad:
            raise ValueError(f"unknown parts {sorted(bad)}; use 'audio' and/or 'text'")
        ckpt = resolve_checkpoint(model)
        dev = resolve_device(device)
        asked = rt.requested(runtime)
        int8 = precision == "int8"
        if int8:
            rt.check_int8(asked, dev)
            asked = "openvino"
        enc = cls(model, ckpt, dev, resolve_precision("auto" if int8 else precision, dev), rt.resolve(asked, dev), asked)
        enc.audio_precision = "int8" if int8 else enc.precision
        if dev != "cpu":
            enc.batch_size = cls.gpu_batch_size
        enc.int8_dir = Path(int8_dir) if int8_dir else None
        if "audio" in parts:
            enc.audio_runtime()
        if "text" in parts:
            enc._text_model()
        return enc

    # runtimes

    def audio_runtime(self) -> str:
        """The runtime that embeds this encoder's windows ('torch' or 'openvino'), settled now."""
        self._ov_tower("audio")
        if self.runtimes["audio"] == "torch":
            self._audio_model()
        return self.runtimes["audio"]

    def embedding_facts(self) -> dict:
        """What embeds this encoder's windows: {'runtime', 'precision'} (the catalog records it)."""
        runtime = self.audio_runtime()
        tower = self._ov.get("audio")
        return {"runtime": runtime, "precision": tower.precision if tower is not None else self.precision}

    def _ov_tower(self, part: str):
        """The OpenVINO tower of `part`, or None when that tower runs on torch."""
        if self.runtimes[part] != "openvino":
            return None
        if part not in self._ov:
            from .runtime import towers

            if part == "audio" and self.audio_precision == "int8":
                tower = towers.int8_tower(self)
            else:
                tower = towers.audio_tower(self) if part == "audio" else towers.text_tower(self)
            if tower is None:
                self.runtimes[part] = "torch"
                return None
            self._ov[part] = tower
        return self._ov[part]

    def load_torch_tower(self, part: str, precision: str):
        """The transformers tower of `part` at `precision` (the encoder's own is kept and reused)."""
        from transformers import ClapAudioModelWithProjection, ClapTextModelWithProjection

        if part == "audio" and precision == self.precision:
            return self._audio_model()
        cls = ClapAudioModelWithProjection if part == "audio" else ClapTextModelWithProjection
        return self._from_pretrained(cls, dtype=self._torch_dtype(precision))

    def hf_tokenizer(self):
        from transformers import AutoTokenizer

        try:
            with _quiet():
                return AutoTokenizer.from_pretrained(str(self.path))
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ModelLoadError(f"cannot load the tokenizer of '{self.model_id}': {first}") from None

    # loading

    @property
    def dtype(self):
        return self._torch_dtype(self.precision)

    @staticmethod
    def _torch_dtype(precision: str):
        import torch

        return torch.bfloat16 if precision == "bf16" else torch.float32

    def _from_pretrained(self, cls, dtype=None):
        _set_threads()
        try:
            with _quiet():
                m = cls.from_pretrained(str(self.path), dtype=dtype or self.dtype)
        except ModelLoadError:
            raise
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ModelLoadError(f"cannot load the CLAP checkpoint '{self.model_id}': {first}") from None
        return m.to(self.device).eval()

    def _audio_model(self):
        if self._audio is None:
            from transformers import ClapAudioModelWithProjection

            self._audio = self._from_pretrained(ClapAudioModelWithProjection)
        return self._audio

    def _text_model(self):
        """The text tower: the cached export (indexer.textcache) when this checkpoint has one,
        else ClapTextModelWithProjection from `from_pretrained`, exported for the next process."""
        if self._text is None:
            ov = self._ov_tower("text")
            if ov is not None:
                self._text, self._tokenizer = ov, ov.tokenizer
                return self._text
            from . import textcache

            _set_threads()
            tower = textcache.load(self.path, self.precision, self.device)
            if tower is not None:
                self._text, self._tokenizer = tower, tower.tokenizer
                return self._text
            from transformers import ClapTextModelWithProjection

            self._text = self._from_pretrained(ClapTextModelWithProjection)
            self._tokenizer = self.hf_tokenizer()
            if self.device == "cpu":
                textcache.export(self._text, self._tokenizer, self.path, self.precision)
        return self._text

    # audio

    def features(self, windows, n_real=None):
        """The frontend step alone: (n, 480000) -> (input_features (n, C, 1001, 64), is_longer (n,))."""
        return self.frontend(windows, n_real)

    def embed_audio(self, windows, n_real=None):
        """(n, 480000) float32 48 kHz windows -> (n, dim) float32 unit vectors."""
        import numpy as np

        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim == 1:
            windows = windows[None]
        longer = self.frontend.is_longer(windows.shape[0], n_real)
        out = [np.zeros((0, self.dim), np.float32)]
        for i in range(0, windows.shape[0], self.batch_size):
            mel = self.mel(windows[i:i + self.batch_size])
            out.append(self._embed_mel(mel, longer[i:i + self.batch_size]))
        return np.concatenate(out)

    def mel(self, windows):
        """(n, 480000) -> (n, 1001, 64) log-mel: our CPU frontend, or on a GPU the batched one
        (indexer.runtime.gpu_mel), computed where the model runs."""
        if self.device == "cpu":
            return self.frontend.mel(windows)
        if getattr(self, "_gpu_mel", None) is None:
            from .runtime.gpu_mel import BatchedLogMel

            self._gpu_mel = BatchedLogMel(self.frontend.log_mel(), self.device)
        return self._gpu_mel(windows)

    def embed_mel(self, mel, n_real=None):
        """(n, 1001, 64) log-mel from the frontend -> (n, dim) unit vectors (the pipeline's model step)."""
        import numpy as np
        import torch

        mel = torch.as_tensor(np.asarray(mel, dtype=np.float32))
        return self._embed_mel(mel, self.frontend.is_longer(mel.shape[0], n_real))

    def embed_features(self, input_features, is_longer=None):
        """The model step alone, on the output of `features`."""
        import numpy as np
        import torch

        x = torch.as_tensor(np.asarray(input_features, dtype=np.float32))
        longer = np.zeros(x.shape[0], bool) if is_longer is None else np.asarray(is_longer, bool).reshape(-1)
        return self._forward_audio(x, longer)

    def _embed_mel(self, mel, longer):
        import numpy as np

        x = mel[:, None]
        if self.frontend.fused and np.any(longer):
            x = x.expand(-1, 4, -1, -1)  # channels 1..3 are read only for the longer windows
        return self._forward_audio(x, longer)

    def _forward_audio(self, x, longer):
        """(n, C, 1001, 64) features -> (n, dim) unit vectors, each window's independent of its batch.

        A fused model reads channels 1..3 only for windows marked longer, so the others run on
        channel 0 alone and the longer ones on all four, in separate calls. Mixing them in one
        call changes the numbers of the short ones in bf16: the model's first op, a BatchNorm
        over the transposed input, takes a channels-last kernel (float math, one rounding) for
        1 channel and a strided one (bf16 steps) for 4, 1 bf16 ulp apart and ~2e-3 in the
        vector, so a window's vector would depend on whether its batch held a longer window.
        Within one kind, batch size, order and torch's thread count change no bit (tests).
        """
        import numpy as np
        import torch

        longer = np.asarray(longer, bool).reshape(-1)
        n = x.shape[0]
        if n == 0 or not self.frontend.fused:
            return self._run_audio(x, longer)
        if not longer.any():
            return self._run_audio(x[:, :1], longer)
        if longer.all():
            return self._run_audio(x, longer)
        out = np.empty((n, self.dim), np.float32)
        for mask, channels in ((~longer, slice(0, 1)), (longer, slice(None))):
            idx = torch.from_numpy(np.flatnonzero(mask))
            out[mask] = self._run_audio(x[idx, channels], longer[mask])
        return out

    def _run_audio(self, x, longer):
        import numpy as np
        import torch

        if x.shape[0] == 0:
            return np.zeros((0, self.dim), np.float32)
        ov = self._ov_tower("audio")
        if ov is not None and not np.any(longer):  # the export refuses longer windows: torch runs those
            from .runtime.openvino_common import unit

            return unit(ov.embed(x.numpy() if torch.is_tensor(x) else x))
        model = self._audio_model()
        with torch.inference_mode():
            # contiguous: a channel view of a wider tensor would reach the BatchNorm above
            # in yet another layout (and kernel).
            out = model(
                input_features=x.to(self.device, self.dtype).contiguous(),
                is_longer=torch.as_tensor(longer, device=self.device).reshape(-1, 1),
            ).audio_embeds
            out = torch.nn.functional.normalize(out.float(), dim=-1)
        return out.cpu().numpy()

    # text

    def embed_text(self, texts: list[str]):
        """Texts -> (n, dim) float32 unit vectors."""
        import numpy as np

        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        model = self._text_model()
        if self.runtimes["text"] == "openvino":
            from .runtime.openvino_common import unit

            return unit(model.embed(list(texts)))
        import torch

        with torch.inference_mode():
            if hasattr(model, "embed"):  # the cached tower (CPU)
                out = model.embed(list(texts))
            else:
                enc = self._tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
                out = model(input_ids=enc["input_ids"].to(self.device),
                            attention_mask=enc["attention_mask"].to(self.device)).text_embeds
            out = torch.nn.functional.normalize(out.float(), dim=-1)
        return out.cpu().numpy()

    # facts

    @property
    def fingerprint(self) -> dict:
        if self._fingerprint is None:
            self._fingerprint = _fingerprint(self.model_id, self.path, dict(self.frontend), self.frontend.settings())
        return self._fingerprint

    def _logit_scales(self) -> dict:
        if self._scales is None:
            self._scales = read_logit_scales(self.path)
        return self._scales

    @property
    def logit_scale_a(self) -> float:
        return self._logit_scales()["logit_scale_a"]

    @property
    def logit_scale_t(self) -> float:
        return self._logit_scales()["logit_scale_t"]


def read_logit_scales(ckpt: Path) -> dict[str, float]:
    """exp() of logit_scale_a / logit_scale_t, read straight from the safetensors (no model built)."""
    import math

    from safetensors import safe_open

    names = ("logit_scale_a", "logit_scale_t")
    if not (ckpt / "model.safetensors").is_file() and not (ckpt / "model.safetensors.index.json").is_file():
        return _logit_scales_from_bin(ckpt, names)
    index = ckpt / "model.safetensors.index.json"
    files = {n: "model.safetensors" for n in names}
    if index.is_file():
        files = {n: _read_json(index)["weight_map"][n] for n in names}
    out = {}
    try:
        for n in names:
            with safe_open(str(ckpt / files[n]), framework="numpy") as f:
                out[n] = float(math.exp(float(f.get_tensor(n).reshape(-1)[0])))
    except Exception as exc:
        raise ModelLoadError(f"cannot read {', '.join(names)} from '{ckpt}': {type(exc).__name__}") from None
    return out


def _logit_scales_from_bin(ckpt: Path, names) -> dict[str, float]:
    """The same from pytorch_model.bin (repositories without safetensors), memory-mapped."""
    import math

    import torch

    index = ckpt / "pytorch_model.bin.index.json"
    files = {n: "pytorch_model.bin" for n in names}
    if index.is_file():
        files = {n: _read_json(index)["weight_map"][n] for n in names}
    out = {}
    try:
        for n in names:
            sd = torch.load(str(ckpt / files[n]), map_location="cpu", weights_only=True, mmap=True)
            out[n] = float(math.exp(float(sd[n].reshape(-1)[0])))
    except Exception as exc:
        raise ModelLoadError(f"cannot read {', '.join(names)} from '{ckpt}': {type(exc).__name__}") from None
    return out

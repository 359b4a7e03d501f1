"""The CLAP encoder: load a checkpoint's towers, turn 10 s windows and texts into unit vectors.

Finding the checkpoint and its preprocessor (no weights) is indexer.checkpoint's; the device,
precision and threads are indexer.devices'. Their names are re-exported here.

Each tower loads on its own with `from_pretrained`: `ClapTextModelWithProjection` takes the
`text_model.`/`text_projection.` tensors of the full ClapModel checkpoint (memory-mapped
safetensors), so a query never pays for the audio tower, and `ClapAudioModelWithProjection`
likewise for audio.

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

from pathlib import Path
from typing import Sequence

from .checkpoint import (  # noqa: F401 - re-exported: indexer.clap is where callers look
    ClapFrontend,
    ModelLoadError,
    checkpoint_fingerprint,
    feature_config,
    load_frontend,
    quiet_transformers,
    read_json,
    read_logit_scales,
    resolve_checkpoint,
)
from .devices import (  # noqa: F401 - re-exported
    cpu_has_fast_bf16,
    resolve_device,
    resolve_precision,
    set_torch_threads,
)

# --- the encoder -------------------------------------------------------------------------------

class ClapEncoder:
    """Audio windows and texts -> L2-normalised float32 vectors of one CLAP checkpoint."""

    batch_size = 16  # windows per model call inside embed_audio (bounds memory)
    gpu_batch_size = 128  # on a GPU: large batches keep it busy
    fixed_batch = 0  # > 0: every torch model call gets this many windows (CUDA: gpu_mel.in_fixed_batches)

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
        self.config = read_json(ckpt / "config.json")
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
        if dev == "cuda":
            enc.fixed_batch = enc.batch_size
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

    def audio_ops_span_threads(self) -> bool:
        """True when one model call spreads each op over several CPU threads that wait for
        each other (the torch tower on the CPU): another process preempting one of them stalls
        them all. OpenVINO runs independent one-thread streams, and a GPU leaves the CPU free."""
        if self.audio_runtime() != "torch" or self.device != "cpu":
            return False
        import torch

        return torch.get_num_threads() > 1

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
        from transformers import (
            ClapAudioModelWithProjection,
            ClapTextModelWithProjection,
        )

        if part == "audio" and precision == self.precision:
            return self._audio_model()
        cls = ClapAudioModelWithProjection if part == "audio" else ClapTextModelWithProjection
        return self._from_pretrained(cls, dtype=self._torch_dtype(precision))

    def hf_tokenizer(self):
        from transformers import AutoTokenizer

        try:
            with quiet_transformers():
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
        set_torch_threads()
        try:
            with quiet_transformers():
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

    def text_tower(self):
        """The loaded text tower: an OpenVINO tower, the cached torch export or transformers'."""
        return self._text_model()

    def _text_model(self):
        """The text tower: the cached export (indexer.textcache) when this checkpoint has one,
        else ClapTextModelWithProjection from `from_pretrained`, exported, and the export run."""
        if self._text is None:
            ov = self._ov_tower("text")
            if ov is not None:
                self._text, self._tokenizer = ov, ov.tokenizer
                return self._text
            from . import textcache

            set_torch_threads()
            tower = textcache.load(self.path, self.precision, self.device)
            if tower is not None:
                self._text, self._tokenizer = tower, tower.tokenizer
                return self._text
            from transformers import ClapTextModelWithProjection

            self._text = self._from_pretrained(ClapTextModelWithProjection)
            self._tokenizer = self.hf_tokenizer()
            if self.device == "cpu" and textcache.export(self._text, self._tokenizer, self.path, self.precision):
                # Run the export from now on, as the next process will: in bf16 it and
                # transformers agree to the tolerance, not to the bit, and a text's vector
                # should not depend on whether the cache existed yet.
                tower = textcache.load(self.path, self.precision, self.device)
                if tower is not None:
                    self._text, self._tokenizer = tower, tower.tokenizer
        return self._text

    # audio

    def features(self, windows, n_real=None):
        """The frontend step alone: (n, 480000) -> (input_features (n, C, 1001, 64), is_longer (n,))."""
        return self.frontend(windows, n_real)

    def embed_audio(self, windows, n_real=None):
        """(n, 480000) float32 48 kHz windows -> (n, dim) float32 unit vectors. On a GPU the
        windows may be a tensor there already (`upload`)."""
        import numpy as np

        if self.device == "cpu" or not hasattr(windows, "cpu"):  # numpy, or a list
            windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim == 1:
            windows = windows[None]
        longer = self.frontend.is_longer(windows.shape[0], n_real)
        out = [np.zeros((0, self.dim), np.float32)]
        for i in range(0, windows.shape[0], self.batch_size):
            mel = self.mel(windows[i:i + self.batch_size])
            out.append(self._embed_mel(mel, longer[i:i + self.batch_size]))
        return np.concatenate(out)

    def upload(self, windows):
        """(k, 480000) float32 numpy windows -> a torch tensor where the model runs (a build's
        parts, copied to the GPU as they arrive: runtime.gpu_mel.upload)."""
        from .runtime.gpu_mel import upload

        return upload(windows, self.device)

    def mel(self, windows):
        """(n, 480000) -> (n, 1001, 64) log-mel: our CPU frontend, or on CUDA the batched one
        (indexer.runtime.gpu_mel), computed where the model runs. Not on mps: it has no float64,
        and a float32 STFT is decibels off in the quiet bins of a loud low sound."""
        if self.device != "cuda":
            if hasattr(windows, "cpu"):  # a torch tensor (`upload` put it on the mps device)
                windows = windows.cpu().numpy()
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
        if self.fixed_batch and x.shape[0] != self.fixed_batch:
            from .runtime.gpu_mel import in_fixed_batches

            return in_fixed_batches(self._run_audio, x, longer, self.fixed_batch)
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
            self._fingerprint = checkpoint_fingerprint(self.model_id, self.path, dict(self.frontend), self.frontend.settings())
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

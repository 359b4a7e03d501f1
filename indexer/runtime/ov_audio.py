"""The CLAP audio tower on OpenVINO: export it once per checkpoint, check it, run it.

The export is of the path our windows take and no other: a window of at most 10 s is never
"longer", so the fused model reads channel 0 of its features only and its fusion branch never
runs. The IR takes one window, (1, 1, 1001, 64) log-mel, and gives its projected embedding;
`OvAudioTower.embed` refuses a window marked longer (the encoder keeps those on torch).

Each window is one inference request, and requests run on parallel streams of one thread
each: a window's vector is then computed by the same single-threaded kernels whatever its
batch, its place in the batch or the machine's thread count, so it is the same to the bit
(DESIGN.md invariant 2; tests/test_runtime.py). One window per request is also the fastest
layout measured on a 2-core CPU (docs/runtime.md).

Before the export is trusted it runs a probe batch of generated windows beside the torch fp32
model: every vector within cosine VERIFY_COSINE, else the export is not kept and the encoder
stays on torch. The same probe times both runtimes (interleaved) and records it: `auto` uses
the export only where it was faster than torch at the precision torch would use.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np

from . import cache, cpu_count
from .openvino_common import (compiled_precision, convert_model, core, hint, interleaved_times, min_cosine,
                              unit, version)

log = logging.getLogger(__name__)

PROBE_WINDOWS = 4
FEATURE_SHAPE = (1, 1, 1001, 64)


def probe_windows(n: int = PROBE_WINDOWS) -> np.ndarray:
    """(n, 480000) float32 windows unlike each other: tones, noise, clicks, a sweep, silence."""
    rng = np.random.default_rng(1234)
    t = np.arange(480_000, dtype=np.float64) / 48_000
    kinds = [
        0.3 * np.sin(2 * np.pi * 440 * t) + 0.02 * rng.standard_normal(t.size),
        0.2 * rng.standard_normal(t.size),
        np.where((t * 10) % 1 < 0.01, 0.8, 0.0) + 0.01 * rng.standard_normal(t.size),
        0.3 * np.sin(2 * np.pi * (100 + 400 * t) * t),
        1e-4 * rng.standard_normal(t.size),
    ]
    return np.stack([kinds[i % len(kinds)] for i in range(n)]).astype(np.float32)


def facts(ckpt: Path, precision: str) -> dict:
    return cache.key_facts(ckpt, "audio", "openvino", version(), precision)


class OvAudioTower:
    """(n, 1, 1001, 64) log-mel features -> (n, d) embeddings (not normalised) on OpenVINO."""

    def __init__(self, xml: Path, precision: str, meta: dict | None = None, streams: int | None = None):
        self.meta = meta or {}
        self.path = Path(xml)
        self.streams = streams or cpu_count()
        model = core().read_model(str(xml))
        self.dim = int(model.output(0).get_partial_shape()[1].get_length())
        # One thread per stream: the same kernels for a window whatever the machine (see above).
        self.compiled = core().compile_model(model, "CPU", {
            "INFERENCE_PRECISION_HINT": hint(precision), "NUM_STREAMS": str(self.streams),
            "INFERENCE_NUM_THREADS": str(self.streams), "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0",
        })
        self.precision = "int8" if precision == "int8" else compiled_precision(self.compiled)
        self._queue = None

    def embed(self, features: np.ndarray, is_longer=None) -> np.ndarray:
        import openvino as ov

        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 4 or x.shape[2:] != FEATURE_SHAPE[2:]:
            raise ValueError(f"features must be (n, C, 1001, 64), got {x.shape}")
        if is_longer is not None and np.any(is_longer):
            raise ValueError("the OpenVINO audio export covers windows of at most 10 s (is_longer false) only")
        x = x[:, :1]
        out = np.empty((x.shape[0], self.dim), np.float32)
        if x.shape[0] == 0:
            return out
        if self._queue is None:
            self._queue = ov.AsyncInferQueue(self.compiled, self.streams)

        def done(request, i):
            out[i] = request.get_output_tensor(0).data[0]

        self._queue.set_callback(done)
        for i in range(x.shape[0]):
            self._queue.start_async({0: np.ascontiguousarray(x[i:i + 1])}, i)
        self._queue.wait_all()
        return out


class _Window(object):
    """The torch module that is exported: one window's features -> its embedding, is_longer false."""

    @staticmethod
    def wrap(model):
        import torch

        class Window(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_features):
                longer = torch.zeros(input_features.shape[0], 1, dtype=torch.bool)
                return self.m(input_features=input_features, is_longer=longer).audio_embeds

        return Window(model).eval()


def export(ckpt: Path, precision: str, load_fp32: Callable, mel_fn: Callable,
           torch_rate: Callable | None = None) -> tuple[Path, dict]:
    """Convert the fp32 audio tower of `ckpt`, check it on the probe and write the cache entry.

    load_fp32() -> ClapAudioModelWithProjection in fp32; mel_fn(windows) -> (n, 1001, 64) torch
    log-mel; torch_rate(mel) -> seconds torch takes at the precision it would run (for `auto`).
    Raises RuntimeError (nothing written) when the export does not agree with torch."""
    import warnings

    import openvino as ov
    import torch

    key = facts(ckpt, precision)
    model = load_fp32()
    mel = mel_fn(probe_windows())[:, None].contiguous().float()
    with torch.inference_mode():
        ref = model(input_features=mel, is_longer=torch.zeros(mel.shape[0], 1, dtype=torch.bool)).audio_embeds
    ref = ref.float().numpy()
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer warnings about the Python branches we fix
        ir = convert_model(_Window.wrap(model), example_input=torch.zeros(FEATURE_SHAPE),
                           input=[ov.PartialShape(list(FEATURE_SHAPE))])

    def fill(tmp: Path) -> dict:
        ov.save_model(ir, str(tmp / "model.xml"), compress_to_fp16=False)
        tower = OvAudioTower(tmp / "model.xml", precision)
        x = mel.numpy()
        got = tower.embed(x)
        cos = min_cosine(got, ref)
        alone = tower.embed(x[2:3])
        same = bool(np.array_equal(alone[0], got[2]))
        ok = cos >= cache.VERIFY_COSINE and same
        verified = {"ok": ok, "min_cosine": cos, "batch_independent": same, "windows": int(x.shape[0]),
                    "reference": "transformers fp32"}
        if not ok:
            raise RuntimeError(f"the OpenVINO audio export differs from torch fp32 ({verified})")
        timing = {}
        if torch_rate is not None:
            t = interleaved_times({"openvino": lambda: tower.embed(x), "torch": lambda: torch_rate(mel[:, 0])})
            timing = {k: v / x.shape[0] for k, v in t.items()}
        return {"verified": verified, "precision": tower.precision, "seconds_per_window": timing,
                "dim": tower.dim}

    try:
        return cache.write_entry(key, fill)
    except RuntimeError as exc:
        cache.record_failure(key, str(exc))
        raise


def load(ckpt: Path, precision: str) -> OvAudioTower | None:
    """The verified export of this checkpoint and precision, compiled; None when not made yet."""
    found = cache.read_entry(facts(ckpt, precision))
    if found is None:
        return None
    dest, meta = found
    return OvAudioTower(dest / "model.xml", precision, meta)


def faster_than_torch(meta: dict) -> bool:
    t = meta.get("seconds_per_window") or {}
    return "openvino" not in t or "torch" not in t or t["openvino"] <= t["torch"]


__all__ = ["OvAudioTower", "export", "load", "facts", "probe_windows", "faster_than_torch", "unit"]

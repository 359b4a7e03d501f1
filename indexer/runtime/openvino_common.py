"""What the OpenVINO towers share: the Core, the compile settings, the probe's measures.

Compile settings say exactly what runs: the inference precision is the one asked for (f32, or
bf16 where the CPU has it; OpenVINO quietly keeps f32 where it has not, and the precision that
actually ran is what gets recorded), and dynamic quantization of activations is off (it would
move vectors by more than the fidelity tolerance).
"""

from __future__ import annotations

import sys
import time

import numpy as np

_CORE = None
_CONVERTER = "openvino.tools.ovc"


def runtime_module():
    """`openvino`, imported without its model converter when this is the process's first
    import of it. The package imports the converter (`ov.convert_model`) only if it can
    (an ImportError is passed over), and that import is ~0.1 s of a cold query's time for a
    tool only an export uses: a None in sys.modules makes it fail, and is removed at once
    so that an export can still import it (`convert_model`)."""
    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    block = _CONVERTER not in sys.modules
    if block:
        sys.modules[_CONVERTER] = None
    try:
        import openvino as ov
    finally:
        if block and sys.modules.get(_CONVERTER, False) is None:
            del sys.modules[_CONVERTER]
    return ov


def convert_model(*args, **kwargs):
    """openvino's model converter (imported here: `runtime_module` leaves it out)."""
    from openvino.tools.ovc import convert_model as convert

    return convert(*args, **kwargs)


def core():
    global _CORE
    if _CORE is None:
        _CORE = runtime_module().Core()
    return _CORE


def version() -> str:
    return runtime_module().__version__.split("-")[0]


def hint(precision: str) -> str:
    """OpenVINO's INFERENCE_PRECISION_HINT for our precision names (int8 models run in f32
    around their quantized ops)."""
    return {"fp32": "f32", "bf16": "bf16", "int8": "f32"}[precision]


def compiled_precision(compiled) -> str:
    """'fp32' or 'bf16': the precision the compiled model really runs its float ops in."""
    value = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
    return "bf16" if "bf16" in value else "fp32"


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((unit(a) * unit(b)).sum(-1).min())


def best_time(fn, rounds: int = 2) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def interleaved_times(fns: dict, rounds: int = 2) -> dict:
    """Best wall time of each function over `rounds`, the functions taking turns (a crowded
    machine slows whichever runs during a burst: turns spread that over all of them)."""
    out = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            out[k] = min(out[k], time.perf_counter() - t)
    return out

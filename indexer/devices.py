"""Where and in which precision the torch towers run: device, float precision, threads.

Importing this module imports neither torch nor transformers (a query on a CPU-only machine
never imports torch to decide its device). `indexer.clap` re-exports these names.
"""

from __future__ import annotations

import os
from pathlib import Path

from .checkpoint import ModelLoadError


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


def set_torch_threads() -> None:
    """torch on every core this process may use, unless OMP_NUM_THREADS (or a worker pool) said
    otherwise; once per process."""
    import torch

    if os.environ.get("OMP_NUM_THREADS") or getattr(set_torch_threads, "done", False):
        return  # the user (or a worker pool) decided
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    torch.set_num_threads(max(1, n))
    set_torch_threads.done = True

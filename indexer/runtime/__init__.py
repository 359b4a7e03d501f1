"""Which runtime runs the CLAP towers: torch (transformers) or OpenVINO, and the choice of `auto`.

    --runtime auto|torch|openvino   (every command that runs a tower; $SFX_RUNTIME)

`torch` is the transformers model as it always was. `openvino` runs an OpenVINO export of the
same checkpoint (indexer.runtime.ov_audio, indexer.runtime.ov_text), made once per checkpoint,
cached, and checked against the torch fp32 path on a probe batch before it is trusted
(indexer.runtime.cache). `auto` takes OpenVINO on a CPU when the package is installed and its
export measured faster than torch there; torch on CUDA or MPS, and whenever OpenVINO is missing.

Nothing here imports torch, transformers or openvino: the choice is made from what is
installed and from the devices the machine shows, so that a query can stay off torch.
See docs/runtime.md.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from ..config import UserError

RUNTIMES = ("auto", "torch", "openvino")
PRECISIONS = ("auto", "fp32", "bf16", "int8")
ENV_RUNTIME = "SFX_RUNTIME"


class RuntimeUnavailable(UserError):
    """The runtime asked for cannot run here (one line saying what to do)."""


def requested(runtime: str | None) -> str:
    """The runtime asked for: the argument, else $SFX_RUNTIME, else auto (validated)."""
    value = (runtime or os.environ.get(ENV_RUNTIME) or "auto").strip().lower()
    if value not in RUNTIMES:
        raise RuntimeUnavailable(f"unknown runtime '{value}'; use one of {', '.join(RUNTIMES)} "
                                 f"(--runtime or {ENV_RUNTIME})")
    return value


def openvino_installed() -> bool:
    """True when the openvino package can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):
        return False


def torch_loaded() -> bool:
    return "torch" in sys.modules


def cuda_possible() -> bool:
    """False when this machine certainly has no NVIDIA GPU (no driver, no device node), so that
    `--device auto` can say cpu without importing torch; True means "ask torch"."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if sys.platform.startswith("linux"):
        return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()
    return sys.platform == "win32"


def mps_possible() -> bool:
    """Apple silicon with a torch that may have MPS (asked only there)."""
    import platform

    return sys.platform == "darwin" and platform.machine() == "arm64"


def resolve(runtime: str | None, device: str) -> str:
    """'torch' or 'openvino' for a resolved device ('cpu', 'cuda', 'mps').

    For `auto` on a CPU this says 'openvino' when the package is installed; whether its export
    is faster than torch on this machine is known only once the export exists, and the encoder
    falls back to torch when it was not (ClapEncoder, docs/runtime.md)."""
    want = requested(runtime)
    if want == "torch":
        return "torch"
    if want == "openvino":
        if device != "cpu":
            raise RuntimeUnavailable(f"--runtime openvino runs on the CPU; use --device cpu (or --runtime torch "
                                     f"for {device})")
        if not openvino_installed():
            raise RuntimeUnavailable("--runtime openvino needs the openvino package: pip install openvino "
                                     "(or use --runtime torch)")
        return "openvino"
    return "openvino" if device == "cpu" and openvino_installed() else "torch"


def check_int8(runtime: str, device: str) -> None:
    """--precision int8 is the OpenVINO audio tower quantized by NNCF: refuse it elsewhere."""
    if runtime == "torch":
        raise RuntimeUnavailable("--precision int8 runs on OpenVINO; use --runtime openvino (or auto)")
    if device != "cpu":
        raise RuntimeUnavailable(f"--precision int8 runs on the CPU; use --device cpu (not {device})")
    if not openvino_installed():
        raise RuntimeUnavailable("--precision int8 needs OpenVINO and NNCF: pip install 'sfx-index[int8]'")


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)

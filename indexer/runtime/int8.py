"""`--precision int8`: the OpenVINO audio tower quantized by NNCF on windows of the user's library.

Never chosen by `auto`. The quantized model belongs to one index (it is calibrated on that
index's library) and lives in it:

    <index>/int8-audio/model.xml, model.bin   the quantized IR
                       meta.json               the checkpoint's key, the calibration's hash and
                                               the fidelity report

Before it is used, `sfx-index build --precision int8` prints the fidelity report (to stderr):
the cosine of each calibration window's int8 vector to its float vector (the float export at
the precision `auto` picks: bf16 where the CPU has it, else fp32), and, over a sample of
similar-searches among those windows, how many of the float top-10 neighbours the int8 vectors
find too. Random-weight checkpoints give lower figures than real ones would; the report is
what to judge by. The catalog refuses to mix int8 and float vectors (docs/runtime.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from . import cache
from .openvino_common import core, unit

log = logging.getLogger(__name__)

FOLDER = "int8-audio"
CALIBRATION_WINDOWS = 64
NEIGHBOURS = 10


def calibration_windows(paths: Iterable[Path], n: int = CALIBRATION_WINDOWS, per_file: int = 2):
    """Up to n (480000,) windows from files spread over `paths`, at most `per_file` from each."""
    from ..audio import DecodeError, iter_windows

    paths = list(paths)
    step = max(1, len(paths) // n)
    out = []
    for path in paths[::step] + [p for i, p in enumerate(paths) if i % step]:
        if len(out) >= n:
            break
        try:
            for k, w in enumerate(iter_windows(path)):
                if k >= per_file:
                    break
                out.append(w.samples)
        except (DecodeError, OSError):
            continue
    return np.stack(out).astype(np.float32) if out else np.zeros((0, 480_000), np.float32)


def fidelity(float_vecs: np.ndarray, int8_vecs: np.ndarray, k: int = NEIGHBOURS) -> dict:
    """Cosine of int8 to float vectors, and the overlap of each window's top-k neighbours."""
    a, b = unit(float_vecs), unit(int8_vecs)
    cos = (a * b).sum(1)
    n = len(a)
    k = min(k, n - 1)
    overlaps = []
    if k > 0:
        sa, sb = a @ a.T, b @ b.T
        np.fill_diagonal(sa, -np.inf)
        np.fill_diagonal(sb, -np.inf)
        ta, tb = np.argsort(-sa, axis=1)[:, :k], np.argsort(-sb, axis=1)[:, :k]
        overlaps = [len(set(x.tolist()) & set(y.tolist())) / k for x, y in zip(ta, tb)]
    return {"windows": int(n), "min_cosine": float(cos.min()), "median_cosine": float(np.median(cos)),
            "neighbours": int(k), "top_k_overlap_mean": float(np.mean(overlaps)) if overlaps else None,
            "top_k_overlap_min": float(np.min(overlaps)) if overlaps else None}


def report_lines(report: dict, reference: str) -> list[str]:
    return [
        f"int8 fidelity on {report['windows']} windows of your library, against {reference}:",
        f"  cosine to the float vectors: min {report['min_cosine']:.4f}, median {report['median_cosine']:.4f}",
        f"  similar-searches among them: {report['top_k_overlap_mean']:.0%} of the float top-{report['neighbours']} "
        f"found by int8 on average (worst {report['top_k_overlap_min']:.0%})"
        if report["top_k_overlap_mean"] is not None else "  (too few windows for a neighbour check)",
    ]


def calibration_hash(features: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(features, np.float32).tobytes()).hexdigest()[:16]


def quantize(float_xml: Path, features: np.ndarray, dest: Path, key: dict, float_tower) -> dict:
    """Quantize the float IR on `features` (n, 1, 1001, 64), compare with `float_tower`, write
    `dest` (atomically). Returns the meta (with the fidelity report)."""
    import nncf
    import openvino as ov

    from .ov_audio import OvAudioTower

    x = np.ascontiguousarray(features[:, :1], np.float32)
    model = core().read_model(str(float_xml))
    data = nncf.Dataset([x[i:i + 1] for i in range(len(x))])
    with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars: diagnostics, not results
        quantized = nncf.quantize(model, data, subset_size=len(x), model_type=nncf.ModelType.TRANSFORMER,
                                  fast_bias_correction=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".tmp-int8-"))
    try:
        ov.save_model(quantized, str(tmp / "model.xml"), compress_to_fp16=False)
        tower = OvAudioTower(tmp / "model.xml", "int8")
        report = fidelity(float_tower.embed(x), tower.embed(x))
        meta = {"key": key, "calibration": calibration_hash(x), "fidelity": report,
                "reference": f"OpenVINO {float_tower.precision}", "created_at": time.time()}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def read(index_dir: Path, key: dict) -> tuple[Path, dict] | None:
    """(xml, meta) of the index's int8 model for this checkpoint key, or None."""
    folder = Path(index_dir) / FOLDER
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return (folder / "model.xml", meta) if meta.get("key") == key else None


def checkpoint_key(ckpt: Path) -> dict:
    """What the int8 model depends on: the checkpoint, as the float export's key says it."""
    from .openvino_common import version

    return cache.key_facts(ckpt, "audio", "openvino", version(), "int8")

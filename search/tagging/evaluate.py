"""Reproduce the model card on your own audio: zero-shot accuracy, a k-fold head, retrieval.

Datasets: a folder tree (ROOT/<class>/.../file, folder = class) or the ESC-50 layout
(meta/esc50.csv with filename, fold, category; audio/). Vectors: a file that the open index
already holds unchanged (same path, size and mtime) uses its stored chunk vectors, so an
evaluation of an indexed library makes no audio model call; any other file is decoded and
embedded directly with the index's model (the same windows and `ClapEncoder.embed_audio` as
`sfx-index build`), without writing to the index: an evaluation must not add test sets to a
user's library. `--snr` always embeds, because the noisy versions exist only in memory.

Reported per condition (clean, and noisy at --snr): zero-shot top-1 / top-5 / macro-F1, the
logistic-regression head by k-fold (ESC-50: its official folds) on the same vectors, and
text-to-audio retrieval with the class names (through the prompt templates) as queries:
R@k = share of classes with at least one file of the class in the top k, and mAP.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from indexer.config import SAMPLE_RATE, WINDOW_SAMPLES, UserError

from .heads import class_labels, cross_validate, metrics
from .labels import label_vectors, load_templates
from .scoring import score_block

log = logging.getLogger(__name__)

NOISES = ("white", "pink")


@dataclass
class Item:
    path: str
    label: str
    fold: int | None = None


# ---------------------------------------------------------------------- datasets


def folder_items(root: str | Path) -> list[Item]:
    from indexer.scan import scan

    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"'{root}' is not a folder; give ROOT with one sub-folder per class")
    items = []
    for sf in scan(root):
        parts = sf.rel.split("/")
        if len(parts) >= 2:
            items.append(Item(str(sf.path), parts[0]))
    if not items:
        raise UserError(f"no audio files in class folders under {root} (ROOT/<class>/file)")
    return sorted(items, key=lambda it: (it.label, it.path))


def esc50_items(root: str | Path) -> list[Item]:
    root = Path(root).expanduser()
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise UserError(f"no {meta}; --esc50 expects the ESC-50 layout (meta/esc50.csv, audio/)")
    with meta.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    items = [Item(str(root / "audio" / r["filename"]), r["category"], int(r["fold"]) if r.get("fold") else None)
             for r in rows]
    missing = [it.path for it in items if not os.path.isfile(it.path)]
    if missing:
        log.warning("%d files listed in esc50.csv are missing; skipped", len(missing))
        items = [it for it in items if os.path.isfile(it.path)]
    if not items:
        raise UserError(f"none of the files of {meta} exists under {root / 'audio'}")
    return items


# ---------------------------------------------------------------------- audio


def add_noise(x: np.ndarray, snr_db: float, kind: str = "white", seed: int = 0) -> np.ndarray:
    """x plus white or pink (1/f power) noise at `snr_db` dB signal-to-noise (power) ratio."""
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(len(x))
    if kind == "pink":
        spec = np.fft.rfft(n)
        f = np.fft.rfftfreq(len(n))
        f[0] = f[1] if len(f) > 1 else 1.0
        n = np.fft.irfft(spec / np.sqrt(f), len(n))
    elif kind != "white":
        raise UserError(f"--noise must be one of {', '.join(NOISES)}")
    ps = float(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0
    pn = float(np.mean(np.square(n))) or 1.0
    return (x + n * np.sqrt(ps / (pn * 10 ** (snr_db / 10.0)))).astype(np.float32)


def windows_of(x: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """A decoded 48 kHz signal cut as `iter_windows` cuts a file: (windows, real lengths)."""
    from indexer.windowing import repeat_pad, window_starts

    W = WINDOW_SAMPLES
    if len(x) <= W:
        return repeat_pad(x, W)[None], [len(x)]
    starts = [min(int(round(s * SAMPLE_RATE)), len(x) - W) for s in window_starts(len(x) / SAMPLE_RATE)]
    return np.stack([x[s : s + W] for s in starts]), [W] * len(starts)


class Vectors:
    """Chunk vectors of a file (stored when indexed and unchanged, else embedded) and text vectors."""

    def __init__(self, lib=None, *, model: str | None = None, device: str = "auto", precision: str = "auto"):
        self.lib = lib
        self.model = lib.model if lib is not None else model
        self.device, self.precision = device, precision
        self._enc = None
        self._text_cache: dict[str, np.ndarray] = {}
        self.embedded = 0
        self.reused = 0

    def encoder(self):
        if self._enc is None:
            if self.lib is not None:
                self._enc = self.lib.encoder("audio")
            else:
                from indexer.clap import ClapEncoder

                self._enc = ClapEncoder.load(self.model, device=self.device, precision=self.precision, parts=("audio", "text"))
        return self._enc

    def text_vectors(self, texts: list[str]) -> np.ndarray:
        if self.lib is not None:
            return self.lib.text_vectors(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:
            self._text_cache.update(zip(missing, self.encoder().embed_text(missing)))
        return np.stack([self._text_cache[t] for t in texts])

    def logit_scale_a(self) -> float:
        from .tagger import logit_scale_a

        return logit_scale_a(self.model)

    def chunks(self, path: str, *, snr: float | None = None, noise: str = "white", seed: int = 0) -> np.ndarray:
        if snr is None and self.lib is not None:
            row = self.lib.catalog.file_by_path(path)
            if row is not None and row.status == "ok":
                st = os.stat(path)
                if st.st_size == row.size and st.st_mtime_ns == row.mtime_ns:
                    _, vecs = self.lib.catalog.chunks_for(row.id)
                    if len(vecs):
                        self.reused += 1
                        return vecs
        from indexer.audio import decode_mono_48k

        x = decode_mono_48k(path)
        if snr is not None:
            x = add_noise(x, snr, noise, seed)
        wins, n_real = windows_of(x)
        self.embedded += 1
        return self.encoder().embed_audio(wins, n_real)


# ---------------------------------------------------------------------- metrics


def retrieval(scores: np.ndarray, y: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict:
    """Class-name queries over files: R@k (a file of the class in the top k) and mAP."""
    out = {}
    order = np.argsort(-scores, axis=0, kind="stable")  # (files, classes): ranked files per query
    rel = y[order] == np.arange(scores.shape[1])[None, :]
    present = rel.any(axis=0)
    for k in ks:
        out[f"R@{k}"] = round(float(rel[:k].any(axis=0)[present].mean()), 4) if present.any() else 0.0
    hits = np.cumsum(rel, axis=0)
    prec = hits / np.arange(1, len(y) + 1)[:, None]
    ap = (prec * rel).sum(axis=0) / np.maximum(rel.sum(axis=0), 1)
    out["mAP"] = round(float(ap[present].mean()), 4) if present.any() else 0.0
    return out


def evaluate(
    items: Sequence[Item], vectors: Vectors, *, templates: Sequence[str] | None = None, agg: str = "max",
    snr: float | None = None, noise: str = "white", folds: int = 5, dataset: str = "",
) -> dict:
    templates = list(templates or load_templates())
    classes = sorted({it.label for it in items})
    if len(classes) < 2:
        raise UserError(f"evaluation needs at least 2 classes; found {len(classes)}")
    labels = class_labels(classes)
    lv = label_vectors(labels, templates, vectors.text_vectors)
    report = {"dataset": dataset, "model": vectors.model, "classes": len(classes), "templates": templates,
              "agg": agg, "conditions": {}}
    conditions = [("clean", None)] + ([(f"snr {snr:g} dB {noise}", snr)] if snr is not None else [])
    for name, level in conditions:
        report["conditions"][name] = _evaluate_condition(items, classes, lv, vectors, agg, level, noise, folds)
    report["files"] = report["conditions"]["clean"]["files"]
    report["embedded_files"], report["reused_files"] = vectors.embedded, vectors.reused
    return report


def _evaluate_condition(items, classes, lv, vectors, agg, snr, noise, folds) -> dict:
    cls_index = {c: i for i, c in enumerate(classes)}
    vecs, owners, kept, failed = [], [], [], []
    for i, it in enumerate(items):
        try:
            v = vectors.chunks(it.path, snr=snr, noise=noise, seed=i)
        except Exception as exc:  # one bad file never aborts an evaluation
            failed.append({"path": it.path, "reason": str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})
            continue
        vecs.append(v)
        owners.append(np.full(len(v), len(kept), np.int64))
        kept.append(it)
    if not kept:
        raise UserError("no file of the evaluation set could be decoded")
    chunk_vecs, owner = np.concatenate(vecs), np.concatenate(owners)
    _, zs = score_block(chunk_vecs, owner, lv, agg=agg)
    y = np.array([cls_index[it.label] for it in kept], np.int64)
    u_starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    X = np.add.reduceat(chunk_vecs, u_starts, axis=0)
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    out = {"files": len(kept), "failed": failed, "zero_shot": metrics(y, zs, len(classes)),
           "retrieval": retrieval(zs, y)}
    groups = np.array([it.fold for it in kept]) if all(it.fold is not None for it in kept) else None
    try:
        out["head_kfold"] = cross_validate(X, y, len(classes), folds=folds, groups=groups)["head"]
    except (UserError, ValueError) as exc:
        out["head_kfold"] = None
        out["head_note"] = str(exc)
    return out


def format_report(report: dict) -> str:
    """The readable table of an evaluation report."""
    head = f"{'condition':<24} {'files':>5} {'zs top1':>7} {'zs top5':>7} {'zs F1':>6} " \
           f"{'head top1':>9} {'head F1':>7} {'R@1':>5} {'R@5':>5} {'R@10':>5} {'mAP':>5}"
    lines = [f"{report['dataset']}  ({report['classes']} classes, model {report['model']})", head, "-" * len(head)]
    for name, c in report["conditions"].items():
        z, r, h = c["zero_shot"], c["retrieval"], c.get("head_kfold") or {}
        lines.append(
            f"{name:<24} {c['files']:>5} {z['top1']:>7.3f} {z['top5']:>7.3f} {z['macro_f1']:>6.3f} "
            f"{h.get('top1', float('nan')):>9.3f} {h.get('macro_f1', float('nan')):>7.3f} "
            f"{r['R@1']:>5.2f} {r['R@5']:>5.2f} {r['R@10']:>5.2f} {r['mAP']:>5.2f}"
        )
        if c["failed"]:
            lines.append(f"  ({len(c['failed'])} files could not be decoded)")
    return "\n".join(lines)

"""Tagging a whole index: zero-shot against a label set, or with a trained head; stored as a set.

Zero-shot needs no audio model: the stored chunk vectors (catalog, grouped by file) meet the
label vectors (text tower, cached in the catalog) in `scoring.score_blocks`. The selected
(file, label, score) rows replace the set's previous machine tags in one transaction.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator, Sequence

import numpy as np

from indexer.catalog import TagRow
from indexer.config import UserError

from .labels import Label, label_vectors, load_templates
from .scoring import score_blocks, select

log = logging.getLogger(__name__)

DEFAULT_TOP_K_MULTI = 3


@dataclass
class TagReport:
    set_name: str
    source: str
    model: str
    labels: int
    templates: int
    files: int
    chunks: int
    tags: int
    seconds: float
    mode: str
    agg: str
    top_k: int | None
    threshold: float | None
    label_counts: dict[str, int] = field(default_factory=dict)
    tagged_files: int | None = None  # files that got at least one tag (`files` were scored)

    def as_json(self) -> dict:
        return asdict(self)


def logit_scale_a(model: str) -> float:
    """exp(logit_scale_a) of the checkpoint, read from its weights file (no model built)."""
    from indexer.clap import read_logit_scales, resolve_checkpoint

    return read_logit_scales(resolve_checkpoint(model))["logit_scale_a"]


def catalog_blocks(catalog, file_ids: set[int] | None = None, counter: list | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(file ids, vectors) from the catalog grouped by file, optionally only some files."""
    keep = None if file_ids is None else np.fromiter(file_ids, dtype=np.int64)
    for _cids, fids, vecs in catalog.iter_chunk_files():
        if keep is not None:
            m = np.isin(fids, keep)
            fids, vecs = fids[m], vecs[m]
        if counter is not None:
            counter[0] += len(fids)
        yield fids, vecs


def _resolve_selection(exclusive: bool, top_k: int | None, threshold: float | None) -> tuple[int | None, float | None]:
    if top_k is not None and top_k < 1:
        raise UserError("--top-k must be at least 1")
    if top_k is None and threshold is None:
        top_k = 1 if exclusive else DEFAULT_TOP_K_MULTI
    return top_k, threshold


def zero_shot_rows(
    catalog,
    labels: Sequence[Label],
    label_vecs: np.ndarray,
    *,
    agg: str = "max",
    exclusive: bool = False,
    logit_scale: float | None = None,
    top_k: int | None = None,
    threshold: float | None = None,
    stats: dict | None = None,
) -> Iterator[TagRow]:
    """Tag rows for every indexed file (streamed: bounded memory whatever the library size)."""
    counter = [0]
    files = 0
    for fids, scores in score_blocks(
        catalog_blocks(catalog, counter=counter), label_vecs, agg=agg, exclusive=exclusive, logit_scale=logit_scale
    ):
        files += len(fids)
        rows, idx, vals = select(scores, top_k=top_k, threshold=threshold)
        for r, i, s in zip(rows.tolist(), idx.tolist(), vals.tolist()):
            lab = labels[i]
            yield TagRow(int(fids[r]), lab.name, lab.cat_id, float(s))
    if stats is not None:
        stats.update(files=files, chunks=counter[0])


def tag_library(
    lib,
    labels: Sequence[Label],
    *,
    set_name: str,
    templates: Sequence[str] | None = None,
    agg: str = "max",
    exclusive: bool = False,
    top_k: int | None = None,
    threshold: float | None = None,
    progress: bool = False,
) -> TagReport:
    """Zero-shot tag every indexed file of `lib` (a search.Library) and store the set."""
    t0 = time.perf_counter()
    templates = list(templates or load_templates())
    if lib.catalog.get_model() is None:
        raise UserError("the index is empty; run 'sfx-index build LIBRARY' first")
    top_k, threshold = _resolve_selection(exclusive, top_k, threshold)
    # Label prompts are shared by every index of the model, and embedding them can take minutes.
    vecs = label_vectors(labels, templates, lambda t: lib.text_vectors(t, shared=True, progress=progress))
    scale = logit_scale_a(lib.model) if exclusive else None
    stats: dict = {}
    counts: dict[str, int] = {}
    tagged: set[int] = set()

    def counted(rows):
        # --top-k K keeps K labels per file even where the best cosine is <= 0 (random or
        # off-topic label sets): the catalog takes a machine tag whatever its score.
        for r in rows:
            counts[r.label] = counts.get(r.label, 0) + 1
            tagged.add(r.file_id)
            yield r

    rows = zero_shot_rows(lib.catalog, labels, vecs, agg=agg, exclusive=exclusive, logit_scale=scale,
                          top_k=top_k, threshold=threshold, stats=stats)
    n = lib.catalog.replace_tag_set(set_name, counted(rows), source="zero-shot", model=lib.model)
    return TagReport(
        set_name=set_name, source="zero-shot", model=lib.model, labels=len(labels), templates=len(templates),
        files=stats.get("files", 0), chunks=stats.get("chunks", 0), tags=n, seconds=round(time.perf_counter() - t0, 3),
        mode="exclusive" if exclusive else "multi-label", agg=agg, top_k=top_k, threshold=threshold,
        label_counts=dict(sorted(counts.items(), key=lambda kv: -kv[1])), tagged_files=len(tagged),
    )


def tag_with_head(
    lib, head_name: str, *, set_name: str | None = None, top_k: int | None = None, threshold: float | None = None
) -> TagReport:
    """Tag every indexed file with a saved head (its class probabilities) and store the set."""
    from .active import is_other_class
    from .heads import file_vectors, load_head

    t0 = time.perf_counter()
    head = load_head(lib.catalog, head_name)
    top_k, threshold = _resolve_selection(True, top_k, threshold)
    fids, X = file_vectors(lib.catalog)
    probs = head.predict_proba(X) if len(fids) else np.zeros((0, len(head.classes)), np.float32)
    rows, idx, vals = select(probs, top_k=top_k, threshold=threshold)
    counts: dict[str, int] = {}
    out = []
    for r, i, s in zip(rows.tolist(), idx.tolist(), vals.tolist()):
        lab = head.labels[i]
        if is_other_class(lab):  # a confirmation head's "everything else" is no tag
            continue
        counts[lab.name] = counts.get(lab.name, 0) + 1
        out.append(TagRow(int(fids[r]), lab.name, lab.cat_id, float(s)))
    name = set_name or head_name
    n = lib.catalog.replace_tag_set(name, out, source="head", model=lib.model)
    return TagReport(
        set_name=name, source="head", model=lib.model, labels=len(head.classes), templates=0, files=len(fids),
        chunks=0, tags=n, seconds=round(time.perf_counter() - t0, 3), mode="exclusive", agg="mean",
        top_k=top_k, threshold=threshold, label_counts=dict(sorted(counts.items(), key=lambda kv: -kv[1])),
        tagged_files=len({int(fids[r]) for r in rows.tolist()}),
    )

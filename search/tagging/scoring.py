"""Zero-shot scoring: stored chunk vectors x label vectors -> per-file label scores. Pure numpy.

One block of chunks is one matrix product, (chunks, d) @ (d, labels); chunks arrive grouped
by file, so the per-file reduction is one `np.maximum.reduceat` / `np.add.reduceat`.

Modes (`exclusive`):
- multi-label: a file's score for a label is the cosine of its chunks with the label vector,
  aggregated over the chunks (max: the label's best moment; mean: the whole file).
- exclusive: the aggregated cosines of a file become logits scaled like CLAP's
  `logits_per_audio = audio_embeds @ text_embeds.T * logit_scale_a.exp()` (transformers
  modeling_clap.ClapModel.forward: the audio-side scale for audio rows against text columns;
  `logit_scale_t` scales `logits_per_text`) and a softmax over the label set gives the
  probability of each label. For a one-chunk file this is exactly the model's softmax.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

AGGREGATIONS = ("max", "mean")


def group_starts(file_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For file ids grouped in runs: (unique file id per run, start index of each run)."""
    file_ids = np.asarray(file_ids)
    if len(file_ids) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, file_ids[1:] != file_ids[:-1]])
    return file_ids[starts].astype(np.int64), starts


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def score_block(
    vecs: np.ndarray,
    file_ids: np.ndarray,
    label_vecs: np.ndarray,
    *,
    agg: str = "max",
    exclusive: bool = False,
    logit_scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Chunks grouped by file -> (file ids, (files, labels) float32 scores)."""
    if agg not in AGGREGATIONS:
        raise ValueError(f"agg must be one of {AGGREGATIONS}")
    fids, starts = group_starts(file_ids)
    if len(fids) == 0:
        return fids, np.zeros((0, len(label_vecs)), np.float32)
    sims = np.asarray(vecs, np.float32) @ np.asarray(label_vecs, np.float32).T
    if agg == "max":
        scores = np.maximum.reduceat(sims, starts, axis=0)
    else:
        counts = np.diff(np.r_[starts, len(sims)]).astype(np.float32)
        scores = np.add.reduceat(sims, starts, axis=0) / counts[:, None]
    if exclusive:
        if logit_scale is None:
            raise ValueError("exclusive scoring needs the model's logit scale")
        scores *= np.float32(logit_scale)
        scores = softmax(scores)
    return fids, scores


def regroup(blocks: Iterable[tuple[np.ndarray, np.ndarray]], block_chunks: int = 32768) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(file ids, vectors) batches whose runs of one file may straddle batch edges -> blocks
    of at most about `block_chunks` chunks that never split a file (the trailing file waits)."""
    buf_f: list[np.ndarray] = []
    buf_v: list[np.ndarray] = []
    n = 0
    for fids, vecs in blocks:
        if len(fids) == 0:
            continue
        buf_f.append(np.asarray(fids))
        buf_v.append(np.asarray(vecs, np.float32))
        n += len(fids)
        if n < block_chunks:
            continue
        f = np.concatenate(buf_f) if len(buf_f) > 1 else buf_f[0]
        v = np.concatenate(buf_v) if len(buf_v) > 1 else buf_v[0]
        cut = _last_run_start(f)
        if cut == 0:  # one file so far: keep reading until it ends
            buf_f, buf_v = [f], [v]
            continue
        yield from _split(f[:cut], v[:cut], block_chunks)
        buf_f, buf_v, n = [f[cut:]], [v[cut:]], len(f) - cut
    if n:
        f = np.concatenate(buf_f) if len(buf_f) > 1 else buf_f[0]
        v = np.concatenate(buf_v) if len(buf_v) > 1 else buf_v[0]
        yield from _split(f, v, block_chunks)


def _last_run_start(f: np.ndarray) -> int:
    """Index where the trailing run of equal file ids starts."""
    diff = np.flatnonzero(f[1:] != f[:-1])
    return int(diff[-1] + 1) if len(diff) else 0


def _split(f: np.ndarray, v: np.ndarray, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pieces of about `size` chunks cut at file boundaries (bounds the similarity matrix)."""
    _, starts = group_starts(f)
    a = 0
    while a < len(f):
        if a + size >= len(f):
            b = len(f)
        else:
            i = int(np.searchsorted(starts, a + size, side="right")) - 1
            if starts[i] > a:
                b = int(starts[i])
            else:  # one file longer than `size`: it goes whole
                j = int(np.searchsorted(starts, a, side="right"))
                b = int(starts[j]) if j < len(starts) else len(f)
        yield f[a:b], v[a:b]
        a = b


def score_blocks(
    blocks: Iterable[tuple[np.ndarray, np.ndarray]],
    label_vecs: np.ndarray,
    *,
    agg: str = "max",
    exclusive: bool = False,
    logit_scale: float | None = None,
    block_chunks: int = 32768,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream (file ids, scores) for (file ids, vectors) batches grouped by file, in bounded memory."""
    for f, v in regroup(blocks, block_chunks):
        yield score_block(v, f, label_vecs, agg=agg, exclusive=exclusive, logit_scale=logit_scale)


def select(
    scores: np.ndarray, *, top_k: int | None = None, threshold: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which (row, label) pairs become tags: the top K per row, and/or those at or above threshold.

    Returns (row index, label index, score) arrays, each row's labels best first.
    """
    n, L = scores.shape
    if n == 0 or L == 0:
        e = np.zeros(0, np.int64)
        return e, e, np.zeros(0, np.float32)
    k = L if top_k is None else max(1, min(int(top_k), L))
    if k < L:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(L), (n, L))
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    rows = np.repeat(np.arange(n), idx.shape[1])
    idx, vals = idx.reshape(-1), vals.reshape(-1)
    if threshold is not None:
        keep = vals >= threshold
        rows, idx, vals = rows[keep], idx[keep], vals[keep]
    return rows, idx.astype(np.int64), vals.astype(np.float32)

"""Screening many fingerprint pairs at once: which of them `fingerprint.match` could accept.

`match` costs about a millisecond a pair (FFT cross-correlations to find the alignment, then
the checks), and at library scale the candidate pairs of look-alike sounds number hundreds of
thousands, nearly all of them rejected in the end. `screen` rejects most of those in bulk, with
numpy over all pairs together, and never rejects a pair that `match` would accept: it tests
two of the conditions `match` itself requires (`fingerprint._check`), at EVERY alignment
`match` could choose, so that a pair failing them at all alignments fails `match` too:

- cover: the overlap holds at least MIN_COVER of the shorter file's voiced frames. This bounds
  the alignments to an interval per pair (the shorter file lies nearly inside the longer);
- the first second: the overlap's first SEGMENT_FRAMES frames, where they hold at least
  MIN_BITS / 2 reliable bits, differ in at most MAX_SEGMENT_BER of them. Another take agrees
  on about half of its bits, so at nearly every alignment of a look-alike this fails.

Files of one length are aligned by `match` only within SAME_LENGTH_LAGS frames; the screen
uses the same window. The bits are compared 64 at a time (two frames per popcount).

    from indexer.fpscreen import screen
    keep = screen(fingerprints, pairs)   # bool per pair: worth a full `match`
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .fingerprint import (MAX_SEGMENT_BER, MIN_BITS, MIN_COVER, SAME_LENGTH_LAGS, SAME_LENGTH_S,
                          SEGMENT_FRAMES, SILENT_DB, Fingerprint)

SEG = SEGMENT_FRAMES
WORDS = SEG // 2  # 64-bit words a segment spans
LAGS_PER_BATCH = 16_000  # alignments compared at once: 4 arrays of (batch, WORDS) uint64 in cache


class _Packed:
    """Every file's bits and reliable-bit mask end to end, each file followed by SEG empty
    frames (so that a segment running past a file's end compares nothing there, as the
    overlap in `_check` stops there), as rows of SEG frames from any start frame."""

    def __init__(self, fps: Sequence[Fingerprint]):
        lengths = np.array([len(f.bits) for f in fps], dtype=np.int64)
        self.lengths = lengths
        self.starts = np.concatenate([[0], np.cumsum(lengths + SEG)[:-1]]).astype(np.int64)
        pad32, pad_v = np.zeros(SEG, np.uint32), np.zeros(SEG, bool)
        tail32, tail_v = np.zeros(2, np.uint32), np.zeros(2, bool)

        def laid_out(parts, pad, tail):  # each file's frames, then SEG empty ones
            return np.concatenate([x for part in parts for x in (part, pad)] + [tail])

        # Fingerprint.voiced, computed for all files at once the same way.
        voiced = laid_out([f.energy_cdb.astype(np.float32) / 100.0 > SILENT_DB for f in fps], pad_v, tail_v)
        mask = laid_out([f.strong for f in fps], pad32, tail32) & np.where(voiced, np.uint32(0xFFFFFFFF), np.uint32(0))
        bits = (laid_out([f.bits for f in fps], pad32, tail32) & mask).astype(np.uint64)
        mask = mask.astype(np.uint64)
        total = len(bits)
        # Voiced frames before each position: a file's own count is a difference of two.
        self.voiced_cum = np.concatenate([[0], np.cumsum(voiced, dtype=np.int64)])
        # Two frames to a 64-bit word, in two copies: words starting on even frames, then on
        # odd ones, so that the SEG frames from any start are WORDS consecutive words.
        pair_words = [(b[:-1] | (b[1:] << np.uint64(32))) for b in (bits, mask)]
        self.half = total // 2  # words starting on an even frame
        self.bits64, self.mask64 = (np.concatenate([w[0::2][:self.half], w[1::2][:self.half]]) for w in pair_words)

    def rows(self, arr: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """(len(starts), WORDS) uint64: the SEG frames from each start frame."""
        at = np.where(starts % 2 == 0, starts // 2, self.half + starts // 2)
        return np.lib.stride_tricks.sliding_window_view(arr, WORDS)[at]


def cover_intervals(packed: _Packed, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair (i, j), the lags (frame k of j on frame k + lag of i) at which the overlap holds
    MIN_COVER of the shorter file's voiced frames, as `_check` requires: lo > hi where none.

    The count of the shorter file's voiced frames in the overlap rises, stays, then falls as the
    lag grows, so the lags that pass form one interval, found from each end by a search."""
    la, lb = packed.lengths[pairs[:, 0]], packed.lengths[pairs[:, 1]]
    b_short = lb <= la
    short = np.where(b_short, pairs[:, 1], pairs[:, 0])
    n_short, n_long = np.where(b_short, lb, la), np.where(b_short, la, lb)
    cum, start = packed.voiced_cum, packed.starts[short]
    base = cum[start]
    total = cum[start + n_short] - base
    need = MIN_COVER * total
    # The shorter file's frames [s, end) hold need when its count before s is at most
    # total - need: s <= r; its frames [0, e) when the count before e is at least need: e >= q.
    # One frame of slack each way keeps float rounding at the edge from narrowing the interval.
    r = np.searchsorted(cum, base + (total - need), side="right") - 1 - start + 1
    q = np.searchsorted(cum, base + need, side="left") - start - 1
    lo = np.where(b_short, -r, q - n_long)  # b inside a: from b's head hanging out ...
    hi = np.where(b_short, n_long - q, r)  # ... to its tail hanging out; a inside b likewise
    lo, hi = np.maximum(lo, 1 - lb), np.minimum(hi, la - 1)  # the files overlap at all
    hi = np.where(total > 0, hi, lo - 1)
    return lo, hi


def screen(fps: Sequence[Fingerprint], pairs: np.ndarray, progress=None) -> np.ndarray:
    """For index pairs (k, 2) into fps: False where `match(fps[i], fps[j])` is sure to be None."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    keep = np.zeros(len(pairs), dtype=bool)
    if not len(pairs):
        return keep
    packed = _Packed(fps)
    lo, hi = cover_intervals(packed, pairs)
    # Either file with no voiced frame: match is None (the interval is empty then, total == 0,
    # only for the shorter; test the longer too).
    cum, st, n = packed.voiced_cum, packed.starts, packed.lengths
    voiced = cum[st + n] - cum[st] > 0
    hi = np.where(voiced[pairs[:, 0]] & voiced[pairs[:, 1]], hi, lo - 1)
    durations = np.array([f.duration_s for f in fps])
    same = np.abs(durations[pairs[:, 0]] - durations[pairs[:, 1]]) <= SAME_LENGTH_S
    lo = np.where(same, np.maximum(lo, -SAME_LENGTH_LAGS), lo)
    hi = np.where(same, np.minimum(hi, SAME_LENGTH_LAGS), hi)
    counts = np.maximum(hi - lo + 1, 0)
    todo = np.flatnonzero(counts)
    # Batches of whole pairs, about LAGS_PER_BATCH alignments each.
    ends = np.cumsum(counts[todo])
    cuts = np.unique(np.searchsorted(ends, np.arange(LAGS_PER_BATCH, int(ends[-1]) if len(ends) else 0, LAGS_PER_BATCH)))
    batches = [b for b in np.split(todo, cuts) if len(b)]
    for batch in (progress(batches) if progress else batches):
        keep[batch] = _any_lag_passes(packed, pairs[batch], lo[batch], counts[batch])
    return keep


def _any_lag_passes(packed: _Packed, pairs: np.ndarray, lo: np.ndarray, counts: np.ndarray) -> np.ndarray:
    owner = np.repeat(np.arange(len(pairs)), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    lag = lo[owner] + (np.arange(int(counts.sum())) - first[owner])
    sa, sb = packed.starts[pairs[owner, 0]], packed.starts[pairs[owner, 1]]
    # lag >= 0: the overlap starts at b's frame 0, on a's frame lag; lag < 0: at a's frame 0.
    ahead = lag >= 0
    probe = np.where(ahead, sb, sa)
    window = np.where(ahead, sa + lag, sb - lag)
    m = packed.rows(packed.mask64, window)
    m &= packed.rows(packed.mask64, probe)
    x = packed.rows(packed.bits64, window)
    x ^= packed.rows(packed.bits64, probe)
    x &= m
    count = np.bitwise_count(m).sum(axis=1, dtype=np.int64)
    wrong = np.bitwise_count(x).sum(axis=1, dtype=np.int64)
    passes = (count < MIN_BITS / 2) | (wrong <= MAX_SEGMENT_BER * count)
    return np.logical_or.reduceat(passes, first)

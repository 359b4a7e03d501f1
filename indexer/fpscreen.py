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

The lags where the first second agrees best are handed to `match` as alignments to try: its
own come from the level envelopes, which a steady or clipped envelope can leave ambiguous.

    from indexer.fpscreen import screen
    keep, hints = screen(fingerprints, pairs)   # bool per pair: worth a full `match`; lags to try
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .fingerprint import (MAX_SEGMENT_BER, MIN_BITS, MIN_COVER, SAME_LENGTH_LAGS, SAME_LENGTH_S,
                          SEGMENT_FRAMES, SILENT_DB, Fingerprint)

SEG = SEGMENT_FRAMES
WORDS = SEG // 2  # 64-bit words a segment spans
HINTS = 3  # lags handed to match per kept pair
LAGS_PER_BATCH = 16_000  # alignments compared at once: 4 arrays of (batch, WORDS) uint64 in cache


class Packed:
    """Every file's bits and reliable-bit mask end to end, each file followed by SEG empty
    frames (so that a segment running past a file's end compares nothing there, as the
    overlap in `_check` stops there), as rows of SEG frames from any start frame."""

    def __init__(self, fps: Sequence[Fingerprint]):
        lengths = np.array([len(f.bits) for f in fps], dtype=np.int64)
        self.lengths = lengths
        self.starts = np.concatenate([[0], np.cumsum(lengths + SEG)[:-1]]).astype(np.int64)
        total = int(lengths.sum()) + SEG * len(fps)
        tail = 4 + total % 2  # an even length, and room past the last file's empty frames

        def laid_out(parts, fill, dtype):  # each file's frames, then SEG empty ones
            pad = np.full(SEG, fill, dtype)
            return np.concatenate([x for part in parts for x in (part, pad)] + [np.full(tail, fill, dtype)])

        # Fingerprint.voiced, for every frame at once and computed the same way.
        voiced = laid_out([f.energy_cdb for f in fps], np.iinfo(np.int16).min, np.int16).astype(np.float32) / 100.0 > SILENT_DB
        mask = laid_out([f.strong for f in fps], 0, np.uint32) & np.where(voiced, np.uint32(0xFFFFFFFF), np.uint32(0))
        bits = laid_out([f.bits for f in fps], 0, np.uint32) & mask
        # Voiced frames before each position: a file's own count is a difference of two.
        self.voiced_cum = np.concatenate([[0], np.cumsum(voiced, dtype=np.int64)])
        # Two frames to a 64-bit word, in two copies: words starting on even frames, then on
        # odd ones, so that the SEG frames from any start are WORDS consecutive words. Both
        # sides of a comparison are packed alike, so the byte order does not matter.
        self.half = len(bits) // 2  # words starting on an even frame
        self.bits64, self.mask64 = (np.concatenate([w.view(np.uint64), w[1:-1].view(np.uint64)]) for w in (bits, mask))

    def rows(self, arr: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """(len(starts), WORDS) uint64: the SEG frames from each start frame."""
        at = np.where(starts % 2 == 0, starts // 2, self.half + starts // 2)
        return np.lib.stride_tricks.sliding_window_view(arr, WORDS)[at]


def cover_intervals(packed: Packed, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def screen(fps: Sequence[Fingerprint], pairs: np.ndarray, progress=None) -> tuple[np.ndarray, dict[int, list[int]]]:
    """For index pairs (k, 2) into fps: False where `match(fps[i], fps[j])` is sure to be None;
    and for kept pairs, up to HINTS lags whose first second agrees best (index into pairs ->
    lags, best first): alignments for `match` to try beside those it finds itself."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    keep = np.zeros(len(pairs), dtype=bool)
    hints: dict[int, list[int]] = {}
    if not len(pairs):
        return keep, hints
    packed = Packed(fps)
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
        keep[batch], owner, lags = _any_lag_passes(packed, pairs[batch], lo[batch], counts[batch])
        for k, lag in zip(batch[owner].tolist(), lags.tolist()):
            if len(hints.setdefault(k, [])) < HINTS:
                hints[k].append(lag)
    return keep, hints


def _any_lag_passes(packed: Packed, pairs: np.ndarray, lo: np.ndarray, counts: np.ndarray):
    """Per pair, whether any of its lags passes; and (pair, lag) of the lags that pass on
    enough bits to tell, by pair then agreement, best first."""
    owner = np.repeat(np.arange(len(pairs)), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    lag = lo[owner] + (np.arange(int(counts.sum())) - first[owner])
    sa, sb = packed.starts[pairs[:, 0]], packed.starts[pairs[:, 1]]
    # lag >= 0: the overlap starts at b's frame 0, on a's frame lag; lag < 0: at a's frame 0.
    # The probes (a pair's two heads) come from a table of the batch's heads, kept in cache.
    ahead = lag >= 0
    heads = np.concatenate([sb, sa])
    probe = owner + np.where(ahead, 0, len(pairs))
    window = np.where(ahead, sa[owner] + lag, sb[owner] - lag)
    m = packed.rows(packed.mask64, window)
    m &= packed.rows(packed.mask64, heads)[probe]
    x = packed.rows(packed.bits64, window)
    x ^= packed.rows(packed.bits64, heads)[probe]
    x &= m
    count = np.bitwise_count(m).sum(axis=1, dtype=np.int64)
    wrong = np.bitwise_count(x).sum(axis=1, dtype=np.int64)
    agree = wrong <= MAX_SEGMENT_BER * count
    told = count >= MIN_BITS / 2
    passes = ~told | agree
    good = np.flatnonzero(told & agree)
    good = good[np.lexsort((wrong[good] / count[good], owner[good]))]
    return np.logical_or.reduceat(passes, first), owner[good], lag[good]

"""Where a file's 10 s windows fall, and the sample arithmetic that cuts and pads them.

The window policy of the index (DESIGN.md "Windows"), apart from decoding so that it can be
used (by the tagging evaluation, the benchmarks) without opening a file:

- a file of <= 10 s is one window, repeat-padded exactly like transformers'
  ClapFeatureExtractor ``padding="repeatpad"`` (`repeat_pad`);
- a longer file is cut into full windows at ``k * hop``; the last window is end-aligned
  (it starts at duration - 10 s) so that no window of a long file is padded (`window_starts`).

`indexer.audio.iter_windows` cuts the decoded stream by the same rule, through `Tail`.
"""

from __future__ import annotations

import numpy as np

from .config import HOP_S, SAMPLE_RATE, WINDOW_S, WINDOW_SAMPLES


def n_samples(duration_s: float) -> int:
    """A duration in samples at 48 kHz, rounded: how window starts and hops are counted."""
    return int(round(duration_s * SAMPLE_RATE))


def _window_offsets(total: int, window: int, hop: int) -> list[int]:
    """Start samples of the windows of a `total`-sample signal (see module docstring)."""
    if total <= window:
        return [0]
    starts = list(range(0, total - window + 1, hop))
    if starts[-1] + window < total:
        starts.append(total - window)
    return starts


def window_starts(duration_s: float, window_s: float = WINDOW_S, hop_s: float = HOP_S) -> list[float]:
    """Window start times (s) for a file of `duration_s`, as iter_windows cuts it at 48 kHz."""
    if hop_s <= 0 or window_s <= 0:
        raise ValueError("window_s and hop_s must be positive")
    total = n_samples(duration_s)
    return [s / SAMPLE_RATE for s in _window_offsets(total, n_samples(window_s), n_samples(hop_s))]


def repeat_pad(x: np.ndarray, n: int = WINDOW_SAMPLES) -> np.ndarray:
    """ClapFeatureExtractor "repeatpad": tile int(n / len) times, then zero-pad to n.

    A signal longer than n is returned cut to its first n samples (CLAP never pads those).
    """
    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        return np.zeros(n, dtype=np.float32)
    if len(x) >= n:
        return x[:n].copy()
    x = np.tile(x, int(n / len(x)))
    return np.pad(x, (0, n - x.shape[0]), mode="constant", constant_values=0).astype(np.float32)


class Tail:
    """The not-yet-windowed end of the stream, in a preallocated buffer (amortised O(n))."""

    def __init__(self, capacity: int):
        self.buf = np.zeros(capacity, dtype=np.float32)
        self.start = 0  # absolute sample index of buf[0]
        self.fill = 0

    @property
    def end(self) -> int:
        return self.start + self.fill

    def append(self, x: np.ndarray, keep_from: int) -> None:
        if self.fill + len(x) > len(self.buf):
            drop = max(0, min(keep_from, self.end) - self.start)
            self.buf[: self.fill - drop] = self.buf[drop : self.fill]
            self.start += drop
            self.fill -= drop
            if self.fill + len(x) > len(self.buf):  # only for a huge chunk: grow
                grown = np.zeros(self.fill + len(x), dtype=np.float32)
                grown[: self.fill] = self.buf[: self.fill]
                self.buf = grown
        self.buf[self.fill : self.fill + len(x)] = x
        self.fill += len(x)

    def get(self, a: int, b: int) -> np.ndarray:
        return self.buf[a - self.start : b - self.start].copy()

"""Measured sound: loudness, peaks, clipping, DC and silences, accumulated block by block.

`SoundMeter` is fed the decoded blocks that the decode stream already reads (no second
read of the file) at the file's NATIVE rate and channel layout, before the downmix and the
48 kHz resample: loudness and true peak are defined on the channels as delivered (a stereo
file's loudness sums its channels, BS.1770 eq. 2; a downmix would cancel out-of-phase
content and a resample would move the inter-sample peaks), and clipping and DC are facts of
the stored samples.

- Integrated loudness (ITU-R BS.1770-4 / EBU R128, LUFS): pyloudnorm's K-weighting filters
  (the two biquads of its `Meter`) run with their state carried across blocks
  (`indexer.blockfilter`: the same recursion as `scipy.signal.sosfilt`, as matrix products
  over blocks of samples, in float32); the K-weighted energy is summed per 100 ms step and
  the 400 ms gating blocks (75 % overlap) are formed from four consecutive steps, exactly
  the blocks pyloudnorm cuts from a whole file, so the gated result is the same (tests
  compare with `pyloudnorm.Meter.integrated_loudness` on the whole file). Null for a file
  shorter than one 400 ms block or with no block above the -70 LUFS absolute gate.
- Loudness range (EBU Tech 3342, LU): 3 s short-term blocks every 100 ms from the same
  steps, gated at -70 LUFS absolute and -20 LU relative, 95th minus 10th percentile; the
  signal is followed by 1.5 s of silence as pyloudnorm does. Null below 3 s.
- Sample peak (dBFS) and true peak (dBTP): 4x oversampling with the 48-tap interpolating
  FIR of BS.1770-4 Annex 2 (used at every input rate: oversampling a 96 kHz file 4x only
  adds accuracy). Segments whose samples cannot reach the running peak through the filter
  (the filter's largest gain times their largest sample) are skipped: same result, less
  work on the quiet parts. The true peak is never reported below the sample peak.
- Clipped samples: samples in runs of >= 3 consecutive samples at |x| >= 0.999 (-0.009 dBFS)
  in one channel, counted across block boundaries. A lone full-scale sample is a peak, not
  clipping.
- DC offset: the mean of the channel whose mean is largest in magnitude (signed, full scale 1).
- Leading / trailing silence (s): time before the first and after the last sample above
  -60 dBFS in any channel; a file with no such sample is silent from end to end.

Sample peak is null for digital silence (no non-zero sample): -inf dBFS has no JSON value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .blockfilter import BlockFilter
from .truepeak import L1_GAIN, SEGMENT, TAPS, exact_peak, one_blas_thread

# Gating and block constants of BS.1770-4 and EBU Tech 3342.
STEP_S = 0.1
BLOCK_STEPS = 4  # 400 ms momentary block
SHORT_TERM_STEPS = 30  # 3 s short-term block
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
LRA_RELATIVE_GATE_LU = -20.0
LRA_TAIL_SILENCE_S = 1.5
LRA_MIN_S = 3.0

CLIP_LEVEL = 0.999
CLIP_RUN = 3
SILENCE_DBFS = -60.0
SILENCE_LEVEL = 10 ** (SILENCE_DBFS / 20)


KEYS = ("loudness_lufs", "true_peak_dbtp", "sample_peak_dbfs", "clipped_samples", "dc_offset",
        "silence_head_s", "silence_tail_s", "loudness_range_lu")


@dataclass
class Measurements:
    """One file's measured sound; None where a value is not measurable (see module docstring)."""

    loudness_lufs: float | None = None
    true_peak_dbtp: float | None = None
    sample_peak_dbfs: float | None = None
    clipped_samples: int | None = None
    dc_offset: float | None = None
    silence_head_s: float | None = None
    silence_tail_s: float | None = None
    loudness_range_lu: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def channel_gains(channels: int) -> np.ndarray:
    """BS.1770 channel weights: pyloudnorm's [L, R, C, Ls, Rs] = [1, 1, 1, 1.41, 1.41] up to
    five channels; six channels are read as 5.1 in WAV order (L R C LFE Ls Rs, the LFE left
    out as BS.1770 says); more channels count 1.0 each (no layout is known)."""
    if channels <= 5:
        return np.array([1.0, 1.0, 1.0, 1.41, 1.41][:channels])
    if channels == 6:
        return np.array([1.0, 1.0, 1.0, 0.0, 1.41, 1.41])
    return np.ones(channels)


def k_weighting_sos(samplerate: int) -> np.ndarray:
    """pyloudnorm's K-weighting (high shelf, then high pass; the stages and parameters of its
    `Meter(rate, "K-weighting")`) as second-order sections."""
    from pyloudnorm.iirfilter import IIRfilter

    stages = (
        IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, samplerate, "high_shelf"),
        IIRfilter(0.0, 0.5, 38.0, samplerate, "high_pass"),
    )
    sections = []
    for stage in stages:
        b = np.asarray(stage.b, dtype=np.float64) * stage.passband_gain
        a = np.asarray(stage.a, dtype=np.float64)
        sections.append(np.concatenate([b / a[0], a / a[0]]))
    return np.stack(sections)


def _db(x: float) -> float:
    return 20.0 * math.log10(x)


def _lufs(energy: np.ndarray | float) -> np.ndarray | float:
    with np.errstate(divide="ignore"):
        return -0.691 + 10.0 * np.log10(energy)


class SoundMeter:
    """Accumulates `Measurements` over (frames, channels) float blocks of one file."""

    def __init__(self, samplerate: int, channels: int):
        self.sr = int(samplerate)
        self.ch = int(channels)
        self.frames = 0
        self._gains = channel_gains(self.ch)
        self._equal_gains = bool(np.all(self._gains == self._gains[0]))
        self._k_filter = BlockFilter(k_weighting_sos(self.sr), self.ch)
        # Step k covers samples [round(k * 0.1 * sr), round((k + 1) * 0.1 * sr)).
        self._steps: list[float] = []  # gain-weighted mean-square numerators of finished steps
        self._step_acc = 0.0
        self._peak = 0.0
        self._true_peak = 0.0
        self._tp_hist = np.zeros((TAPS - 1, self.ch), dtype=np.float32)  # the last frames fed
        self._sums = np.zeros(self.ch)
        self._clipped = 0
        self._open_runs = np.zeros(self.ch, dtype=np.int64)
        self._first_loud: int | None = None
        self._last_loud: int | None = None

    def _step_end(self, k: int) -> int:
        return int(round((k + 1) * STEP_S * self.sr))

    # ------------------------------------------------------------------ feeding

    def add(self, block: np.ndarray) -> None:
        """Feed the next (frames, channels) block of the file (float, full scale 1.0)."""
        if block.ndim == 1:
            block = block[:, None]
        n = len(block)
        if n == 0:
            return
        # Frames as decoded, (frames, channels): every pass below reads it in place, with no
        # transposed or float64 copy of the block.
        x = np.ascontiguousarray(block, dtype=np.float32)
        peaks = _segment_peaks(x)  # largest |sample| of each SEGMENT frames, all channels
        loudest = float(peaks.max())
        self._peak = max(self._peak, loudest)
        self._loudness(x)
        self._true_peak_of(x, peaks)
        # float64 accumulation (as a whole-file mean in float64 would); reduceat adds rows of
        # `channels` values, where sum(axis=0) goes through a slow strided reduction.
        self._sums += np.add.reduceat(x, [0], axis=0, dtype=np.float64)[0]
        if loudest >= CLIP_LEVEL:
            self._clipping(np.abs(x) >= CLIP_LEVEL)
        else:  # no sample at the clip level: every open run ends here
            for c in range(self.ch):
                self._close_run(c)
        if loudest > SILENCE_LEVEL:
            self._loud_edges(x, peaks)
        self.frames += n

    def _loud_edges(self, x: np.ndarray, peaks: np.ndarray) -> None:
        """First and last frame above SILENCE_LEVEL, searched only in the segments that hold one."""
        loud = np.flatnonzero(peaks > SILENCE_LEVEL)
        if self._first_loud is None:
            s = int(loud[0]) * SEGMENT
            self._first_loud = self.frames + s + int(_loud_samples(x[s:s + SEGMENT])[0]) // self.ch
        s = int(loud[-1]) * SEGMENT
        self._last_loud = self.frames + s + int(_loud_samples(x[s:s + SEGMENT])[-1]) // self.ch

    def _loudness(self, x: np.ndarray) -> None:
        # The K-weighted frames, as (blocks, channels, BLOCK) rows (indexer.blockfilter: the
        # filters of all channels as matrix products, in float32; the integrated value agrees
        # with pyloudnorm's float64 to 0.001 LU).
        with one_blas_thread():
            y = self._k_filter(x)
            # Each frame's gain-weighted sum of squares over the channels, in time order.
            if self._equal_gains:
                power = np.einsum("bcl,bcl->bl", y, y).reshape(-1)[: len(x)]
            else:
                power = np.einsum("bcl,bcl,c->bl", y, y, self._gains.astype(np.float32)).reshape(-1)[: len(x)]
        pos, end = self.frames, self.frames + len(x)
        k0 = len(self._steps)
        # The ends of the steps this block reaches, as _step_end computes them (same rounding).
        ks = np.arange(k0, k0 + int(len(x) / (STEP_S * self.sr)) + 2)
        ends = np.round((ks + 1) * STEP_S * self.sr).astype(np.int64)
        inside = ends[ends < end]
        cuts = np.concatenate([[0], inside - pos])
        sums = np.add.reduceat(power, cuts, dtype=np.float64)
        if self._equal_gains:
            sums *= self._gains[0]
        self._step_acc += float(sums[0])
        if len(sums) > 1:
            self._steps.append(self._step_acc)
            self._steps.extend(sums[1:-1].tolist())
            self._step_acc = float(sums[-1])
        if self._step_end(len(self._steps)) == end:
            self._steps.append(self._step_acc)
            self._step_acc = 0.0

    def _true_peak_of(self, x: np.ndarray, peaks: np.ndarray) -> None:
        """The largest |output| of the 4-phase FIR over this block, exactly, where it can matter.

        Output j reads frames j-11..j (the frames before this block from `_tp_hist`). A
        segment's outputs are at most the filter's L1 gain times the largest sample they read
        (its own and the previous segment's last 11 frames): segments whose bound cannot beat
        the running peak are skipped. The loudest segment goes first, so that the peak it
        finds skips more of the others; the rest are computed in one product, every output.
        """
        n = len(x)
        hist = self._tp_hist
        xe = np.concatenate([hist, x[: TAPS - 1]]) if n < TAPS - 1 else None
        self._tp_hist = (xe if xe is not None else x)[-(TAPS - 1):].copy()
        best = max(self._true_peak, self._peak)
        count = len(peaks)
        lead = np.empty(count, dtype=np.float32)  # max |x| of the 11 frames before each segment
        lead[0] = float(np.abs(hist).max())
        if count > 1:
            before = (np.arange(1, count) * SEGMENT)[:, None] + np.arange(1 - TAPS, 0)[None, :]
            lead[1:] = np.abs(x[before]).max(axis=(1, 2))
        reach = np.maximum(peaks, lead)
        hot = np.flatnonzero(L1_GAIN * reach > best)
        if len(hot):
            first = int(hot[np.argmax(reach[hot])])
            best = max(best, exact_peak(x, hist, [first]))
            rest = hot[(hot != first) & (L1_GAIN * reach[hot] > best)]
            if len(rest):
                best = max(best, exact_peak(x, hist, rest.tolist()))
        self._true_peak = best

    def _clipping(self, mask: np.ndarray) -> None:
        for c in range(self.ch):
            m = mask[:, c]
            if not m.any():
                self._close_run(c)
                continue
            edges = np.diff(np.concatenate([[0], m.view(np.int8), [0]]))
            starts = np.flatnonzero(edges == 1)
            ends = np.flatnonzero(edges == -1)
            lengths = ends - starts
            if starts[0] == 0:
                lengths[0] += self._open_runs[c]
            elif self._open_runs[c]:
                self._close_run(c)
            if ends[-1] == len(m):  # the last run may go on in the next block
                self._open_runs[c] = lengths[-1]
                lengths = lengths[:-1]
            else:
                self._open_runs[c] = 0
            self._clipped += int(lengths[lengths >= CLIP_RUN].sum())

    def _close_run(self, c: int) -> None:
        if self._open_runs[c] >= CLIP_RUN:
            self._clipped += int(self._open_runs[c])
        self._open_runs[c] = 0

    # ------------------------------------------------------------------ results

    def result(self) -> Measurements:
        """The measurements of everything fed so far (call once, after the last block)."""
        for c in range(self.ch):
            self._close_run(c)
        if self.frames == 0:
            return Measurements()
        duration = self.frames / self.sr
        means = self._sums / self.frames
        dc = float(means[int(np.argmax(np.abs(means)))])
        if self._first_loud is None:
            head = tail = duration
        else:
            head = self._first_loud / self.sr
            tail = (self.frames - 1 - self._last_loud) / self.sr
        return Measurements(
            loudness_lufs=_round(self.integrated_loudness(), 3),
            true_peak_dbtp=_round(_db(self._true_peak), 3) if self._true_peak > 0 else None,
            sample_peak_dbfs=_round(_db(self._peak), 3) if self._peak > 0 else None,
            clipped_samples=int(self._clipped),
            dc_offset=round(dc, 7),
            silence_head_s=round(head, 4),
            silence_tail_s=round(tail, 4),
            loudness_range_lu=_round(self.loudness_range(), 3),
        )

    def _step_energies(self) -> np.ndarray:
        """Per-step energy sums, the last (partial) step included, as pyloudnorm slices them."""
        steps = list(self._steps)
        if self._step_acc:
            steps.append(self._step_acc)
        return np.asarray(steps, dtype=np.float64)

    def _blocks(self, steps: np.ndarray, per_block: int, total_s: float) -> np.ndarray:
        """Mean-square energy of each block of `per_block` steps (75 %/97 % overlap: 1 step)."""
        block_s = per_block * STEP_S
        count = int(np.round((total_s - block_s) / STEP_S)) + 1  # pyloudnorm's block count
        if count <= 0:
            return np.zeros(0)
        need = count + per_block - 1
        if len(steps) < need:
            steps = np.concatenate([steps, np.zeros(need - len(steps))])
        csum = np.concatenate([[0.0], np.cumsum(steps)])
        sums = csum[per_block:per_block + count] - csum[:count]
        return sums / (block_s * self.sr)

    def integrated_loudness(self) -> float | None:
        duration = self.frames / self.sr
        if duration < BLOCK_STEPS * STEP_S:
            return None
        z = self._blocks(self._step_energies(), BLOCK_STEPS, duration)
        lk = _lufs(z)
        gated = z[lk >= ABSOLUTE_GATE_LUFS]
        if not len(gated):
            return None
        relative = _lufs(gated.mean()) + RELATIVE_GATE_LU
        kept = z[(lk > relative) & (lk > ABSOLUTE_GATE_LUFS)]
        if not len(kept):
            return None
        return float(_lufs(kept.mean()))

    def loudness_range(self) -> float | None:
        duration = self.frames / self.sr
        if duration < LRA_MIN_S:
            return None
        steps = np.concatenate([self._step_energies(), np.zeros(int(round(LRA_TAIL_SILENCE_S / STEP_S)))])
        short = _lufs(self._blocks(steps, SHORT_TERM_STEPS, duration + LRA_TAIL_SILENCE_S))
        short = short[short >= ABSOLUTE_GATE_LUFS]
        if not len(short):
            return None
        level = 10 * np.log10(np.mean(np.power(10, short / 10)))
        short = short[short >= level + LRA_RELATIVE_GATE_LU]
        if not len(short):
            return None
        return float(np.percentile(short, 95) - np.percentile(short, 10))


def _segment_peaks(x: np.ndarray) -> np.ndarray:
    """Largest |sample| of each SEGMENT frames of a (frames, channels) block, all channels
    together: a max and a min over contiguous rows (no |x| array of the whole block)."""
    n, ch = x.shape
    full = n // SEGMENT
    out = np.empty(full + (n % SEGMENT > 0), dtype=np.float32)
    if full:
        rows = x[: full * SEGMENT].reshape(full, SEGMENT * ch)
        np.maximum(rows.max(axis=1), -rows.min(axis=1), out=out[:full])
    if n % SEGMENT:
        rest = x[full * SEGMENT:]
        out[full] = max(float(rest.max()), -float(rest.min()))
    return out


def _loud_samples(seg: np.ndarray) -> np.ndarray:
    """Indices, in the flattened (frames, channels) segment, of its samples above SILENCE_LEVEL
    (a flat pass: a max over each frame's few channels is a slow short reduction per row)."""
    return np.flatnonzero(np.abs(seg.reshape(-1)) > SILENCE_LEVEL)


def _round(x: float | None, nd: int) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def measure_file(path) -> Measurements:
    """Measure a whole file on its own (reads it once, in blocks); for tests and one-off use."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        meter = SoundMeter(f.samplerate, f.channels)
        for block in f.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
            meter.add(np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0))
    return meter.result()

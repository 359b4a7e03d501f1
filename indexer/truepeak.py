"""The true peak's interpolating filter (BS.1770-4 Annex 2) and its exact evaluation.

`indexer.measure.SoundMeter` decides which segments of a block can hold the running true
peak (their largest sample times L1_GAIN must beat it) and asks `exact_peak` for every
output of every phase of those: 4x oversampling with the 48-tap FIR, 12 taps per phase over
the 12 latest samples. The outputs come from one BLAS product over rows of ROW samples, on
one thread, a few segments at a time so that the four outputs per sample stay in the cache
for their max.
"""

from __future__ import annotations

import numpy as np

# BS.1770-4 Annex 2: the 4-phase, 12-taps-per-phase interpolating FIR (order 48).
_PHASE0 = (0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000,
           -0.0594482421875, 0.1373291015625, 0.9721679687500, -0.1022949218750,
           0.0476074218750, -0.0266113281250, 0.0148925781250, -0.0083007812500)
_PHASE1 = (-0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250,
           -0.1665039062500, 0.4650878906250, 0.7797851562500, -0.2003173828125,
           0.1015625000000, -0.0582275390625, 0.0330810546875, -0.0189208984375)
TRUE_PEAK_FIR = np.stack(
    [np.array(_PHASE0), np.array(_PHASE1), np.array(_PHASE1[::-1]), np.array(_PHASE0[::-1])], axis=1
)  # (12 taps, 4 phases)
TAPS = TRUE_PEAK_FIR.shape[0]
# Correlating a window of 12 input samples, oldest first, with the reversed taps gives y[n].
_FIR_CORR = np.ascontiguousarray(TRUE_PEAK_FIR[::-1], dtype=np.float32)  # rows oldest-first
# |y_p[j]| <= sum_k |h_p[k]| * max|x| over its 12 inputs: the largest phase's L1 gain, with a
# margin for float32 rounding so that a skip can never hide a computed output above the peak.
L1_GAIN = float(np.abs(TRUE_PEAK_FIR).sum(axis=0).max()) * (1 + 1e-5)
SEGMENT = 4096  # frames per segment: the unit of the cheap peak bounds (sample, true, silence)
ROW = 16  # outputs per row of the exact true-peak product (SEGMENT is a multiple)


def _fir_rows() -> tuple[np.ndarray, np.ndarray]:
    """The FIR as two matrices over rows of ROW samples: with r = x[i*ROW:(i+1)*ROW] and the
    next row's first 11 samples n, r @ head + n @ tail holds outputs i*ROW..i*ROW+ROW-1, four
    phases each (column 4*o + p), output o reading x[i*ROW+o : i*ROW+o+12]. A BLAS product
    of ROW-wide rows computes every output of every phase faster than any per-tap pass."""
    head = np.zeros((ROW, 4 * ROW), dtype=np.float32)
    tail = np.zeros((TAPS - 1, 4 * ROW), dtype=np.float32)
    for o in range(ROW):
        for k in range(TAPS):
            where, at = (head, o + k) if o + k < ROW else (tail, o + k - ROW)
            where[at, 4 * o:4 * o + 4] = _FIR_CORR[k]
    return head, tail


_FIR_HEAD, _FIR_TAIL = _fir_rows()
_BLAS = None


def one_blas_thread():
    """A context in which BLAS calls run on one thread: a decode worker is one of several
    processes beside the model, and BLAS would otherwise spread a product over every core."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def exact_peak(x: np.ndarray, hist: np.ndarray, segments: list[int]) -> float:
    """max |output| over every phase and output of the given segments of a block, all channels
    (`hist`: the 11 frames before the block)."""
    n, ch = x.shape
    rows = SEGMENT // ROW + 1  # a segment's rows and the row its last outputs read into
    buf = np.zeros((len(segments) * ch, rows * ROW), dtype=np.float32)
    valid = []
    for i, g in enumerate(segments):
        s, e = g * SEGMENT, min(n, (g + 1) * SEGMENT)
        span = x[s - (TAPS - 1):e] if s >= TAPS - 1 else np.concatenate([hist[s:], x[:e]])
        buf[i * ch:(i + 1) * ch, :len(span)] = span.T
        valid.append(e - s)
    valid = np.repeat(valid, ch)  # outputs of each row of buf
    best = 0.0
    # A few segments at a time: the outputs (4 per sample) then stay in the cache for the max.
    with one_blas_thread():
        for c0 in range(0, len(buf), 4):
            a = buf[c0:c0 + 4].reshape(-1, rows, ROW)
            y = a[:, :-1] @ _FIR_HEAD
            y += a[:, 1:, :TAPS - 1] @ _FIR_TAIL
            y = y.reshape(len(a), -1)  # (row of buf, 4 * output + phase)
            for r in np.flatnonzero(valid[c0:c0 + 4] < SEGMENT):
                y[r, 4 * valid[c0 + r]:] = 0  # past the block's end: the zero padding, not outputs
            best = max(best, float(y.max()), -float(y.min()))
    return best

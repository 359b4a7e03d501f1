"""A compact per-file audio fingerprint, accumulated from the 48 kHz mono decode stream.

It answers one question for `search/duplicates.py`: is this file the same recording as that
one, whatever its format, rate, bit depth, channel layout, level or trimmed ends? The model's
vectors cannot decide it (they depend on the weights; two takes of one action can be nearer
than a file and its MP3), so the decision rests on the samples themselves:

- the mono 48 kHz stream the embedding reads (the downmix and resample make rate and channel
  layout vanish), taken down to 12 kHz with a streaming soxr resampler (everything used lies
  under 6 kHz: a quarter of the FFT work), cut into frames of 2048 samples (171 ms, Hann)
  every 256 samples (21.3 ms);
- energies in 34 log-spaced bands from 300 Hz to 5 kHz (inside what an MP3 at 128k, an
  OGG or a 16 kHz copy keeps);
- 32 bits per frame, after Haitsma and Kalker's robust hash: bit m is the sign of the
  band-energy difference (m, m+1) minus the same difference one frame earlier. A gain scales
  every energy alike, so the bits do not move with level; a lossy codec or a resample moves
  energies a little and flips few bits; a different take of a similar sound has its own
  fine structure and agrees on about half of them, as chance does;
- the frame's in-band energy in centi-dB (int16), for aligning trimmed copies, skipping
  silent frames, checking that both files are loud and quiet at the same moments (the bits
  say nothing where one file is silent), and telling the level difference ("-6.0 dB");
- a 33-value long-term spectrum shape (mean log band energy, mean removed: level-invariant),
  the coarse key that proposes candidate pairs cheaply at library scale.

At most MAX_FRAMES frames are kept (the first ~87 s): enough to recognise a copy, bounded
storage (6 bytes a frame). Chromaprint, the well-kept fingerprint library, was considered and
not used: it hashes chroma (musical pitch classes) at 11 kHz, which carries little of what
tells two noise-based sound effects apart, and it would need its own decode.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property

import numpy as np

STREAM_RATE = 48000  # what the decode stream gives
SAMPLE_RATE = 12000  # what the fingerprint analyses
FRAME = 2048
HOP = 256
BANDS = 33
F_LO, F_HI = 300.0, 5000.0  # inside the 12 kHz resampler's pass band
MAX_FRAMES = 4096
VERSION = 2  # 2: band sums in float64 (1: a float32 matrix product)
SILENT_DB = -70.0  # frames quieter than this carry no usable bits
STRONG_DB = 1.0

_HEADER = struct.Struct("<BHI")  # version, bands, frames


@dataclass
class Fingerprint:
    bits: np.ndarray  # uint32 (frames,)
    strong: np.ndarray  # uint32 (frames,): bits whose difference is over STRONG_DB (reliable)
    energy_cdb: np.ndarray  # int16 (frames,), frame energy in 1/100 dB (full-scale sine ~ 0)
    shape: np.ndarray  # float32 (BANDS,), mean log band energy with its mean removed
    duration_s: float  # the whole stream's duration (frames may stop at MAX_FRAMES)

    @property
    def hop_s(self) -> float:
        return HOP / SAMPLE_RATE

    @cached_property
    def energy_db(self) -> np.ndarray:
        return self.energy_cdb.astype(np.float32) / 100.0

    @cached_property
    def voiced(self) -> np.ndarray:
        return self.energy_db > SILENT_DB

    @cached_property
    def voiced_mask(self) -> np.ndarray:
        """uint32 all-ones on voiced frames, zero on silent ones (for masking bit words)."""
        return np.where(self.voiced, np.uint32(0xFFFFFFFF), np.uint32(0))

    @cached_property
    def envelope(self) -> np.ndarray:
        """Frame levels floored ENVELOPE_RANGE_DB under the loudest, mean removed (alignment)."""
        e = np.maximum(self.energy_db, self.energy_db.max() - ENVELOPE_RANGE_DB) if len(self.bits) else self.energy_db
        return e - e.mean() if len(e) else e

    def to_bytes(self) -> bytes:
        n = len(self.bits)
        return b"".join([
            _HEADER.pack(VERSION, BANDS, n),
            struct.pack("<d", self.duration_s),
            self.shape.astype("<f4").tobytes(),
            self.bits.astype("<u4").tobytes(),
            self.strong.astype("<u4").tobytes(),
            self.energy_cdb.astype("<i2").tobytes(),
        ])

    @classmethod
    def from_bytes(cls, data: bytes) -> "Fingerprint | None":
        """None for a fingerprint of another version (the next build computes it anew)."""
        if not data or len(data) < _HEADER.size:
            return None
        version, bands, n = _HEADER.unpack_from(data)
        if version != VERSION or bands != BANDS:
            return None
        at = _HEADER.size
        (duration,) = struct.unpack_from("<d", data, at)
        at += 8
        shape = np.frombuffer(data, "<f4", bands, at).astype(np.float32)
        at += 4 * bands
        bits = np.frombuffer(data, "<u4", n, at).astype(np.uint32)
        at += 4 * n
        strong = np.frombuffer(data, "<u4", n, at).astype(np.uint32)
        at += 4 * n
        energy = np.frombuffer(data, "<i2", n, at).astype(np.int16)
        return cls(bits, strong, energy, shape, duration)


def band_bins() -> np.ndarray:
    """The FFT bins where each of the BANDS + 1 bands starts, and where the last one ends: band
    b is bins [edges[b], edges[b + 1]), those whose frequency lies in [f_b, f_b+1) of the 34
    log-spaced band edges. Contiguous and never empty (the narrowest band, ~26 Hz at 300 Hz,
    holds 4 bins of 5.9 Hz), so band energies are sums over consecutive bins."""
    freqs = np.fft.rfftfreq(FRAME, 1 / SAMPLE_RATE)
    edges = np.searchsorted(freqs, np.geomspace(F_LO, F_HI, BANDS + 2), side="left")
    if np.any(np.diff(edges) <= 0):  # would need a band matrix instead of sums (not the case)
        raise AssertionError("an empty fingerprint band")
    return edges


class Fingerprinter:
    """Feed 48 kHz mono float32 chunks with `add`, then `result()` once."""

    def __init__(self):
        import soxr

        self._down = soxr.ResampleStream(STREAM_RATE, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        self._buf = np.zeros(0, dtype=np.float32)
        self._total = 0
        self._window = np.hanning(FRAME).astype(np.float32)
        edges = band_bins()
        self._lo, self._hi = int(edges[0]), int(edges[-1])  # bins inside some band
        self._starts = edges[:-1] - self._lo  # band starts within bins [lo, hi)
        self._energies: list[np.ndarray] = []  # (k, BANDS + 1) band powers
        self._frame_db: list[np.ndarray] = []
        self._frames = 0

    def add(self, chunk: np.ndarray, *, last: bool = False) -> None:
        """The next 48 kHz mono chunk of the stream."""
        self._total += len(chunk)
        if self._frames >= MAX_FRAMES:
            return
        low = self._down.resample_chunk(np.asarray(chunk, dtype=np.float32), last=last)
        buf = np.concatenate([self._buf, low])
        count = 0 if len(buf) < FRAME else 1 + (len(buf) - FRAME) // HOP
        count = min(count, MAX_FRAMES - self._frames)
        if count:
            self._analyse(buf, count)
        self._buf = buf[count * HOP:]

    def _analyse(self, buf: np.ndarray, count: int) -> None:
        from numpy.lib.stride_tricks import sliding_window_view

        from scipy.fft import rfft  # single precision (numpy's FFT works in double)

        frames = sliding_window_view(buf, FRAME)[: count * HOP: HOP] * self._window
        spec = rfft(frames, axis=1, workers=1)
        # A band's power is the sum of re^2 + im^2 over its bins: the squares of the spectrum's
        # interleaved float32 parts, summed over the band's run of 2 * bins values (squared in
        # place: no power array of its own, no strided pass over the real and imaginary parts).
        parts = spec.view(np.float32)[:, 2 * self._lo:2 * self._hi]
        np.square(parts, out=parts)
        # Sums over each band's consecutive values, in float64: no BLAS product (whose threads
        # cost a decode worker more than the sums, and whose rounding depends on them).
        bands = np.add.reduceat(parts, 2 * self._starts, axis=1, dtype=np.float64)
        self._energies.append(bands)
        # In-band frame energy relative to a full-scale sine's (window and FFT size cancel
        # out): in-band, so that an MP3's low-pass or a 22 kHz copy does not move it.
        ref = (FRAME * self._window.mean() / 2) ** 2 * 2
        self._frame_db.append(10 * np.log10(np.maximum(bands.sum(axis=1) / ref, 1e-12)))
        self._frames += count

    def result(self) -> Fingerprint:
        if self._frames < MAX_FRAMES:
            self.add(np.zeros(0, dtype=np.float32), last=True)  # the resampler's tail
        if self._frames == 0 and self._total:  # shorter than one frame: zero-pad to one
            pad = np.zeros(FRAME, dtype=np.float32)
            pad[: len(self._buf)] = self._buf[:FRAME]
            self._analyse(pad, 1)
        duration = self._total / STREAM_RATE
        if self._frames == 0:
            empty = np.zeros(0, np.uint32)
            return Fingerprint(empty, empty, np.zeros(0, np.int16), np.zeros(BANDS, np.float32), duration)
        e = np.concatenate(self._energies).astype(np.float64)  # (frames, BANDS + 1)
        db = np.concatenate(self._frame_db)
        # In dB over a floor 60 dB under the frame's loudest band: bands with nothing in them
        # (a pure tone's empty bands, digital silence) read equal and give weak bits.
        floor = e.max(axis=1, keepdims=True) * 1e-6 + 1e-20
        ldb = 10 * np.log10(e + floor)
        d = ldb[:, :-1] - ldb[:, 1:]  # (frames, BANDS) adjacent-band differences
        diff = np.vstack([d[:1] * 0, d[1:] - d[:-1]])[:, :32]  # the first frame has no predecessor
        weights = np.uint32(1) << np.arange(32, dtype=np.uint32)
        packed = ((diff > 0).astype(np.uint32) * weights).sum(axis=1, dtype=np.uint64).astype(np.uint32)
        strong = ((np.abs(diff) > STRONG_DB).astype(np.uint32) * weights).sum(axis=1, dtype=np.uint64).astype(np.uint32)
        voiced = db > SILENT_DB
        loge = np.log10(np.maximum(e[:, :BANDS], 1e-12))
        shape = loge[voiced].mean(axis=0) if voiced.any() else np.zeros(BANDS)
        shape = (shape - shape.mean()).astype(np.float32)
        cdb = np.clip(np.round(db * 100), -32768, 32767).astype(np.int16)
        return Fingerprint(packed, strong, cdb, shape, duration)


def fingerprint_file(path) -> Fingerprint:
    """The fingerprint of a file on its own (for tests and one-off use)."""
    from .audio import iter_mono_48k

    fp = Fingerprinter()
    for chunk in iter_mono_48k(path):
        fp.add(chunk)
    return fp.result()


# ---------------------------------------------------------------------- matching

MAX_BER = 0.15  # copies measured 0-0.09 (MP3, OGG, resamples, trims off the hop grid); other takes ~0.4
SEGMENT_FRAMES = 48  # ~1 s: every second of the overlap must agree, not just the average
MAX_SEGMENT_BER = 0.3
MIN_BITS = 64  # reliable bits compared, at least (a short or near-silent sound decides nothing)
MIN_COVER = 0.9  # share of the shorter file's voiced frames that the overlap must hold
SAME_LENGTH_S = 0.1  # re-encodes keep their length (an MP3's padding aside): search small lags
SAME_LENGTH_LAGS = 4  # frames either way
ENVELOPE_RANGE_DB = 40.0  # frames within this of a file's loudest frame must line up in level
ENVELOPE_TOLERANCE_DB = 6.0
MAX_ENVELOPE_MISS = 0.05  # share of those frames allowed off by more than the tolerance
FLAT_ENVELOPE_DB = 3.0  # an envelope steadier than this cannot align a trim by itself


@dataclass
class Match:
    lag: int  # frame j of b lies on frame j + lag of a
    ber: float  # share of reliable bits that differ
    bits: int  # reliable bits compared
    gain_db: float  # level of b minus level of a, over the frames they share

    def offset_s(self) -> float:
        return self.lag * HOP / SAMPLE_RATE


def _signed(fp: Fingerprint) -> tuple[np.ndarray, np.ndarray]:
    """(frames, 32) float32: +1/-1 for reliable bits of voiced frames, else 0; and |that|."""
    shifts = np.arange(32, dtype=np.uint32)
    bit = ((fp.bits[:, None] >> shifts) & 1).astype(np.float32)
    rel = ((fp.strong[:, None] >> shifts) & 1).astype(np.float32) * fp.voiced[:, None]
    return (2 * bit - 1) * rel, rel


def _xcorr(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sum over columns of x[n + lag] * y[n], for every lag; and the lags."""
    size = 1 << int(np.ceil(np.log2(len(x) + len(y))))
    c = np.fft.irfft((np.fft.rfft(x, size, axis=0) * np.conj(np.fft.rfft(y, size, axis=0))).reshape(size // 2 + 1, -1).sum(axis=1), size)
    lags = np.arange(size)
    lags[lags > size // 2] -= size
    return c, lags


def _envelope_lags(a: Fingerprint, b: Fingerprint, keep: int) -> list[int]:
    """Lags where b's level envelope, shifted by any gain, differs least from a's (the variance
    of the difference over the overlap, every lag at once from FFT cross-correlations)."""
    ea, eb = a.envelope.astype(np.float64), b.envelope.astype(np.float64)
    oa, ob = np.ones_like(ea), np.ones_like(eb)
    ab, lags = _xcorr(ea, eb)
    n, _ = _xcorr(oa, ob)
    sa, _ = _xcorr(ea, ob)
    sb, _ = _xcorr(oa, eb)
    saa, _ = _xcorr(ea * ea, ob)
    sbb, _ = _xcorr(oa, eb * eb)
    n = np.round(n)
    enough = n >= max(8, 0.5 * min(len(ea), len(eb)))
    nn = np.maximum(n, 1)
    diff = sa - sb
    var = (saa + sbb - 2 * ab - diff * diff / nn) / nn
    var = np.where(enough, var, np.inf)
    return [int(lags[i]) for i in np.argsort(var)[:keep] if np.isfinite(var[i])]


def _candidate_lags(a: Fingerprint, b: Fingerprint, keep: int = 3) -> list[int]:
    """Lags where the level envelopes line up best; where an envelope is too flat to tell
    (a steady drone), also where the most reliable bits agree."""
    out = _envelope_lags(a, b, keep)
    if min(float(np.std(a.envelope)), float(np.std(b.envelope))) < FLAT_ENVELOPE_DB:
        sa, ra = _signed(a)
        sb, rb = _signed(b)
        agree, lags = _xcorr(sa, sb)
        both, _ = _xcorr(ra, rb)
        score = np.where(both > MIN_BITS / 2, agree / np.maximum(both, 1), -1.0)
        out += [int(lags[i]) for i in np.argsort(-score)[:keep] if score[i] > 0]
    return sorted({lag + d for lag in out for d in (-1, 0, 1)})


def _overlap(a: Fingerprint, b: Fingerprint, lag: int) -> tuple[slice, slice] | None:
    i0, i1 = max(0, lag), min(len(a.bits), len(b.bits) + lag)
    if i1 - i0 <= 0:
        return None
    return slice(i0, i1), slice(i0 - lag, i1 - lag)


def _spread(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's min and max over itself and its two neighbours."""
    p = np.concatenate([x[:1], x, x[-1:]])
    return np.minimum(np.minimum(p[:-2], p[1:-1]), p[2:]), np.maximum(np.maximum(p[:-2], p[1:-1]), p[2:])


def _envelopes_agree(a: Fingerprint, b: Fingerprint, sa: slice, sb: slice, gain: float) -> bool:
    """Loud and quiet at the same moments: a hit in one file where the other is silent fails.

    A frame may match its counterpart's neighbours: a trim off the hop grid moves a sharp
    onset by up to half a hop, which changes an edge frame's energy a lot.
    """
    top = max(a.energy_db.max(), b.energy_db.max() - gain)
    floor = max(top - ENVELOPE_RANGE_DB, SILENT_DB)
    ea = np.maximum(a.energy_db[sa], floor)
    eb = np.maximum(b.energy_db[sb] - gain, floor)
    seen = (ea > floor) | (eb > floor)
    if not seen.any():
        return False
    tol = ENVELOPE_TOLERANCE_DB
    lo_a, hi_a = _spread(ea)
    lo_b, hi_b = _spread(eb)
    off = (ea < lo_b - tol) | (ea > hi_b + tol) | (eb < lo_a - tol) | (eb > hi_a + tol)
    return float(off[seen].mean()) <= MAX_ENVELOPE_MISS


def _check(a: Fingerprint, b: Fingerprint, lag: int) -> Match | None:
    at = _overlap(a, b, lag)
    if at is None:
        return None
    sa, sb = at
    voiced = a.voiced[sa] & b.voiced[sb]
    if not voiced.any():
        return None
    rel = a.strong[sa] & b.strong[sb] & a.voiced_mask[sa] & b.voiced_mask[sb]
    wrong = np.bitwise_count((a.bits[sa] ^ b.bits[sb]) & rel).astype(np.int64)
    count = np.bitwise_count(rel).astype(np.int64)
    total = int(count.sum())
    if total < MIN_BITS or wrong.sum() > MAX_BER * total:
        return None
    for s in range(0, len(count), SEGMENT_FRAMES):
        c = int(count[s:s + SEGMENT_FRAMES].sum())
        if c >= MIN_BITS / 2 and int(wrong[s:s + SEGMENT_FRAMES].sum()) > MAX_SEGMENT_BER * c:
            return None
    short, short_slice = (b, sb) if len(b.bits) <= len(a.bits) else (a, sa)
    if int(short.voiced[short_slice].sum()) < MIN_COVER * int(short.voiced.sum()):
        return None
    gain = float(np.median(b.energy_db[sb][voiced] - a.energy_db[sa][voiced]))
    if not _envelopes_agree(a, b, sa, sb, gain):
        return None
    return Match(lag=lag, ber=float(wrong.sum()) / total, bits=total, gain_db=gain)


def _lags_by_ber(a: Fingerprint, b: Fingerprint, lags: list[int]) -> list[int]:
    """The lags whose bit error rate is at most MAX_BER, best first, all measured in one pass."""
    from numpy.lib.stride_tricks import sliding_window_view

    nb = len(b.bits)
    left = max(0, -min(lags))
    right = max(0, max(lags) + nb - len(a.bits))
    rows = np.asarray(lags) + left

    def windows(x):
        return sliding_window_view(np.pad(x, (left, right)), nb)[rows]

    rel = windows(a.strong & a.voiced_mask) & (b.strong & b.voiced_mask)
    wrong = np.bitwise_count((windows(a.bits) ^ b.bits) & rel).sum(axis=1, dtype=np.int64)
    count = np.bitwise_count(rel).sum(axis=1, dtype=np.int64)
    ber = np.where(count >= MIN_BITS, wrong / np.maximum(count, 1), np.inf)
    return [lags[i] for i in np.argsort(ber, kind="stable") if ber[i] <= MAX_BER]


def match(a: Fingerprint, b: Fingerprint, lags: list[int] | tuple[int, ...] = ()) -> Match | None:
    """How b is the same recording as a (any format, rate, level, trimmed ends), or None.

    At the best of a few candidate alignments: the shorter file lies inside the longer one
    (MIN_COVER of its voiced frames); the reliable bits they share differ in at most MAX_BER
    of cases overall and MAX_SEGMENT_BER within any second; and the level envelopes agree
    (a loop's variation shares most of its bits with the loop, but not where hits differ).
    `lags` are more alignments to try (`fpscreen.screen` finds some); every one is held to
    the same checks.
    """
    if len(a.bits) == 0 or len(b.bits) == 0 or not a.voiced.any() or not b.voiced.any():
        return None
    if abs(a.duration_s - b.duration_s) <= SAME_LENGTH_S:
        tried = list(range(-SAME_LENGTH_LAGS, SAME_LENGTH_LAGS + 1))
    else:
        tried = sorted(set(_candidate_lags(a, b)) | set(lags))
    for lag in _lags_by_ber(a, b, tried):
        found = _check(a, b, lag)
        if found is not None:
            return found
    return None

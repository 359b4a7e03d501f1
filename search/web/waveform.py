"""Waveform images for the audition page: peaks computed once per file, PNGs drawn with zlib.

Peaks (min, max and RMS of the channel mix per column bin) are read with soundfile in blocks,
so a one-hour file costs a few MB of memory, and cached as .npy in `<index>/waveforms/`,
keyed by file id, size and mtime (a changed file gets new peaks). A PNG marking a region is
drawn from the cached peaks in a few milliseconds and cached beside them. No Pillow: the PNG
writer is the 20 lines of `png_bytes`.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from indexer.audio import downmix, frames_of, open_audio

BINS = 2048  # peaks kept per file; images of any width up to this are resampled from them
BLOCK_FRAMES = 1 << 16
MAX_WIDTH, MAX_HEIGHT = 2048, 400

# Colours (RGB): background, region background, peak, RMS, region peak, region RMS, centre line.
BG = (22, 26, 32)
REGION_BG = (44, 38, 26)
PEAK = (66, 98, 134)
RMS = (120, 170, 220)
REGION_PEAK = (190, 132, 52)
REGION_RMS = (242, 184, 96)
CENTRE = (44, 52, 62)


def png_bytes(rgb: np.ndarray) -> bytes:
    """A truecolour PNG of an (h, w, 3) uint8 array."""
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)  # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b"")


def compute_peaks(path: str | os.PathLike, bins: int = BINS) -> np.ndarray:
    """(3, bins) float32: min, max, RMS of the channel mean per bin over the whole file."""
    lo = np.zeros(bins, np.float32)
    hi = np.zeros(bins, np.float32)
    sq = np.zeros(bins, np.float64)
    cnt = np.zeros(bins, np.int64)
    with open_audio(path) as f:  # libsndfile, or FFmpeg for M4A, WavPack...
        total = max(1, frames_of(f))
        pos = 0
        first = np.ones(bins, bool)
        while True:
            block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
            x = np.nan_to_num(downmix(block))
            n = len(x)
            if not n:
                break
            b = np.minimum((np.arange(pos, pos + n, dtype=np.int64) * bins) // total, bins - 1)
            starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
            idx = b[starts]
            mn = np.minimum.reduceat(x, starts)
            mx = np.maximum.reduceat(x, starts)
            lo[idx] = np.where(first[idx], mn, np.minimum(lo[idx], mn))
            hi[idx] = np.where(first[idx], mx, np.maximum(hi[idx], mx))
            first[idx] = False
            sq[idx] += np.add.reduceat(x.astype(np.float64) ** 2, starts)
            cnt[idx] += np.diff(np.r_[starts, n])
            pos += n
    rms = np.sqrt(sq / np.maximum(cnt, 1)).astype(np.float32)
    return np.stack([lo, hi, rms])


def render(peaks: np.ndarray, width: int, height: int, region: tuple[float, float] | None = None) -> np.ndarray:
    """(height, width, 3) uint8 image; `region` is (start, end) as fractions of the file."""
    lo, hi, rms = _resample(peaks, width)
    scale = 1.0 / max(float(np.max(np.abs(peaks[:2]))), 0.05)  # normalise quiet files, not silence
    mid = (height - 1) / 2.0
    top = np.clip(np.round(mid - hi * scale * mid), 0, height - 1)
    bot = np.clip(np.round(mid - lo * scale * mid), 0, height - 1)
    r = np.minimum(rms * scale, np.maximum(hi, -lo) * scale)
    rtop, rbot = np.round(mid - r * mid), np.round(mid + r * mid)
    ys = np.arange(height)[:, None]
    in_region = np.zeros(width, bool)
    if region is not None:
        a, b = int(np.floor(region[0] * width)), int(np.ceil(region[1] * width))
        in_region[max(0, a) : max(min(width, b), max(0, a) + 1)] = True
    img = np.empty((height, width, 3), np.uint8)
    img[:] = BG
    img[:, in_region] = REGION_BG
    img[int(round(mid)), :] = CENTRE
    peak = (ys >= top[None, :]) & (ys <= bot[None, :])
    core = (ys >= rtop[None, :]) & (ys <= rbot[None, :]) & peak
    for mask, normal, hot in ((peak, PEAK, REGION_PEAK), (core, RMS, REGION_RMS)):
        img[mask & ~in_region[None, :]] = normal
        img[mask & in_region[None, :]] = hot
    return img


def _resample(peaks: np.ndarray, width: int):
    bins = peaks.shape[1]
    edges = np.linspace(0, bins, width + 1).astype(int)
    edges[1:] = np.maximum(edges[1:], edges[:-1] + 1)
    edges = np.minimum(edges, bins)
    starts = np.minimum(edges[:-1], bins - 1)
    lo = np.minimum.reduceat(peaks[0], starts)
    hi = np.maximum.reduceat(peaks[1], starts)
    rms = np.maximum.reduceat(peaks[2], starts)
    return lo, hi, rms


class WaveformCache:
    """Peaks and PNGs under `<index>/waveforms/`, written atomically (tmp + rename)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _key(self, file_id: int, size: int, mtime_ns: int) -> str:
        return f"{file_id}-{size}-{mtime_ns}"

    def peaks(self, file_id: int, path: str, size: int, mtime_ns: int) -> np.ndarray:
        p = self.folder / f"{self._key(file_id, size, mtime_ns)}.npy"
        try:
            return np.load(p)
        except (OSError, ValueError):
            pass
        peaks = compute_peaks(path)
        self._write(p, lambda fh: np.save(fh, peaks))
        return peaks

    def png(self, file_id: int, path: str, size: int, mtime_ns: int, width: int, height: int,
            region: tuple[float, float] | None) -> bytes:
        tag = "full" if region is None else f"{region[0]:.6f}-{region[1]:.6f}"
        p = self.folder / f"{self._key(file_id, size, mtime_ns)}-{width}x{height}-{tag}.png"
        try:
            return p.read_bytes()
        except OSError:
            pass
        data = png_bytes(render(self.peaks(file_id, path, size, mtime_ns), width, height, region))
        self._write(p, lambda fh: fh.write(data))
        return data

    def _write(self, path: Path, writer) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=path.suffix)
            with os.fdopen(fd, "wb") as fh:
                writer(fh)
            os.replace(tmp, path)
        except OSError:  # a read-only index still draws waveforms, it just cannot keep them
            pass

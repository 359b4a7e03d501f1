"""Spectrograms of results, on demand: computed on the server and cached like the waveforms.

    GET /api/files/{id}/spectrogram?w=800&h=160     a PNG, time left to right, frequency
                                                    bottom to top on a log axis (20 Hz to
                                                    Nyquist), level in dB below the peak

One FFT frame (Hann window, N_FFT samples of the channel mix) is taken per pixel column at
evenly spaced times, reading the file once in blocks, so a one-hour take costs one decode
and memory stays bounded. PNGs are cached in `<index>/spectrograms/`, keyed by file id, size
and mtime (a changed file gets a new image); delete the folder to reclaim the space.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from indexer.audio import downmix, frames_of, open_audio

from .waveform import png_bytes

N_FFT = 2048
BLOCK_FRAMES = 1 << 17
FLOOR_DB = -90.0
MAX_WIDTH, MAX_HEIGHT = 2048, 512
# Colour ramp from silence to the peak (dark blue, violet, orange, pale yellow).
_RAMP = np.array([(12, 14, 30), (58, 28, 110), (160, 50, 120), (240, 120, 60), (252, 236, 160)], np.float32)


def columns(path: str | os.PathLike, width: int) -> tuple[np.ndarray, int]:
    """(N_FFT // 2 + 1, width) power spectra at `width` evenly spaced times, and the sample rate."""
    with open_audio(path) as f:
        sr = int(f.samplerate)
        total = frames_of(f)
        starts = np.linspace(0, max(0, total - N_FFT), width).astype(np.int64)
        win = np.hanning(N_FFT).astype(np.float32)
        out = np.zeros((N_FFT // 2 + 1, width), np.float32)
        buf = np.zeros(0, np.float32)
        buf_at = 0  # absolute frame of buf[0]
        i = 0
        done = False
        while i < width and not done:
            block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
            done = len(block) == 0
            mono = np.nan_to_num(downmix(block)) if len(block) else np.zeros(0, np.float32)
            buf = np.concatenate([buf, mono.astype(np.float32)])
            while i < width and (starts[i] + N_FFT <= buf_at + len(buf) or done):
                seg = buf[starts[i] - buf_at: starts[i] - buf_at + N_FFT]
                if len(seg) < N_FFT:  # a file shorter than one frame
                    seg = np.pad(seg, (0, N_FFT - len(seg)))
                out[:, i] = np.abs(np.fft.rfft(seg * win)) ** 2
                i += 1
            keep = int(starts[i]) if i < width else buf_at + len(buf)
            buf, buf_at = buf[keep - buf_at:], keep
    return out, sr


def render(power: np.ndarray, sr: int, height: int) -> np.ndarray:
    """(h, w, 3) uint8: log-frequency rows (top = Nyquist), dB below the image's peak."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr)
    edges = np.geomspace(20.0, sr / 2.0, height + 1)
    rows = np.zeros((height, power.shape[1]), np.float32)
    for r in range(height):
        sel = (freqs >= edges[r]) & (freqs < edges[r + 1])
        if sel.any():
            rows[r] = power[sel].mean(axis=0)
        else:  # narrower than one FFT bin at the bottom: the nearest bin
            rows[r] = power[np.argmin(np.abs(freqs - edges[r]))]
    db = 10.0 * np.log10(rows + 1e-12)
    db = np.clip(db - db.max(), FLOOR_DB, 0.0)
    level = (db - FLOOR_DB) / -FLOOR_DB * (len(_RAMP) - 1)
    lo = np.floor(level).astype(int).clip(0, len(_RAMP) - 2)
    t = (level - lo)[..., None]
    rgb = _RAMP[lo] * (1 - t) + _RAMP[lo + 1] * t
    return np.ascontiguousarray(rgb[::-1].astype(np.uint8))


class SpectrogramCache:
    """Spectrogram PNGs under `<index>/spectrograms/`, written atomically (tmp + rename)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def png(self, file_id: int, path: str, size: int, mtime_ns: int, width: int, height: int) -> bytes:
        p = self.folder / f"{file_id}-{size}-{mtime_ns}-{width}x{height}.png"
        try:
            return p.read_bytes()
        except OSError:
            pass
        power, sr = columns(path, width)
        data = png_bytes(render(power, sr, height))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".png")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, p)
        except OSError:  # a read-only index still draws them, it just cannot keep them
            pass
        return data


def _int(value: str | None, name: str, lo: int, hi: int, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        v = int(value)
    except ValueError:
        raise HTTPException(400, f"{name} must be an integer") from None
    if not lo <= v <= hi:
        raise HTTPException(400, f"{name} must be between {lo} and {hi}")
    return v


def routes(files, index_dir: Path) -> list[Route]:
    """The spectrogram route of the audition app (`files` is its FileService)."""
    cache = SpectrogramCache(Path(index_dir) / "spectrograms")

    def draw(file_id: int, width: int, height: int) -> bytes:
        row = files.on_disk(file_id)
        try:
            return cache.png(row.id, row.path, row.size, row.mtime_ns, width, height)
        except Exception as exc:  # decoders' errors have no common base worth naming
            raise HTTPException(422, f"cannot decode {Path(row.path).name}: {' '.join(str(exc).split())}") from None

    async def spectrogram(request: Request) -> Response:
        qp = request.query_params
        width = _int(qp.get("w"), "w", 16, MAX_WIDTH, 800)
        height = _int(qp.get("h"), "h", 16, MAX_HEIGHT, 160)
        data = await run_in_threadpool(draw, request.path_params["file_id"], width, height)
        return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    return [Route("/api/files/{file_id:int}/spectrogram", spectrogram)]

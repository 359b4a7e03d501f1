"""Decoding for the index: any audio a DAW opens -> 48 kHz mono float32 -> 10 s windows.

Owns the audio contract of the write path (DESIGN.md "Windows"):

- decode in blocks with soundfile (libsndfile), or with FFmpeg through PyAV
  (`indexer.av_decode`) for what libsndfile refuses (M4A/AAC/ALAC, WavPack, odd MP3s);
  downmix by the mean of the channels, resample with a streaming soxr resampler (HQ), so
  memory stays bounded whatever the file length (a 2 GB RF64 or a one-hour recording uses a
  few MB);
- the stream is cut into 10 s windows as `indexer.windowing` lays them out (a short file
  repeat-padded as CLAP pads it, a long one in full windows with the last end-aligned).

Decisions about bad input (the pipeline records a DecodeError as the file's failure):

- neither decoder can open it (a PNG named .wav, random bytes, a truncated header) ->
  DecodeError with a one-line reason a person understands (`indexer.decoder_log`);
- zero frames (a zero-length file, a header with an empty data chunk) -> DecodeError
  "no audio frames";
- the file breaks part way (an interrupted copy: the header claims more than the file holds,
  or the decoder raises after some blocks): the windows of what decoded are indexed, and
  `info_out` says where it broke ("truncated_at_s") so the file can be marked truncated;
- what the C decoders print (libmpg123's notes) is captured, not written over the progress
  bar, and kept in the failure reason;
- NaN/Inf samples of float files become 0 (not an error).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf
import soxr

from . import av_decode
from .config import HOP_S, SAMPLE_RATE, WINDOW_SAMPLES
from .decoder_log import captured, claimed_text, sniff, summary, unreadable_reason
from .truncation import declared_ratio
from .windowing import Tail, n_samples, repeat_pad
from .windowing import window_starts  # noqa: F401 - re-exported: known as audio.window_starts

log = logging.getLogger(__name__)

# Samples (frames x channels) read per block: 2 MiB of float32 whatever the channel count.
BLOCK_SAMPLES = 1 << 19
RESAMPLE_QUALITY = "HQ"

# Formats libsndfile does not read but users keep in libraries: say so plainly.
_UNSUPPORTED = {
    ".wv": "WavPack is not supported (libsndfile cannot read it); convert to FLAC or WAV",
    ".m4a": "M4A/AAC/ALAC in MP4 is not supported (libsndfile cannot read it)",
    ".aac": "AAC is not supported (libsndfile cannot read it)",
}


class DecodeError(Exception):
    """A file that cannot be decoded; str() is a one-line reason for the failure report."""


@dataclass(frozen=True)
class AudioInfo:
    samplerate: int
    channels: int
    frames: int
    duration_s: float
    container: str  # WAV, RF64, W64, AIFF, FLAC, OGG, MP3, CAF, AU, MP4, WAVPACK, ...
    subtype: str  # PCM_16, PCM_24, FLOAT, DOUBLE, VORBIS, OPUS, MPEG_LAYER_III, AAC, ALAC, ...
    decoder: str = "libsndfile"  # or "ffmpeg" (indexer.av_decode) for what libsndfile refuses


@dataclass
class Window:
    index: int
    start_s: float
    end_s: float
    samples: np.ndarray  # float32 (WINDOW_SAMPLES,) at SAMPLE_RATE
    n_real: int  # samples of real audio in the window (the rest is repeat/zero padding)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _open(path: str | os.PathLike) -> sf.SoundFile:
    p = Path(path)
    try:
        if p.stat().st_size == 0:
            raise DecodeError("no audio frames (zero-length file)")
    except OSError as e:
        raise DecodeError(f"cannot read file: {_one_line(e)}") from e
    said: list[str] = []
    try:
        # Bytes, not str: libsndfile gets the name as it is on disk, even when it is not UTF-8.
        with captured(said):
            f = sf.SoundFile(os.fsencode(p))
    except Exception as e:  # LibsndfileError, RuntimeError, TypeError on odd headers
        reason = _one_line(e)
        # soundfile prefixes the path; the failure report already shows it.
        for shown in (repr(str(p)), repr(os.fsencode(p))):
            reason = reason.replace(f"Error opening {shown}: ", "")
        reason = unreadable_reason(p, reason, said)
        if sniff(p) == "zeros" or not av_decode.available():
            hint = _UNSUPPORTED.get(p.suffix.lower())
            raise DecodeError(hint + " (pip install av reads it)" if hint else reason) from e
        try:  # what libsndfile refuses, FFmpeg may read (M4A, WavPack, odd MP3s)
            src = av_decode.AvSource(p)
        except av_decode.AvError as e2:
            log.debug("%s: FFmpeg cannot read it either: %s", path, e2)
            if p.suffix.lower() in _UNSUPPORTED:
                reason = f"neither libsndfile nor FFmpeg reads this {p.suffix.lower()} file (FFmpeg: {e2})"
            raise DecodeError(reason) from e
        log.debug("%s: libsndfile refused it (%s); decoded by FFmpeg", path, reason)
        return src
    if said:
        log.debug("%s: decoder said on opening: %s", path, summary(said))
    return f


def open_audio(path: str | os.PathLike):
    """An open decoder with SoundFile's reading surface (samplerate, channels, frames, format,
    subtype, read, seek, close; `decoder` says which): libsndfile, else FFmpeg. Its `frames`
    is 0 when FFmpeg knows no exact length (see `frames_of`). DecodeError when neither reads it."""
    return _open(path)


def frames_of(f) -> int:
    """The length of an open decoder in frames, counted by decoding when the header gives none
    (leaves it at its start)."""
    if 0 < f.frames < 2**62:
        return int(f.frames)
    n = _count_frames(f)
    f.seek(0)
    return n


def _read(f: sf.SoundFile, frames: int, said: list[str]) -> np.ndarray:
    """One block, with what the decoder prints kept in `said` instead of on the terminal."""
    with captured(said):
        return f.read(frames, dtype="float32", always_2d=True)


def _container(fmt: str) -> str:
    return "WAV" if fmt == "WAVEX" else fmt


def _check(f: sf.SoundFile) -> None:
    if f.samplerate <= 0 or f.channels <= 0:
        raise DecodeError(f"invalid header (samplerate={f.samplerate}, channels={f.channels})")
    if f.frames <= 0 and _decoder(f) != av_decode.DECODER:  # FFmpeg may not know the length
        raise DecodeError("no audio frames")


def _decoder(f) -> str:
    return getattr(f, "decoder", "libsndfile")


def probe(path: str | os.PathLike) -> AudioInfo:
    """Header facts without decoding (FFmpeg's files of unstated length are counted by decoding);
    DecodeError if neither decoder can open the file."""
    with _open(path) as f:
        _check(f)
        frames = int(f.frames)
        if frames <= 0:
            frames = _count_frames(f)
            if frames <= 0:
                raise DecodeError("no audio frames")
        return AudioInfo(
            samplerate=int(f.samplerate),
            channels=int(f.channels),
            frames=frames,
            duration_s=frames / f.samplerate,
            container=_container(f.format),
            subtype=f.subtype,
            decoder=_decoder(f),
        )


def _count_frames(f) -> int:
    said: list[str] = []
    n = 0
    try:
        while True:
            block = _read(f, BLOCK_SAMPLES, said)
            if not len(block):
                return n
            n += len(block)
    except Exception:
        return n


def downmix(block: np.ndarray) -> np.ndarray:
    """(frames, channels) float32 -> mono float32: the mean of the channels.

    Summed a column at a time, the numbers of numpy's `mean(axis=1)` to the bit (it adds up to
    seven values in order, then divides): numpy reduces a row of two or six values one row at a
    time, which made the downmix the dearest step of decoding (docs/benchmarks.md)."""
    channels = block.shape[1]
    if channels == 1:
        return block[:, 0]
    if channels > 7:  # numpy sums rows of 8 or more in another order: keep its numbers there
        return block.mean(axis=1, dtype=np.float32)
    out = block[:, 0].astype(np.float32, copy=True)
    for c in range(1, channels):
        out += block[:, c]
    out /= np.float32(channels)
    return out


def iter_mono_48k(
    path: str | os.PathLike,
    *,
    info_out: dict | None = None,
    on_block: Callable[[np.ndarray, int], None] | None = None,
    on_mono: Callable[[np.ndarray], None] | None = None,
) -> Iterator[np.ndarray]:
    """The file as consecutive chunks of 48 kHz mono float32 (streamed; bounded memory).

    `info_out`, if given, receives at the end "frames" (decoded input frames), "samplerate",
    "decoder", and for a file that breaks part way (an interrupted copy) "truncated_at_s" and
    "truncated_reason": what decoded before the break is yielded, not thrown away.
    `on_block(block, samplerate)` sees every decoded block at the file's own rate and channels,
    (frames, channels) float32 with NaN/Inf made 0, before the downmix; `on_mono(chunk)` every
    chunk yielded. They let a reader measure the file in the same pass (indexer.analysis).
    """
    with _open(path) as f:
        _check(f)
        sr, ch, claimed = int(f.samplerate), int(f.channels), int(f.frames)
        ratio = declared_ratio(path) if _decoder(f) == "libsndfile" else None
        if ratio is not None and ratio > 1.0 and claimed < 2**62:
            claimed = int(claimed * ratio)  # the data chunk declares more than the file holds
        block_frames = max(1024, BLOCK_SAMPLES // ch)
        rs = None if sr == SAMPLE_RATE else soxr.ResampleStream(
            sr, SAMPLE_RATE, 1, dtype="float32", quality=RESAMPLE_QUALITY
        )
        decoded = 0
        said: list[str] = []
        broke = None
        while True:
            try:
                block = _read(f, block_frames, said)
            except Exception as e:
                extra = f"; decoder: {summary(said)}" if said else ""
                broke = (f"decoding stopped at {decoded / sr:.1f} s ({claimed_text(claimed, sr)}): the file is "
                         f"truncated or damaged there ({_one_line(e)}){extra}")
                if decoded == 0:
                    raise DecodeError(broke) from e
                log.debug("%s: %s; indexing what decoded", path, broke)
                break
            n = len(block)
            if n == 0:
                break
            decoded += n
            if not np.isfinite(block).all():
                block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
            if on_block is not None:
                on_block(block, sr)
            mono = downmix(block)
            out = mono if rs is None else rs.resample_chunk(mono, last=False)
            if len(out):
                if on_mono is not None:
                    on_mono(out)
                yield out
            if n < block_frames:
                break
        if rs is not None:
            out = rs.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if len(out):
                if on_mono is not None:
                    on_mono(out)
                yield out
        if decoded == 0:
            extra = f"; decoder: {summary(said)}" if said else ""
            raise DecodeError(f"no audio could be decoded ({claimed_text(claimed, sr)}): "
                              f"the file is truncated or damaged{extra}")
        if broke is None and getattr(f, "length_exact", True) and _short(decoded, claimed, sr):
            broke = (f"the file ends at {decoded / sr:.1f} s but {claimed_text(claimed, sr)} "
                     f"(an interrupted copy?)")
            log.debug("%s: %s; indexing what was decodable", path, broke)
        if said:
            log.debug("%s: decoder said: %s", path, summary(said))
        if info_out is not None:
            info_out.update(frames=decoded, samplerate=sr, decoder=_decoder(f))
            if broke is not None:
                info_out.update(truncated_at_s=round(decoded / sr, 3), truncated_reason=broke)


def _short(decoded: int, claimed: int, sr: int) -> bool:
    """Decoded clearly less than the header states (an MP3's estimated length may be a little off)."""
    if claimed <= 0 or claimed >= 2**62:
        return False
    missing = claimed - decoded
    return missing > 0.02 * claimed and missing > 0.1 * sr


def iter_windows(
    path: str | os.PathLike,
    *,
    hop_s: float = HOP_S,
    info_out: dict | None = None,
    on_block: Callable[[np.ndarray, int], None] | None = None,
    on_mono: Callable[[np.ndarray], None] | None = None,
) -> Iterator[Window]:
    """10 s windows of 48 kHz mono float32, streamed from the file (laid out as indexer.windowing says).

    Raises DecodeError when nothing decodes. A file that breaks part way gives the windows of
    what decoded; `info_out` (see iter_mono_48k) then says where it broke.
    `on_block` / `on_mono`: see iter_mono_48k.
    """
    W = WINDOW_SAMPLES
    hop = n_samples(hop_s)
    if hop <= 0:
        raise ValueError("hop_s must be positive")
    tail = Tail(2 * W + BLOCK_SAMPLES * 4 + hop)
    next_start = 0
    index = 0
    last_end = 0
    meta: dict = {} if info_out is None else info_out
    for chunk in iter_mono_48k(path, info_out=meta, on_block=on_block, on_mono=on_mono):
        # Keep everything from the next window start, and always the last W samples
        # (the end-aligned final window may reach back into emitted windows).
        tail.append(chunk, keep_from=min(next_start, tail.end + len(chunk) - W))
        while next_start + W <= tail.end:
            yield Window(index, next_start / SAMPLE_RATE, (next_start + W) / SAMPLE_RATE, tail.get(next_start, next_start + W), W)
            last_end = next_start + W
            index += 1
            next_start += hop
    total = tail.end
    if total == 0:
        raise DecodeError("no audio frames")
    if index == 0:  # shorter than one window (a file of exactly 10 s was emitted above)
        real = tail.get(0, total)
        duration = meta["frames"] / meta["samplerate"]
        yield Window(0, 0.0, duration, repeat_pad(real, W), total)
    elif last_end < total:
        s = total - W
        yield Window(index, s / SAMPLE_RATE, total / SAMPLE_RATE, tail.get(s, total), W)


def decode_mono_48k(path: str | os.PathLike) -> np.ndarray:
    """The whole file at 48 kHz mono float32 (for short files and tests; not bounded)."""
    chunks = list(iter_mono_48k(path))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def load_segment(
    path: str | os.PathLike,
    start_s: float = 0.0,
    end_s: float | None = None,
    *,
    samplerate: int | None = None,
    mono: bool = False,
) -> tuple[np.ndarray, int]:
    """A slice of the file for playback/transcoding: float32 (frames, channels), or (frames,) if mono.

    `end_s=None` reads to the end; times are clamped to the file. `samplerate=None` keeps
    the file's rate, otherwise the slice is resampled (soxr HQ).
    """
    with _open(path) as f:
        _check(f)
        sr = int(f.samplerate)
        total = int(f.frames) if 0 < f.frames < 2**62 else 2**62  # FFmpeg may not know the length
        a = min(max(0, int(math.floor(max(0.0, start_s) * sr))), total)
        b = total if end_s is None else min(total, max(a, int(math.ceil(end_s * sr))))
        said: list[str] = []
        try:
            if a:
                with captured(said):
                    f.seek(a)
            x = _read(f, -1 if b == 2**62 else b - a, said)
        except Exception as e:
            raise DecodeError(f"decode failed: {_one_line(e)}") from e
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    if mono:
        x = downmix(x)
    if samplerate and samplerate != sr:
        if len(x):
            x = soxr.resample(x, sr, samplerate, RESAMPLE_QUALITY)
        sr = samplerate
    return np.ascontiguousarray(x, dtype=np.float32), sr

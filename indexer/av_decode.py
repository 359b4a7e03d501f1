"""The second decoder: FFmpeg through PyAV, for files libsndfile refuses but a DAW plays.

M4A (AAC, ALAC), WavPack, Matroska audio, and MP3s whose first frame libsndfile does not find
(for example behind the zero padding a tag editor left after an ID3 tag). `AvSource` offers
the reading surface `indexer.audio` uses of `soundfile.SoundFile` (samplerate, channels,
frames, format, subtype, read(n) -> (n, channels) float32 blocks, seek(frame), close), so
both decoders sit behind the same streamed-block contract: memory stays bounded by one
block plus one codec frame whatever the file length.

PyAV is a dependency of the project (its wheel carries FFmpeg: about 36 MB, a few percent of
the torch wheel the project needs anyway). If it is missing, `available()` is False and
audio.py reports libsndfile's reason alone.
"""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np

DECODER = "ffmpeg"
PREROLL_FRAMES = 8192
# Containers whose stated length FFmpeg estimates from the bit rate (not to be taken as a claim).
_ESTIMATED_LENGTH = {"MP3", "ADTS", "AC3", "DTS"}

# FFmpeg demuxer names -> the container names the catalog shows (libsndfile's style).
_CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2": "MP4", "wv": "WAVPACK", "mp3": "MP3", "matroska,webm": "MKA",
               "aac": "ADTS", "ogg": "OGG", "flac": "FLAC", "wav": "WAV", "aiff": "AIFF", "caf": "CAF",
               "ape": "APE", "asf": "WMA", "ac3": "AC3", "dts": "DTS", "tta": "TTA", "w64": "W64"}
_SUBTYPES = {"mp3float": "MPEG_LAYER_III", "mp3": "MPEG_LAYER_III", "mp2float": "MPEG_LAYER_II",
             "mp2": "MPEG_LAYER_II", "aac": "AAC", "alac": "ALAC", "wavpack": "WAVPACK", "vorbis": "VORBIS",
             "opus": "OPUS", "libopus": "OPUS", "flac": "FLAC"}


def available() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


class AvError(Exception):
    """FFmpeg could not open or decode the file; str() is FFmpeg's reason on one line."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # PyAV prefixes "[Errno 1094995529] "; the number means nothing to a person.
    if text.startswith("[Errno") and "] " in text:
        text = text.split("] ", 1)[1]
    return text or type(exc).__name__


class AvSource:
    """An audio stream decoded by FFmpeg, read in blocks of float32 frames."""

    decoder = DECODER

    def __init__(self, path: str | os.PathLike):
        import av

        self.path = os.fsdecode(os.fspath(path))
        try:
            self._container = av.open(self.path, "r", metadata_errors="ignore")
        except Exception as exc:
            raise AvError(_one_line(exc)) from exc
        try:
            if not self._container.streams.audio:
                raise AvError("no audio stream in the file")
            self._stream = self._container.streams.audio[0]
            ctx = self._stream.codec_context
            self.samplerate = int(ctx.sample_rate or 0)
            self.channels = int(getattr(ctx, "channels", 0) or ctx.layout.nb_channels)
            if self.samplerate <= 0 or self.channels <= 0:
                raise AvError(f"no usable audio stream (rate {self.samplerate}, channels {self.channels})")
            self.format = _CONTAINERS.get(self._container.format.name,
                                          self._container.format.name.split(",")[0].upper())
            self.subtype = _SUBTYPES.get(ctx.name, ctx.name.upper())
            # An estimated length is no claim: 0 (unknown) makes audio.probe count by decoding.
            estimated = self.format in _ESTIMATED_LENGTH
            self.frames = 0 if estimated else self._claimed_frames()
            self.length_exact = not estimated and bool(self._stream.duration)
        except Exception:
            self._container.close()
            raise
        self._resampler = None
        self._frames_iter = None
        self._pending = np.zeros((0, self.channels), np.float32)
        self._position = 0  # frames handed out so far (absolute, after a seek)
        self._skip = 0  # frames to drop after a seek landed before its target

    def _claimed_frames(self) -> int:
        """The length the container states (0 when it states none)."""
        s = self._stream
        if s.duration and s.time_base:
            return int(round(float(s.duration * s.time_base) * self.samplerate))
        if self._container.duration:
            return int(round(self._container.duration / 1_000_000 * self.samplerate))
        return 0

    # ------------------------------------------------------------------ reading

    def _decoded(self):
        """Decoded frames as (channels x samples) float32 blocks, converted from any sample format."""
        import av

        if self._frames_iter is None:
            self._frames_iter = self._container.decode(self._stream)
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="fltp")
        for frame in self._frames_iter:
            for out in self._resampler.resample(frame):
                yield frame, out.to_ndarray()

    def read(self, frames: int = -1, dtype: str = "float32", always_2d: bool = True) -> np.ndarray:
        want = None if frames is None or frames < 0 else int(frames)
        parts = [self._pending]
        have = len(self._pending)
        try:
            for src, block in self._decoded():
                x = np.ascontiguousarray(block.T[:, : self.channels], dtype=np.float32)
                if x.shape[1] < self.channels:  # a layout that shrank mid-stream: keep the shape
                    x = np.pad(x, ((0, 0), (0, self.channels - x.shape[1])))
                if self._skip:
                    drop = min(self._skip, len(x))
                    x, self._skip = x[drop:], self._skip - drop
                parts.append(x)
                have += len(x)
                if want is not None and have >= want:
                    break
        except Exception as exc:
            got = np.concatenate(parts) if len(parts) > 1 else self._pending
            if len(got):  # hand out what decoded; the next read raises again
                self._pending = got[:0]
                self._position += len(got)
                self._frames_iter = _raising(exc)
                return got
            raise AvError(_one_line(exc)) from exc
        data = np.concatenate(parts) if len(parts) > 1 else self._pending
        if want is not None and len(data) > want:
            data, self._pending = data[:want], data[want:]
        else:
            self._pending = data[:0]
        self._position += len(data)
        return data

    def seek(self, frame: int) -> int:
        """Move to an absolute frame: FFmpeg seeks to a packet at or before it, the rest is dropped."""
        frame = max(0, int(frame))
        tb = self._stream.time_base or Fraction(1, self.samplerate)
        # Land a little early: a transform codec's first frame after a seek lacks the overlap
        # of the one before it (AAC's first 1024 samples come out wrong otherwise).
        at = max(0, frame - PREROLL_FRAMES)
        try:
            self._container.seek(int(at / self.samplerate / tb), stream=self._stream, backward=True)
        except Exception as exc:
            raise AvError(f"cannot seek: {_one_line(exc)}") from exc
        self._frames_iter = None
        self._resampler = None
        self._pending = np.zeros((0, self.channels), np.float32)
        # Find where FFmpeg landed from the first frame's timestamp.
        it = self._container.decode(self._stream)
        first = next(it, None)
        if first is None:
            self._frames_iter, self._skip, self._position = iter(()), 0, frame
            return frame
        landed = int(round(float(first.pts * tb) * self.samplerate)) if first.pts is not None else 0
        self._frames_iter = _chain(first, it)
        self._skip = max(0, frame - landed)
        self._position = frame
        return frame

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _chain(first, rest):
    yield first
    yield from rest


def _raising(exc):
    raise exc
    yield  # pragma: no cover  (makes this a generator)

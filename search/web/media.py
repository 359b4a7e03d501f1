"""Audio for the page: byte ranges of original files, and WAV made on the fly from any format.

Browsers play 16-bit PCM WAV, FLAC, Ogg and MP3 in mono or stereo; everything else in a
library (AIFF, CAF, W64, RF64, 24-bit, float or multichannel WAV...) is served as a *virtual*
WAV: its header and size are known up front, and the bytes of any Range are produced by
seeking the source with soundfile and converting just those frames. Seeking in a one-hour
AIFF therefore costs one small read, and memory stays bounded whatever the file length.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from indexer.audio import frames_of, open_audio

CHUNK_BYTES = 1 << 16
MAX_WAV_DATA = 0xFFFFFFFF - 256  # RIFF sizes are 32-bit

_NATIVE = {
    # container -> subtypes a browser's <audio> decodes (mono/stereo only)
    "WAV": {"PCM_16", "PCM_U8"},
    "FLAC": {"PCM_16", "PCM_24", "PCM_S8"},
    "OGG": {"VORBIS", "OPUS"},
    "MP3": {"MPEG_LAYER_III"},
}
MIME = {"WAV": "audio/wav", "FLAC": "audio/flac", "OGG": "audio/ogg", "MP3": "audio/mpeg"}


class RangeError(Exception):
    """A Range header we refuse: status 400 (malformed) or 416 (unsatisfiable)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def browser_playable(container: str | None, subtype: str | None, channels: int | None) -> bool:
    return subtype in _NATIVE.get(container or "", ()) and (channels or 0) in (1, 2)


_RANGE = re.compile(r"^\s*bytes\s*=\s*(.+)$", re.I)
_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for a single-range header, None to send the whole resource.

    Malformed headers raise RangeError(400); a range starting past the end RangeError(416).
    Several ranges are legal but we answer them with the whole resource (RFC 9110 allows it).
    """
    if header is None:
        return None
    if len(header) > 200:
        raise RangeError(400, "Range header too long")
    m = _RANGE.match(header)
    if not m:
        raise RangeError(400, f"malformed Range header (expected bytes=FIRST-LAST): {header[:60]!r}")
    specs = m.group(1).split(",")
    parsed = []
    for spec in specs:
        s = _SPEC.match(spec)
        if not s or (not s.group(1) and not s.group(2)):
            raise RangeError(400, f"malformed Range header: {header[:60]!r}")
        first, last = s.group(1), s.group(2)
        if first and last and int(last) < int(first):
            raise RangeError(400, f"malformed Range header (last byte before first): {header[:60]!r}")
        parsed.append((first, last))
    if len(parsed) > 1:
        return None
    first, last = parsed[0]
    if not first:  # suffix range: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeError(416, "range not satisfiable")
        return max(0, size - n), size - 1
    a = int(first)
    if a >= size:
        raise RangeError(416, "range not satisfiable")
    b = min(int(last), size - 1) if last else size - 1
    return a, b


def file_bytes(path: str, first: int, last: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        fh.seek(first)
        left = last - first + 1
        while left > 0:
            data = fh.read(min(CHUNK_BYTES, left))
            if not data:  # the file shrank since it was stat'ed: keep Content-Length honest
                yield b"\0" * left
                return
            left -= len(data)
            yield data


class RegionPastEnd(ValueError):
    """A region that starts at or after the file's end (the server answers 416); an end past it is clipped."""


@dataclass
class VirtualWav:
    """A WAV rendering of frames [start, end) of `path`: 16-bit stereo-or-mono for the browser,
    or `bits=24`, all channels for a download that keeps the source's resolution."""

    path: str
    samplerate: int
    src_channels: int
    start: int  # frames
    end: int
    bits: int = 16
    keep_channels: bool = False

    @classmethod
    def open(cls, path: str, start_s: float | None, end_s: float | None, *, bits: int = 16,
             keep_channels: bool = False) -> "VirtualWav":
        with open_audio(path) as f:
            sr, ch, frames = int(f.samplerate), int(f.channels), frames_of(f)
        a = 0 if start_s is None else min(frames, max(0, int(math.floor(start_s * sr))))
        if start_s is not None and a >= frames:
            raise RegionPastEnd(f"the region starts at {start_s:g} s, at or after the end of the file "
                                f"({frames / sr:.3f} s)")
        b = frames if end_s is None else min(frames, max(a, int(math.ceil(end_s * sr))))
        v = cls(path, sr, ch, a, b, bits, keep_channels)
        v.end = min(b, a + MAX_WAV_DATA // v.block_align)
        return v

    @property
    def channels(self) -> int:
        return self.src_channels if self.keep_channels else min(2, self.src_channels)

    @property
    def block_align(self) -> int:
        return self.channels * self.bits // 8

    @property
    def data_size(self) -> int:
        return (self.end - self.start) * self.block_align

    @property
    def header(self) -> bytes:
        ch, bits = self.channels, self.bits
        byte_rate = self.samplerate * self.block_align
        if ch <= 2 and bits == 16:
            fmt = struct.pack("<HHIIHH", 1, ch, self.samplerate, byte_rate, self.block_align, bits)
        else:  # WAVE_FORMAT_EXTENSIBLE, as the spec wants for >2 channels or >16 bits
            mask = (1 << ch) - 1 if ch <= 18 else 0
            guid = struct.pack("<IHH", 1, 0, 0x10) + bytes([0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71])
            fmt = struct.pack("<HHIIHHHHI", 0xFFFE, ch, self.samplerate, byte_rate, self.block_align, bits,
                              22, bits, mask) + guid
        body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", self.data_size)
        return b"RIFF" + struct.pack("<I", len(body) - 4 + 4 + self.data_size) + body

    @property
    def size(self) -> int:
        return len(self.header) + self.data_size

    def iter_bytes(self, first: int = 0, last: int | None = None) -> Iterator[bytes]:
        """Bytes first..last (inclusive) of the WAV, converted from the source block by block."""
        last = self.size - 1 if last is None else last
        header = self.header
        if first < len(header):
            yield header[first : last + 1]
            first = len(header)
        if first > last:
            return
        ba = self.block_align
        f0 = (first - len(header)) // ba
        f1 = (last - len(header)) // ba + 1  # frames covering the byte range
        skip = (first - len(header)) - f0 * ba
        keep = last - first + 1
        step = max(1, CHUNK_BYTES // ba)
        with open_audio(self.path) as f:
            pos = self.start + f0
            stop = self.start + f1
            if pos:
                f.seek(pos)
            while pos < stop and keep > 0:
                n = min(step, stop - pos)
                x = f.read(n, dtype="float32", always_2d=True)
                if len(x) < n:  # a header that promised more frames than the file holds
                    x = np.concatenate([x, np.zeros((n - len(x), self.src_channels), np.float32)])
                data = self._convert(x)[skip : skip + keep]
                skip = 0
                keep -= len(data)
                pos += n
                yield data

    def _convert(self, x: np.ndarray) -> bytes:
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        if not self.keep_channels and x.shape[1] > 2:
            # Stereo downmix: even channels left, odd right (L R C LFE Ls Rs -> L+C+Ls, R+LFE+Rs).
            x = np.stack([x[:, 0::2].mean(axis=1), x[:, 1::2].mean(axis=1)], axis=1)
        if self.bits == 16:
            return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2").tobytes()
        v = np.clip(np.round(x.astype(np.float64) * 8388608.0), -8388608, 8388607).astype("<i4")
        return v.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()

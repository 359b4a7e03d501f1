"""How much of a WAV or AIFF file its own header says is missing (an interrupted copy).

libsndfile sizes a WAV/AIFF by the bytes the file holds, not by what its data chunk declares,
so a copy cut off half way reads as a shorter, healthy file. `declared_ratio()` reads the
chunk sizes themselves: declared audio bytes / audio bytes present (1.0 when whole, > 1 when
the file was cut; None when the header says nothing usable: other formats, streaming
placeholders such as 0 or 0xFFFFFFFF, RF64's size in ds64).
"""

from __future__ import annotations

import os
import struct

_SCAN_BYTES = 1 << 20  # chunks before the audio (bext, iXML, JUNK...) rarely pass 1 MB


def declared_ratio(path: str | os.PathLike) -> float | None:
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12:
                return None
            if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
                return _walk(f, size, "<I", b"data", 0)
            if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                return _walk(f, size, ">I", b"SSND", 8)  # SSND starts with offset + block size
    except OSError:
        return None
    return None


def _walk(f, size: int, fmt: str, want: bytes, skip: int) -> float | None:
    pos = 12
    while pos + 8 <= min(size, _SCAN_BYTES):
        f.seek(pos)
        hdr = f.read(8)
        if len(hdr) < 8:
            return None
        cid, n = hdr[:4], struct.unpack(fmt, hdr[4:])[0]
        if cid == want:
            declared = n - skip
            present = size - (pos + 8 + skip)
            if declared <= 0 or n in (0xFFFFFFFF, 0x7FFFFFFF) or present <= 0:
                return None
            return declared / present
        pos += 8 + n + (n & 1)  # chunks are padded to an even length
    return None

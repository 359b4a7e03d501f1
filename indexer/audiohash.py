"""A hash of a file's coded audio alone, so that a metadata edit does not look like new audio.

The whole-file content hash changes when any tool (ours, Soundminer, BaseHead, bwfmetaedit, a
tag editor) rewrites bext, iXML, INFO or tags; the audio hash does not. It covers:

  WAV/BWF/RF64  the bytes of the data chunk, plus the fmt chunk (same bytes, other format =
                other audio)
  AIFF/AIFC     the SSND payload, plus COMM
  FLAC          the frames after the metadata blocks, plus STREAMINFO
  MP3           the MPEG frames between an ID3v2 tag and an ID3v1 tag
  OGG/Opus      the bodies and granule positions of the audio pages (a tag editor may
                renumber pages and recompute their checksums; the packets stay the same)

Anything else gives None (callers fall back to the content hash). Reads are streamed; only
the header structures are parsed, nothing is decoded.
"""

from __future__ import annotations

import hashlib
import os
import struct

BLOCK = 1 << 20
MAX_PAGES = 10_000_000


def _feed(h, f, offset: int, length: int) -> None:
    f.seek(offset)
    left = length
    while left > 0:
        block = f.read(min(BLOCK, left))
        if not block:
            break
        h.update(block)
        left -= len(block)


def _riff(f, size: int, h) -> bool:
    from .metadata import riff_chunks

    chunks = riff_chunks(f, size)
    fmt = [c for c in chunks if c[0] == b"fmt "]
    data = [c for c in chunks if c[0] == b"data"]
    if not data:
        return False
    if fmt:
        _feed(h, f, fmt[0][1], min(fmt[0][2], 4096))
    _feed(h, f, data[0][1], data[0][2])
    return True


def _aiff(f, size: int, h) -> bool:
    pos, found = 12, False
    while pos + 8 <= size:
        f.seek(pos)
        cid, n = struct.unpack(">4sI", f.read(8))
        n = min(n, size - pos - 8)
        if cid == b"COMM":
            _feed(h, f, pos + 8, min(n, 4096))
        elif cid == b"SSND":
            _feed(h, f, pos + 8, n)
            found = True
        pos += 8 + n + (n & 1)
    return found


def _id3v2_end(f) -> int:
    f.seek(0)
    head = f.read(10)
    if head[:3] != b"ID3" or len(head) < 10:
        return 0
    n = 0
    for b in head[6:10]:
        n = (n << 7) | (b & 0x7F)
    return 10 + n + (10 if head[5] & 0x10 else 0)


def _flac(f, size: int, h) -> bool:
    pos = _id3v2_end(f)
    f.seek(pos)
    if f.read(4) != b"fLaC":
        return False
    pos += 4
    while pos + 4 <= size:
        f.seek(pos)
        hdr = f.read(4)
        n = int.from_bytes(hdr[1:4], "big")
        if hdr[0] & 0x7F == 0:  # STREAMINFO
            _feed(h, f, pos + 4, n)
        pos += 4 + n
        if hdr[0] & 0x80:
            _feed(h, f, pos, size - pos)
            return True
    return False


def _mp3(f, size: int, h) -> bool:
    start = _id3v2_end(f)
    end = size
    if size >= 128:
        f.seek(size - 128)
        if f.read(3) == b"TAG":
            end -= 128
    f.seek(start)
    sync = f.read(2)
    if len(sync) < 2 or sync[0] != 0xFF or sync[1] & 0xE0 != 0xE0:
        return False
    _feed(h, f, start, end - start)
    return True


def _ogg(f, size: int, h) -> bool:
    # Header packets (Vorbis 3, Opus 2) may be repaginated by a tag editor; audio starts on a
    # fresh page after them, so the pages after the last header packet are hashed.
    pos, pages, packets, headers = 0, 0, 0, None
    audio = False
    while pos + 27 <= size and pages < MAX_PAGES:
        f.seek(pos)
        hdr = f.read(27)
        if hdr[:4] != b"OggS":
            break
        nseg = hdr[26]
        segs = f.read(nseg)
        body = sum(segs)
        if headers is None:
            first = f.read(8)
            headers = 3 if first[:7] == b"\x01vorbis" else 2 if first[:8] == b"OpusHead" else 0
            if not headers:
                return False
        if packets >= headers:
            h.update(hdr[6:14])  # granule position
            _feed(h, f, pos + 27 + nseg, body)
            audio = True
        else:
            packets += sum(1 for s in segs if s < 255)
        pos += 27 + nseg + body
        pages += 1
    return audio


def audio_hash(path: str | os.PathLike) -> str | None:
    """blake2b-128 (hex) of the coded audio of a file, or None for a format we do not know."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
            h = hashlib.blake2b(digest_size=16)
            if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
                ok = _riff(f, size, h)
            elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                ok = _aiff(f, size, h)
            elif head[:4] == b"OggS":
                ok = _ogg(f, size, h)
            elif head[:4] == b"fLaC" or (head[:3] == b"ID3" and _is_flac_after_id3(f)):
                ok = _flac(f, size, h)
            else:
                ok = _mp3(f, size, h)
    except (OSError, struct.error):
        return None
    return h.hexdigest() if ok else None


def _is_flac_after_id3(f) -> bool:
    end = _id3v2_end(f)
    f.seek(end)
    return f.read(4) == b"fLaC"

"""Tags of FLAC, OGG Vorbis, Opus (Vorbis comments), MP3 and AIFF (ID3v2), through mutagen.

mutagen edits a file in place, so it is only ever given our temporary copy (see atomic.py).
The audio region of each format (FLAC frames, MPEG frames, AIFF SSND payload) is located here
so that the writer can prove it is unchanged and the journal can keep only what lies around it.
"""

from __future__ import annotations

import struct

from .errors import CannotWrite

KINDS = {"FLAC": "vorbis", "OggVorbis": "vorbis", "OggOpus": "vorbis", "MP3": "id3", "AIFF": "id3"}


def open_tags(path: str):
    """(mutagen file, family) for a writable tagged format, or CannotWrite."""
    import mutagen

    try:
        m = mutagen.File(path)
    except Exception as e:  # mutagen raises its own error per format
        raise CannotWrite(f"cannot read tags: {e}") from None
    if m is None:
        raise CannotWrite("unknown container (not WAV, FLAC, OGG, Opus, MP3 or AIFF)")
    name = type(m).__name__
    if name not in KINDS:
        raise CannotWrite(f"unsupported container {name}")
    return m, KINDS[name]


def _id3_get(tags, frame: str) -> str:
    if tags is None:
        return ""
    if frame == "COMM":
        found = [f for f in tags.getall("COMM") if f.desc == ""]
    elif frame.startswith("TXXX:"):
        desc = frame[5:]
        found = [f for f in tags.getall("TXXX") if f.desc.upper() == desc]
    else:
        found = tags.getall(frame)
    return "; ".join(str(t) for t in found[0].text) if found else ""


def current_values(m, family: str, places: list[str]) -> dict[str, str]:
    """{"vorbis:TITLE": text, "id3:TXXX:KEYWORDS": text, ...} for the given places."""
    out: dict[str, str] = {}
    for place in places:
        fam, name = place.split(":", 1)
        if fam != family:
            continue
        if family == "vorbis":
            vals = m.tags.get(name, []) if m.tags is not None else []
            out[place] = "; ".join(vals)
        else:
            out[place] = _id3_get(m.tags, name)
    return out


def _id3_set(tags, frame: str, text: str) -> None:
    from mutagen import id3

    if frame == "COMM":
        for f in [f for f in tags.getall("COMM") if f.desc == ""]:
            tags.pop(f.HashKey, None)
        if text:
            tags.add(id3.COMM(encoding=3, lang="eng", desc="", text=[text]))
    elif frame.startswith("TXXX:"):
        desc = frame[5:]
        for f in [f for f in tags.getall("TXXX") if f.desc.upper() == desc]:
            tags.pop(f.HashKey, None)
        if text:
            tags.add(id3.TXXX(encoding=3, desc=desc, text=[text]))
    else:
        tags.delall(frame)
        if text:
            tags.add(getattr(id3, frame)(encoding=3, text=[text]))


def write_tags(path: str, places: dict[str, str]) -> None:
    """Set the places on the file at path (our temporary copy) and save it there."""
    m, family = open_tags(path)
    if m.tags is None:
        m.add_tags()
    if family == "vorbis":
        for place, text in places.items():
            name = place.split(":", 1)[1]
            if text:
                m.tags[name] = [text]
            elif name in m.tags:
                del m.tags[name]
        m.save()
        return
    version = m.tags.version[1] if getattr(m.tags, "version", None) else 4
    for place, text in places.items():
        _id3_set(m.tags, place.split(":", 1)[1], text)
    # Keep an ID3v2.3 tag in 2.3 (mutagen would upgrade every frame to 2.4 otherwise).
    m.save(v2_version=3 if version == 3 else 4)


# ---------------------------------------------------------------- audio regions


def audio_region(f, size: int, kind: str) -> tuple[int, int] | None:
    """(offset, length) of the coded audio that a tag edit must not touch; None for Ogg."""
    f.seek(0)
    head = f.read(12)
    if kind == "FLAC":
        pos = _id3v2_size(head)
        f.seek(pos)
        if f.read(4) != b"fLaC":
            raise CannotWrite("FLAC stream marker not found")
        pos += 4
        while True:
            f.seek(pos)
            hdr = f.read(4)
            if len(hdr) < 4:
                raise CannotWrite("damaged FLAC metadata")
            pos += 4 + int.from_bytes(hdr[1:4], "big")
            if hdr[0] & 0x80:
                return pos, size - pos
    if kind == "MP3":
        start = _id3v2_size(head)
        end = size
        f.seek(max(0, size - 128))
        if size >= 128 and f.read(3) == b"TAG":
            end -= 128
        return start, max(0, end - start)
    if kind == "AIFF":
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, n = struct.unpack(">4sI", f.read(8))
            if cid == b"SSND":
                return pos + 8, min(n, size - pos - 8)
            pos += 8 + n + (n & 1)
        raise CannotWrite("AIFF without a sound data chunk")
    return None


def _id3v2_size(head: bytes) -> int:
    if head[:3] != b"ID3" or len(head) < 10:
        return 0
    n = 0
    for b in head[6:10]:
        n = (n << 7) | (b & 0x7F)
    return 10 + n + (10 if head[5] & 0x10 else 0)

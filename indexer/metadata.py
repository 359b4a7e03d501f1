"""Metadata sound people rely on, flattened to {key: text} for the catalog and keyword search.

Keys (all values are str):
  header.*   container, subtype, samplerate, channels, frames, duration_s (soundfile)
  bext.*     BWF bext: description, originator, originator_reference, origination_date,
             origination_time, time_reference (samples), time_reference_s, version, umid,
             loudness_value ... (v2), coding_history
  ixml.*     project, scene, take, tape, note, circled, ..., user.<FIELD> (or user),
             track.<n>.name / track.<n>.function, tracks (names joined by ", ")
  info.*     RIFF LIST/INFO by FourCC: info.INAM, info.IKEY, info.ICMT, info.IGNR, ...
  marker.*   RIFF cue labels/notes (LIST/adtl): marker.<id>.label, marker.<id>.note
  tag.*      tags read by mutagen (FLAC/OGG/MP3/AIFF, ID3 in WAV) and AIFF text chunks:
             title, artist, album, genre, date, comment, copyright, ...
  ucs.*      fields of a UCS file name (see parse_ucs_name)

RIFF/RF64/BW64 chunks are parsed here with bounded reads: sizes are never trusted beyond
the file, every chunk read is capped, and odd sizes are padded. Nothing raises out of
read_metadata: a damaged file gives what could be parsed (details logged at debug).
"""

from __future__ import annotations

import csv
import functools
import logging
import os
import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from .resources import data_file

log = logging.getLogger(__name__)

MAX_CHUNKS = 4096  # chunk headers walked per file
MAX_BEXT = 256 * 1024  # bext incl. coding history
MAX_IXML = 2 * 1024 * 1024
MAX_LIST = 1024 * 1024
MAX_VALUE = 16 * 1024  # one metadata value, after decoding
UCS_CSV = ("taxonomies", "ucs.csv")  # inside the installed data package (indexer.resources)


def _text(raw: bytes) -> str:
    """Fixed-width or NUL-terminated text -> str (UTF-8, else cp1252/latin-1), trimmed."""
    raw = raw.split(b"\x00", 1)[0]
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        s = raw.decode("cp1252", errors="replace")
    s = s.strip()
    return s[:MAX_VALUE]


def _put(out: dict[str, str], key: str, value: str | None) -> None:
    if value is None:
        return
    value = value.replace("\r\n", "\n").strip()[:MAX_VALUE]
    if value:
        out[key] = value


# ---------------------------------------------------------------- RIFF chunks


def riff_chunks(f, file_size: int) -> list[tuple[bytes, int, int]]:
    """(fourcc, data offset, data size) of the top-level chunks of a RIFF/RF64/BW64 file.

    Sizes are clamped to the file; RF64's 0xFFFFFFFF sizes are taken from ds64.
    Returns [] for anything that is not RIFF WAVE.
    """
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64", b"BW64") or head[8:12] != b"WAVE":
        return []
    big = head[:4] != b"RIFF"
    ds64: dict[bytes, int] = {}
    chunks: list[tuple[bytes, int, int]] = []
    pos = 12
    while pos + 8 <= file_size and len(chunks) < MAX_CHUNKS:
        f.seek(pos)
        hdr = f.read(8)
        if len(hdr) < 8:
            break
        cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
        if big and cid == b"ds64" and size >= 24:
            riff64, data64, _frames = struct.unpack("<QQQ", f.read(24))
            ds64[b"data"] = data64
        if big and size == 0xFFFFFFFF:
            size = ds64.get(cid, file_size - pos - 8)
        size = min(size, max(0, file_size - pos - 8))
        chunks.append((cid, pos + 8, size))
        pos += 8 + size + (size & 1)
    return chunks


def _read(f, offset: int, size: int, cap: int) -> bytes:
    f.seek(offset)
    return f.read(min(size, cap))


def parse_fmt(data: bytes) -> dict[str, int]:
    if len(data) < 16:
        return {}
    tag, ch, sr, _bps, _align, bits = struct.unpack("<HHIIHH", data[:16])
    return {"format_tag": tag, "channels": ch, "samplerate": sr, "bits": bits}


_BEXT_TEXT = (("description", 0, 256), ("originator", 256, 32), ("originator_reference", 288, 32),
              ("origination_date", 320, 10), ("origination_time", 330, 8))
_LOUDNESS = ("loudness_value", "loudness_range", "max_true_peak_level", "max_momentary_loudness",
             "max_short_term_loudness")


def parse_bext(data: bytes, samplerate: int | None = None) -> dict[str, str]:
    """EBU Tech 3285 bext chunk -> bext.* keys. Short or damaged chunks give what fits."""
    out: dict[str, str] = {}
    try:
        data = bytes(data[:MAX_BEXT])
        for key, off, n in _BEXT_TEXT:
            if len(data) >= off + 1:
                _put(out, f"bext.{key}", _text(data[off : off + n]))
        if len(data) >= 346:
            lo, hi = struct.unpack("<II", data[338:346])
            ref = (hi << 32) | lo
            out["bext.time_reference"] = str(ref)
            if samplerate and samplerate > 0:
                out["bext.time_reference_s"] = f"{ref / samplerate:.6f}".rstrip("0").rstrip(".")
        if len(data) >= 348:
            version = struct.unpack("<H", data[346:348])[0]
            out["bext.version"] = str(version)
            umid = data[348:412]
            if len(umid) == 64 and any(umid):
                # A basic UMID is 32 bytes; the extended half is often left zero.
                out["bext.umid"] = (umid if any(umid[32:]) else umid[:32]).hex().upper()
            if version >= 2 and len(data) >= 422:
                for i, key in enumerate(_LOUDNESS):
                    v = struct.unpack("<h", data[412 + 2 * i : 414 + 2 * i])[0]
                    if v != 0x7FFF:
                        out[f"bext.{key}"] = f"{v / 100:.2f}"
        if len(data) > 602:
            history = data[602:].split(b"\x00", 1)[0]
            _put(out, "bext.coding_history", _text(history).replace("\r\n", "\n"))
    except Exception as e:  # pragma: no cover - belt and braces for fuzzed input
        log.debug("bext: %s", e)
    return out


_IXML_TOP = ("PROJECT", "SCENE", "TAKE", "TAPE", "NOTE", "CIRCLED", "WILD_TRACK", "FALSE_START",
             "NO_GOOD", "UBITS", "FILE_UID", "IXML_VERSION")


def _xml_root(data: bytes):
    data = bytes(data[:MAX_IXML]).rstrip(b"\x00 \t\r\n")
    # No DTDs at all: defeats entity expansion ("billion laughs") and external entities.
    if re.search(rb"<!(DOCTYPE|ENTITY)", data, re.IGNORECASE):
        log.debug("iXML with a DTD refused")
        return None
    try:
        return ET.fromstring(data)
    except (ET.ParseError, ValueError, UnicodeError):
        # Some recorders pad with garbage after the root element: cut after it and retry.
        end = data.rfind(b"</BWFXML>")
        if end < 0:
            return None
        try:
            return ET.fromstring(data[: end + len(b"</BWFXML>")])
        except Exception:
            return None


def _el_text(el) -> str:
    return (el.text or "").strip() if el is not None else ""


def parse_ixml(data: bytes) -> dict[str, str]:
    """iXML chunk -> ixml.* keys (project, scene, take, tape, note, circled, user.*, track.*)."""
    out: dict[str, str] = {}
    try:
        root = _xml_root(data)
        if root is None:
            return out
        for tag in _IXML_TOP:
            _put(out, f"ixml.{tag.lower()}", _el_text(root.find(tag)))
        for user in root.findall("USER")[:16]:
            children = list(user)[:256]
            if children:
                for child in children:
                    if isinstance(child.tag, str):
                        _put(out, f"ixml.user.{child.tag.lower()[:64]}", _el_text(child))
            else:
                _put(out, "ixml.user", _el_text(user))
        names = []
        tracks = root.find("TRACK_LIST")
        for i, tr in enumerate((tracks.findall("TRACK") if tracks is not None else [])[:256], 1):
            n = _el_text(tr.find("CHANNEL_INDEX")) or str(i)
            n = n if n.isdigit() else str(i)
            name = _el_text(tr.find("NAME"))
            _put(out, f"ixml.track.{n}.name", name)
            _put(out, f"ixml.track.{n}.function", _el_text(tr.find("FUNCTION")))
            if name:
                names.append(name)
        _put(out, "ixml.tracks", ", ".join(names))
    except Exception as e:  # pragma: no cover
        log.debug("iXML: %s", e)
    return out


def _subchunks(data: bytes, limit: int = 1024):
    pos = 0
    n = 0
    while pos + 8 <= len(data) and n < limit:
        cid = data[pos : pos + 4]
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + min(size, len(data) - pos - 8)]
        yield cid, body
        pos += 8 + size + (size & 1)
        n += 1


def parse_info(data: bytes) -> dict[str, str]:
    """LIST chunk body ("INFO" + subchunks) -> info.<FOURCC>; "adtl" -> marker.<id>.*."""
    out: dict[str, str] = {}
    try:
        data = bytes(data[:MAX_LIST])
        kind, body = data[:4], data[4:]
        if kind == b"INFO":
            for cid, value in _subchunks(body):
                key = cid.decode("latin-1")
                if re.fullmatch(r"[A-Za-z0-9 ]{4}", key):
                    _put(out, f"info.{key.strip()}", _text(value))
        elif kind == b"adtl":
            for cid, value in _subchunks(body):
                if cid in (b"labl", b"note") and len(value) >= 4:
                    cue = struct.unpack("<I", value[:4])[0]
                    _put(out, f"marker.{cue}.{'label' if cid == b'labl' else 'note'}", _text(value[4:]))
    except Exception as e:  # pragma: no cover
        log.debug("LIST: %s", e)
    return out


def read_riff(f, file_size: int) -> dict[str, str]:
    out: dict[str, str] = {}
    chunks = riff_chunks(f, file_size)
    fmt = next((parse_fmt(_read(f, o, s, 64)) for c, o, s in chunks if c == b"fmt "), {})
    for cid, off, size in chunks:
        if cid == b"bext":
            out.update(parse_bext(_read(f, off, size, MAX_BEXT), fmt.get("samplerate")))
        elif cid == b"iXML":
            out.update(parse_ixml(_read(f, off, size, MAX_IXML)))
        elif cid == b"LIST":
            out.update(parse_info(_read(f, off, size, MAX_LIST)))
    return out


_AIFF_TEXT = {b"NAME": "title", b"AUTH": "artist", b"ANNO": "comment", b"(c) ": "copyright"}


def read_aiff_text(f, file_size: int) -> dict[str, str]:
    """AIFF/AIFC NAME, AUTH, ANNO, (c) chunks -> tag.*."""
    out: dict[str, str] = {}
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"FORM" or head[8:12] not in (b"AIFF", b"AIFC"):
        return out
    pos, n = 12, 0
    while pos + 8 <= file_size and n < MAX_CHUNKS:
        f.seek(pos)
        hdr = f.read(8)
        if len(hdr) < 8:
            break
        cid, size = hdr[:4], struct.unpack(">I", hdr[4:])[0]
        size = min(size, max(0, file_size - pos - 8))
        if cid in _AIFF_TEXT:
            _put(out, f"tag.{_AIFF_TEXT[cid]}", _text(f.read(min(size, MAX_VALUE))))
        pos += 8 + size + (size & 1)
        n += 1
    return out


# ---------------------------------------------------------------- mutagen tags

_ID3_NAMES = {"TIT2": "title", "TIT1": "grouping", "TIT3": "subtitle", "TPE1": "artist", "TPE2": "albumartist",
              "TALB": "album", "TCON": "genre", "TDRC": "date", "TYER": "date", "TCOP": "copyright",
              "TENC": "encoded_by", "TSSE": "encoder", "TCOM": "composer", "TPUB": "publisher",
              "TKEY": "key", "TBPM": "bpm", "TRCK": "tracknumber"}


def read_tags(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    import mutagen

    m = mutagen.File(path)
    tags = getattr(m, "tags", None) if m is not None else None
    if not tags:
        return out
    if hasattr(tags, "getall"):  # ID3 (MP3, AIFF, WAV)
        for frame in list(tags.values())[:512]:
            fid = frame.FrameID
            text = getattr(frame, "text", None)
            if fid == "COMM":
                _put(out, "tag.comment", "; ".join(map(str, frame.text)))
            elif fid == "TXXX":
                _put(out, f"tag.{str(frame.desc).lower()[:64] or 'txxx'}", "; ".join(map(str, frame.text)))
            elif fid in _ID3_NAMES and text is not None:
                _put(out, f"tag.{_ID3_NAMES[fid]}", "; ".join(map(str, text)))
    else:  # Vorbis comments (FLAC, OGG, Opus) and other dict-like tags
        items = tags.items() if hasattr(tags, "items") else []
        for k, v in list(items)[:512]:
            if not isinstance(k, str):
                continue
            vals = v if isinstance(v, list) else [v]
            _put(out, f"tag.{k.lower()[:64]}", "; ".join(str(x) for x in vals if isinstance(x, (str, int, float))))
    return out


# ---------------------------------------------------------------- UCS names


@dataclass(frozen=True)
class UcsName:
    cat_id: str
    fx_name: str
    creator_id: str
    source_id: str
    user_category: str = ""
    vendor_category: str = ""
    category: str = ""
    subcategory: str = ""
    user_data: str = ""  # blocks after SourceID, if any


@functools.lru_cache(maxsize=1)
def ucs_table() -> dict[str, tuple[str, str]]:
    """CatID -> (Category, SubCategory) from data/taxonomies/ucs.csv (UCS 8.2.1)."""
    with data_file(*UCS_CSV).open("r", newline="", encoding="utf-8") as f:
        return {row["cat_id"]: (row["category"], row["subcategory"]) for row in csv.DictReader(f)}


def parse_ucs_name(filename: str | os.PathLike) -> UcsName | None:
    """Fields of a UCS file name, or None if the name does not follow UCS.

    UCS: ``CatID[-UserCategory]_[VendorCategory-]FXName_CreatorID_SourceID[_UserData]``.
    The four required blocks must be present and the CatID must be one of the UCS list
    (case-sensitive, as UCS spells them: "DOORWood"). A hyphen in the FXName block is read as
    the VendorCategory separator only when it is not spaced ("Vendor-Name", not "Slam - Big").
    """
    try:
        name = os.path.basename(os.fspath(filename))
        stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
        blocks = stem.split("_")
        if len(blocks) < 4 or not all(b.strip() for b in blocks[:4]):
            return None
        cat_id, _, user_cat = blocks[0].partition("-")
        table = ucs_table()
        if cat_id not in table:
            return None
        fx = blocks[1]
        vendor = ""
        m = re.match(r"^([^\s-][^-]*?[^\s-]|[^\s-])-(?=\S)(.+)$", fx)
        if m and " " not in m.group(1):
            vendor, fx = m.group(1), m.group(2)
        category, subcategory = table[cat_id]
        return UcsName(cat_id=cat_id, fx_name=fx.strip(), creator_id=blocks[2].strip(),
                       source_id=blocks[3].strip(), user_category=user_cat.strip(),
                       vendor_category=vendor, category=category, subcategory=subcategory,
                       user_data="_".join(blocks[4:]).strip())
    except Exception as e:  # pragma: no cover
        log.debug("UCS name %r: %s", filename, e)
        return None


# ---------------------------------------------------------------- entry point


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """All metadata of one file as flat {key: str}; never raises (see module docstring)."""
    out: dict[str, str] = {}
    path = os.fspath(path)
    try:
        from .audio import probe

        info = probe(path)
        out.update({"header.container": info.container, "header.subtype": info.subtype,
                    "header.samplerate": str(info.samplerate), "header.channels": str(info.channels),
                    "header.frames": str(info.frames), "header.duration_s": f"{info.duration_s:.6f}"})
    except Exception as e:
        log.debug("%s: header: %s", path, e)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            out.update(read_riff(f, size))
            aiff = read_aiff_text(f, size)
        for k, v in aiff.items():
            out.setdefault(k, v)
    except Exception as e:
        log.debug("%s: chunks: %s", path, e)
    try:
        for k, v in read_tags(path).items():
            out.setdefault(k, v)
    except Exception as e:
        log.debug("%s: tags: %s", path, e)
    try:
        ucs = parse_ucs_name(path)
        if ucs is not None:
            for field in ("cat_id", "category", "subcategory", "fx_name", "creator_id", "source_id",
                          "user_category", "vendor_category", "user_data"):
                _put(out, f"ucs.{field}", getattr(ucs, field))
    except Exception as e:  # pragma: no cover
        log.debug("%s: ucs: %s", path, e)
    return out

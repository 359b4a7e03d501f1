"""RIFF / RF64 / BW64 WAVE files: read the chunk layout strictly, write a copy with some chunks replaced.

Every chunk we do not replace is copied byte for byte, in its place, with its pad byte (and the
pad byte's value) as found; the sample data is copied, never decoded. New chunks go after the
last chunk, so the order of the existing ones never changes. RF64/BW64 files stay RF64: the
header keeps 0xFFFFFFFF and the ds64 chunk gets the new RIFF size. A layout we cannot read
with certainty (a chunk running past the end, a garbled header) is refused, not guessed.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from ..metadata import parse_bext, parse_info
from . import ixml
from .errors import CannotWrite
from .fields import fit_bext_description

BIG_FORMS = (b"RF64", b"BW64")
MAX_META_CHUNK = 64 * 1024 * 1024  # bext/iXML/LIST we read into memory to edit
COPY_BLOCK = 1 << 20
BEXT_MIN = 602  # EBU Tech 3285 v0 fixed part


@dataclass
class Chunk:
    fourcc: bytes
    start: int  # offset of the 8-byte header
    size: int  # payload size (from ds64 when the header says 0xFFFFFFFF)
    pad: int  # pad bytes present after an odd payload (0 or 1)

    @property
    def data_off(self) -> int:
        return self.start + 8

    @property
    def end(self) -> int:
        return self.start + 8 + self.size + self.pad


@dataclass
class Layout:
    form: bytes
    chunks: list[Chunk]
    file_size: int
    ds64: Chunk | None = None
    trailing: int = 0  # offset of bytes after the last chunk (kept as they are)

    def find(self, fourcc: bytes) -> list[int]:
        return [i for i, c in enumerate(self.chunks) if c.fourcc == fourcc]

    @property
    def data(self) -> Chunk:
        found = self.find(b"data")
        if not found:
            raise CannotWrite("WAV file without a data chunk")
        return self.chunks[found[0]]


def _printable(fourcc: bytes) -> bool:
    return all(0x20 <= b <= 0x7E for b in fourcc)


def read_layout(f, file_size: int) -> Layout:
    """The chunk table of a WAVE file, or CannotWrite with the reason it is not safe to edit."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF",) + BIG_FORMS:
        raise CannotWrite("not a RIFF/RF64 WAVE file")
    form = head[:4]
    declared_end = 8 + struct.unpack("<I", head[4:8])[0]
    sizes64: dict[bytes, int] = {}
    layout = Layout(form=form, chunks=[], file_size=file_size)
    pos = 12
    while pos + 8 <= file_size:
        f.seek(pos)
        hdr = f.read(8)
        cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
        if not _printable(cid):
            if form == b"RIFF" and pos >= declared_end:
                break  # junk after the RIFF body: kept verbatim as trailing bytes
            raise CannotWrite(f"damaged RIFF: unreadable chunk id at byte {pos}")
        if form in BIG_FORMS and not layout.chunks:
            if cid != b"ds64" or size < 28:
                raise CannotWrite(f"{form.decode()} file without a ds64 chunk first")
            riff64, data64, _frames, table_len = struct.unpack("<QQQI", f.read(28))
            sizes64[b"data"] = data64
            for _ in range(min(table_len, 1024)):
                entry = f.read(12)
                if len(entry) == 12:
                    sizes64[entry[:4]] = struct.unpack("<Q", entry[4:])[0]
        if size == 0xFFFFFFFF and form in BIG_FORMS:
            if cid not in sizes64:
                raise CannotWrite(f"RF64 chunk {cid!r} has no size in ds64")
            size = sizes64[cid]
        if pos + 8 + size > file_size:
            raise CannotWrite(f"damaged RIFF: chunk {cid.decode('latin-1')!r} runs past the end of the file")
        pad = 0
        if size & 1 and pos + 8 + size < file_size:
            pad = 1
        chunk = Chunk(cid, pos, size, pad)
        if cid == b"ds64" and layout.ds64 is None:
            layout.ds64 = chunk
        layout.chunks.append(chunk)
        pos = chunk.end
    layout.trailing = pos
    layout.data  # noqa: B018 - refuse files without audio early
    return layout


def read_payload(f, chunk: Chunk) -> bytes:
    if chunk.size > MAX_META_CHUNK:
        raise CannotWrite(f"{chunk.fourcc.decode('latin-1')} chunk too large to edit ({chunk.size} bytes)")
    f.seek(chunk.data_off)
    return f.read(chunk.size)


# ---------------------------------------------------------------- payload edits


def current_values(f, layout: Layout) -> dict[str, str]:
    """What the file holds now at our places: "bext:Description", "ixml:FXNAME", "info:INAM"."""
    out: dict[str, str] = {}
    for i in layout.find(b"bext")[:1]:
        out["bext:Description"] = parse_bext(read_payload(f, layout.chunks[i])).get("bext.description", "")
    for i in layout.find(b"iXML")[:1]:
        for k, v in ixml.read_user(read_payload(f, layout.chunks[i])).items():
            out[f"ixml:{k}"] = v
    for i in info_lists(f, layout)[:1]:
        for k, v in parse_info(read_payload(f, layout.chunks[i])).items():
            out[f"info:{k.split('.', 1)[1]}"] = v
    return out


def info_lists(f, layout: Layout) -> list[int]:
    out = []
    for i in layout.find(b"LIST"):
        f.seek(layout.chunks[i].data_off)
        if f.read(4) == b"INFO":
            out.append(i)
    return out


def edit_bext(payload: bytes | None, description: str) -> bytes:
    base = bytearray(payload if payload is not None else bytes(BEXT_MIN))
    if len(base) < BEXT_MIN:
        base.extend(bytes(BEXT_MIN - len(base)))
    base[0:256] = fit_bext_description(description)
    return bytes(base)


def _info_value(text: str) -> bytes:
    return text.encode("utf-8") + b"\x00"  # INFO strings are NUL-terminated


def edit_info(payload: bytes | None, values: dict[str, str]) -> bytes:
    """LIST/INFO body with the given FourCCs set (an empty value removes the entry)."""
    body = payload[4:] if payload is not None else b""
    out = bytearray(b"INFO")
    done: set[str] = set()
    pos = 0
    while pos + 8 <= len(body):
        cid = body[pos : pos + 4]
        size = struct.unpack("<I", body[pos + 4 : pos + 8])[0]
        end = min(len(body), pos + 8 + size + (size & 1))
        key = cid.decode("latin-1")
        if key in values and key not in done:
            done.add(key)
            if values[key]:
                val = _info_value(values[key])
                out += cid + struct.pack("<I", len(val)) + val + (b"\x00" if len(val) & 1 else b"")
        elif key not in values:
            out += body[pos:end]  # untouched entries keep their bytes and pad
        pos = end
    out += body[pos:]
    for key, text in values.items():
        if key not in done and text:
            val = _info_value(text)
            out += key.encode("latin-1") + struct.pack("<I", len(val)) + val + (b"\x00" if len(val) & 1 else b"")
    return bytes(out)


# ---------------------------------------------------------------- the copy


@dataclass
class Written:
    """Where the sample data sits in the old and the new file, and its hash."""

    audio_old: tuple[int, int]  # (offset, length) in the old file
    audio_new_off: int
    audio_hash: str
    new_size: int = 0


def _copy(src, dst, offset: int, length: int, h=None) -> None:
    src.seek(offset)
    left = length
    while left:
        block = src.read(min(COPY_BLOCK, left))
        if not block:
            raise CannotWrite("file shrank while being copied")
        if h is not None:
            h.update(block)
        dst.write(block)
        left -= len(block)


def _header(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload))


def write_copy(src, dst, layout: Layout, replace: dict[int, bytes], append: list[tuple[bytes, bytes]]) -> Written:
    """Write the new file to dst: chunks in order, `replace` payloads by index, `append` at the end."""
    data = layout.data
    h = hashlib.blake2b(digest_size=16)
    dst.write(bytes(12))
    ds64_at = None
    audio_new = 0
    last = len(layout.chunks) - 1
    for i, c in enumerate(layout.chunks):
        if i in replace:
            payload = replace[i]
            dst.write(_header(c.fourcc, payload) + payload)
            if len(payload) & 1:
                dst.write(b"\x00")
            continue
        if c is layout.ds64:
            ds64_at = dst.tell()
        if c is data:
            audio_new = dst.tell() + 8
            _copy(src, dst, c.start, 8)
            _copy(src, dst, c.data_off, c.size, h)
            _copy(src, dst, c.data_off + c.size, c.pad)
        else:
            _copy(src, dst, c.start, c.end - c.start)
        if i == last and c.size & 1 and not c.pad and append:
            dst.write(b"\x00")  # the file ended without the pad byte; a chunk follows now
    for fourcc, payload in append:
        dst.write(_header(fourcc, payload) + payload)
        if len(payload) & 1:
            dst.write(b"\x00")
    body_end = dst.tell()
    _copy(src, dst, layout.trailing, layout.file_size - layout.trailing)
    riff_size = body_end - 8
    dst.seek(0)
    if layout.form in BIG_FORMS:
        dst.write(layout.form + b"\xff\xff\xff\xff" + b"WAVE")
        dst.seek(ds64_at + 8)
        dst.write(struct.pack("<Q", riff_size))
    else:
        if riff_size > 0xFFFFFFFF:
            raise CannotWrite("the file would pass 4 GB as RIFF; convert it to RF64 first")
        dst.write(b"RIFF" + struct.pack("<I", riff_size) + b"WAVE")
    dst.seek(0, 2)
    return Written(audio_old=(data.data_off, data.size), audio_new_off=audio_new, audio_hash=h.hexdigest(),
                   new_size=dst.tell())


def plan_edits(f, layout: Layout, places: dict[str, str]) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Payload edits for {"bext:Description": v, "ixml:NAME": v, "info:FOURCC": v}."""
    replace: dict[int, bytes] = {}
    append: list[tuple[bytes, bytes]] = []
    desc = places.get("bext:Description")
    if desc is not None:
        idx = layout.find(b"bext")
        for i in idx:
            replace[i] = edit_bext(read_payload(f, layout.chunks[i]), desc)
        if not idx and desc:
            append.append((b"bext", edit_bext(None, desc)))
    user = {k.split(":", 1)[1]: v for k, v in places.items() if k.startswith("ixml:")}
    if user:
        idx = layout.find(b"iXML")
        for i in idx:
            replace[i] = ixml.set_user(read_payload(f, layout.chunks[i]), user)
        if not idx:
            append.append((b"iXML", ixml.set_user(None, user)))
    info = {k.split(":", 1)[1]: v for k, v in places.items() if k.startswith("info:")}
    if info:
        idx = info_lists(f, layout)
        for i in idx:
            replace[i] = edit_info(read_payload(f, layout.chunks[i]), info)
        if not idx and any(info.values()):
            append.append((b"LIST", edit_info(None, info)))
    return replace, append

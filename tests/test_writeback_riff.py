"""Metadata written into WAV/BWF/RF64 files (issue 15): read back by independent readers, audio,
other chunks and their order byte for byte, pad bytes kept, undo restores the original bytes."""

from __future__ import annotations

import os
import shutil
import struct

import numpy as np
import pytest
import soundfile as sf
from conftest import FIXTURES_BWF

import audiogen
from indexer.metadata import read_metadata
from indexer.writeback import Journal, plan_file, write_files
from indexer.writeback.atomic import file_hash
from indexer.writeback.riff import read_layout

wavinfo = pytest.importorskip("wavinfo")

VALUES = {"cat_id": "DOORWood", "fx_name": "Creak Slow", "description": "Wooden door creak, slow & low <close>",
          "keywords": "door, wood, creak", "notes": "recorded in the barn"}
EDITED = {b"bext", b"iXML", b"LIST", b"ds64"}


def fixtures() -> list:
    found = sorted(p for p in FIXTURES_BWF.glob("*") if p.suffix.lower() == ".wav")
    assert len(found) >= 6, f"fixtures missing in {FIXTURES_BWF}"
    return found


def layout_of(path):
    with open(path, "rb") as f:
        return read_layout(f, os.path.getsize(path))


def chunk_bytes(path, c) -> bytes:
    with open(path, "rb") as f:
        f.seek(c.start)
        return f.read(c.end - c.start)


def assert_untouched_chunks(old_path, new_path):
    """Every chunk except bext/iXML/LIST-INFO/ds64 is byte-identical, in the same order."""
    old, new = layout_of(old_path), layout_of(new_path)
    old_ids = [c.fourcc for c in old.chunks]
    new_ids = [c.fourcc for c in new.chunks]
    assert new_ids[: len(old_ids)] == old_ids, "chunk order changed"
    assert set(new_ids[len(old_ids):]) <= {b"bext", b"iXML", b"LIST"}
    for a, b in zip(old.chunks, new.chunks):
        if a.fourcc in EDITED:
            continue
        assert chunk_bytes(old_path, a) == chunk_bytes(new_path, b), a.fourcc


@pytest.mark.parametrize("src", fixtures(), ids=lambda p: p.name)
def test_real_recorder_files_read_back_by_wavinfo_and_undo_restores_bytes(src, tmp_path):
    path = tmp_path / src.name
    shutil.copyfile(src, path)
    os.chmod(path, 0o640)
    original = file_hash(path)
    audio_before, sr = sf.read(path, dtype="int32" if "float" not in src.name else "float32")
    journal = Journal(tmp_path / "journal")

    change, rows = write_files([plan_file(path, VALUES)], journal)
    assert rows[0]["status"] == "written", rows

    info = wavinfo.WavInfoReader(str(path))
    assert info.bext.description == VALUES["description"]
    user = info.ixml.parsed.find("USER")
    got = {el.tag: el.text for el in user}
    assert got["CATID"] == "DOORWood" and got["CATEGORY"] == "DOORS" and got["SUBCATEGORY"] == "WOOD"
    assert got["CATEGORYFULL"] == "DOORS-WOOD" and got["FXNAME"] == "Creak Slow"
    assert got["DESCRIPTION"] == VALUES["description"] and got["KEYWORDS"] == VALUES["keywords"]
    assert got["NOTES"] == VALUES["notes"]
    assert info.info.title == "Creak Slow" and info.info.comment == VALUES["description"]
    assert info.info.keywords == VALUES["keywords"]
    md = read_metadata(path)
    assert md["ixml.user.catid"] == "DOORWood" and md["info.IKEY"] == VALUES["keywords"]

    audio_after, sr2 = sf.read(path, dtype=audio_before.dtype)
    assert sr2 == sr and np.array_equal(audio_before, audio_after)
    assert_untouched_chunks(src, path)
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o640)

    results = journal.undo(journal.get(change))
    assert results == [{"path": str(path), "status": "restored"}]
    assert file_hash(path) == original
    assert journal.get(change).undone


def test_existing_ixml_keeps_every_other_byte(tmp_path):
    src = FIXTURES_BWF / "nuendo 5.1.wav"
    path = tmp_path / "n.wav"
    shutil.copyfile(src, path)
    with open(src, "rb") as f:
        c = layout_of(src).chunks[layout_of(src).find(b"iXML")[0]]
        f.seek(c.data_off)
        old_xml = f.read(c.size).decode("utf-8")
    write_files([plan_file(path, {"keywords": "k1, k2"})], Journal(tmp_path / "j"))
    lay = layout_of(path)
    with open(path, "rb") as f:
        c = lay.chunks[lay.find(b"iXML")[0]]
        f.seek(c.data_off)
        new_xml = f.read(c.size).decode("utf-8")
    cut = old_xml.index("</BWFXML>")
    assert new_xml.startswith(old_xml[:cut].rstrip())  # everything before our <USER> is unchanged
    assert "<KEYWORDS>k1, k2</KEYWORDS>" in new_xml
    assert new_xml.endswith(old_xml[cut:])  # and the root end plus the recorder's padding


def test_second_write_edits_in_place_and_preview_shows_old_values(tmp_path):
    path = audiogen.write_audio(tmp_path / "a.wav", kind="noise", duration=0.5)
    journal = Journal(tmp_path / "j")
    write_files([plan_file(path, {"description": "first"})], journal)
    plan = plan_file(path, {"description": "second", "keywords": "x"})
    assert [(c.field, c.old, c.new) for c in plan.changes] == [("description", "first", "second"), ("keywords", "", "x")]
    write_files([plan], journal)
    lay = layout_of(path)
    assert [c.fourcc for c in lay.chunks].count(b"iXML") == 1 and [c.fourcc for c in lay.chunks].count(b"bext") == 1
    assert wavinfo.WavInfoReader(str(path)).bext.description == "second"
    assert plan_file(path, {"description": "second"}).changes == []  # nothing left to write
    # Undo both, newest first: back to the generated file.
    for _ in range(2):
        journal.undo(journal.get(None))
    assert b"bext" not in [c.fourcc for c in layout_of(path).chunks]


def _riff(chunks: list[tuple[bytes, bytes, bytes]], *, trailing_pad=True) -> bytes:
    body = b"WAVE"
    for i, (cid, payload, pad) in enumerate(chunks):
        body += cid + struct.pack("<I", len(payload)) + payload
        if len(payload) & 1 and (trailing_pad or i < len(chunks) - 1):
            body += pad
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_odd_chunks_keep_their_pad_byte_values_and_a_missing_final_pad_is_added(tmp_path):
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    samples = np.arange(-50, 51, dtype="<i2").tobytes()  # 202 bytes
    raw = _riff([(b"fmt ", fmt, b""), (b"odd1", b"abc", b"\xab"), (b"data", samples, b""),
                 (b"odd2", b"xyzzy", b"\x00")], trailing_pad=False)
    path = audiogen.write_bytes(tmp_path / "odd.wav", raw)
    journal = Journal(tmp_path / "j")
    change, rows = write_files([plan_file(path, {"fx_name": "Odd"})], journal)
    assert rows[0]["status"] == "written"
    new = path.read_bytes()
    assert b"odd1\x03\x00\x00\x00abc\xab" in new  # the pad byte's own value, not a zero
    lay = layout_of(path)
    assert [c.fourcc for c in lay.chunks] == [b"fmt ", b"odd1", b"data", b"odd2", b"iXML", b"LIST"]
    odd2 = lay.chunks[3]
    assert odd2.pad == 1 and chunk_bytes(path, odd2) == b"odd2\x05\x00\x00\x00xyzzy\x00"
    assert struct.unpack("<I", new[4:8])[0] == len(new) - 8
    assert sf.read(path, dtype="int16")[0].tolist() == list(range(-50, 51))
    journal.undo(journal.get(change))
    assert path.read_bytes() == raw


def test_rf64_stays_rf64_with_ds64_sizes(tmp_path):
    path = audiogen.write_audio(tmp_path / "big.wav", kind="sine", duration=0.5, format="RF64")
    head = path.read_bytes()[:4]
    assert head == b"RF64"
    data_before = sf.read(path, dtype="int16")[0]
    journal = Journal(tmp_path / "j")
    change, rows = write_files([plan_file(path, {"description": "rf64 desc", "cat_id": "RAINConc"})], journal)
    assert rows[0]["status"] == "written"
    raw = path.read_bytes()
    assert raw[:4] == b"RF64" and raw[4:8] == b"\xff\xff\xff\xff"
    lay = layout_of(path)
    ds64 = lay.chunks[0]
    assert ds64.fourcc == b"ds64"
    riff64, data64 = struct.unpack("<QQ", raw[ds64.data_off : ds64.data_off + 16])
    assert riff64 == len(raw) - 8 and data64 == lay.data.size
    assert np.array_equal(sf.read(path, dtype="int16")[0], data_before)
    assert read_metadata(path)["ixml.user.catid"] == "RAINConc"
    journal.undo(journal.get(change))
    assert path.read_bytes()[:4] == b"RF64"


def test_damaged_and_foreign_files_are_reported_and_untouched(tmp_path):
    good = audiogen.write_audio(tmp_path / "g.wav", duration=0.2)
    truncated = audiogen.write_bytes(tmp_path / "t.wav", good.read_bytes()[:-100])
    text = audiogen.write_bytes(tmp_path / "notes.wav", b"just some text, not audio at all" * 4)
    w64 = audiogen.write_audio(tmp_path / "x.w64", duration=0.2, format="W64")
    hashes = {p: file_hash(p) for p in (truncated, text, w64)}
    plans = [plan_file(p, {"description": "x"}) for p in (truncated, text, w64)]
    reasons = [p.skipped for p in plans]
    assert "runs past the end" in reasons[0]
    assert "unknown container" in reasons[1] or "not" in reasons[1]
    assert reasons[2]
    _, rows = write_files(plans, Journal(tmp_path / "j"))
    assert [r["status"] for r in rows] == ["skipped"] * 3
    assert {p: file_hash(p) for p in hashes} == hashes


def test_unknown_field_and_catid_are_user_errors(tmp_path):
    from indexer.config import UserError
    from indexer.writeback import normalise

    with pytest.raises(UserError, match="not a UCS CatID"):
        normalise({"cat_id": "NOPEnope"})
    with pytest.raises(UserError, match="unknown field"):
        normalise({"colour": "red"})
    assert normalise({"CatID": "doorwood"})["cat_id"] == "DOORWood"


class _Sparse:
    """A file-like object of `size` bytes: given segments, zeros elsewhere (no disk, no RAM)."""

    def __init__(self, size: int, segments: dict[int, bytes] | None = None):
        self.size, self.segments, self.pos = size, dict(segments or {}), 0

    def seek(self, pos, whence=0):
        self.pos = pos if whence == 0 else self.size + pos
        return self.pos

    def tell(self):
        return self.pos

    def read(self, n=-1):
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        out = bytearray(n)
        for off, data in self.segments.items():
            lo, hi = max(off, self.pos), min(off + len(data), self.pos + n)
            if lo < hi:
                out[lo - self.pos : hi - self.pos] = data[lo - off : hi - off]
        self.pos += n
        return bytes(out)

    def write(self, data):
        if self.pos < 4096 or self.pos > self.size - 65536:  # keep headers and the tail only
            self.segments[self.pos] = bytes(data)
        self.pos += len(data)
        self.size = max(self.size, self.pos)
        return len(data)


@pytest.mark.slow
def test_rf64_past_4_gb_keeps_ds64_sizes(monkeypatch):
    """A 4.3 GB RF64 rewritten (on virtual files: the copy logic, not the disk, is under test)."""
    from indexer.writeback import riff

    monkeypatch.setattr(riff, "COPY_BLOCK", 64 << 20)

    class NoHash:  # hashing 4 GB of zeros would only cost time here
        def update(self, block):
            pass

        def hexdigest(self):
            return "-"

    monkeypatch.setattr(riff.hashlib, "blake2b", lambda **kw: NoHash())
    data_size = (1 << 32) + 4096
    fmt = struct.pack("<HHIIHH", 1, 2, 48000, 192000, 4, 16)
    head = (b"RF64" + b"\xff\xff\xff\xff" + b"WAVE" + b"ds64" + struct.pack("<I", 28)
            + struct.pack("<QQQI", 0, data_size, data_size // 4, 0)
            + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + b"\xff\xff\xff\xff")
    tail_chunk = b"LIST" + struct.pack("<I", 14) + b"INFOINAM" + struct.pack("<I", 2) + b"x\x00"
    total = len(head) + data_size + len(tail_chunk)
    src = _Sparse(total, {0: head, len(head) + 100: b"\x01\x02\x03", len(head) + data_size: tail_chunk})
    src.segments[0] = head[:20] + struct.pack("<Q", total - 8) + head[28:]
    layout = riff.read_layout(src, total)
    assert layout.data.size == data_size and layout.form == b"RF64"
    replace, append = riff.plan_edits(src, layout, {"bext:Description": "big one", "info:INAM": "Big"})
    dst = _Sparse(0)
    w = riff.write_copy(src, dst, layout, replace, append)
    dst.seek(0)
    first = dst.read(200)
    assert first[:4] == b"RF64" and first[4:8] == b"\xff\xff\xff\xff"
    riff64, data64 = struct.unpack("<QQ", first[20:36])
    assert riff64 == w.new_size - 8 > 0xFFFFFFFF and data64 == data_size
    new_layout = riff.read_layout(dst, w.new_size)
    assert [c.fourcc for c in new_layout.chunks] == [b"ds64", b"fmt ", b"data", b"LIST", b"bext"]
    assert new_layout.data.size == data_size and w.audio_new_off == new_layout.data.data_off
    dst.seek(new_layout.chunks[3].data_off)
    assert dst.read(new_layout.chunks[3].size).startswith(b"INFOINAM")

"""The audio hash ignores metadata edits by independent writers and follows audio changes (issue 15)."""

from __future__ import annotations

import shutil
import struct

import mutagen
import pytest
from conftest import FIXTURES_BWF

import audiogen
from indexer.audiohash import audio_hash
from indexer.scan import content_hash


def _retag(path):
    m = mutagen.File(path)
    if m.tags is None:
        m.add_tags()
    if hasattr(m.tags, "getall"):
        from mutagen.id3 import COMM, TIT2

        m.tags.add(TIT2(encoding=3, text=["edited elsewhere"]))
        m.tags.add(COMM(encoding=3, lang="eng", desc="", text=["x" * 5000]))
    else:
        m.tags["TITLE"] = ["edited elsewhere"]
        m.tags["COMMENT"] = ["x" * 70000]  # a comment header over a page: Ogg pages renumbered
    m.save()


@pytest.mark.parametrize("ext", ["flac", "ogg", "opus", "mp3", "aiff"])
def test_tag_edit_by_mutagen_keeps_audio_hash(ext, tmp_path):
    path = audiogen.write_audio(tmp_path / f"a.{ext}", kind="noise", duration=1.0)
    other = audiogen.write_audio(tmp_path / f"b.{ext}", kind="noise", duration=1.0, seed=9)
    before, whole = audio_hash(path), content_hash(path)
    assert before is not None and before != audio_hash(other)
    _retag(path)
    assert content_hash(path) != whole
    assert audio_hash(path) == before


def test_raw_chunk_edit_of_bwf_keeps_audio_hash(tmp_path):
    src = FIXTURES_BWF / "metacorder_Sr001-2C-01_01.WAV"
    path = tmp_path / "m.wav"
    shutil.copyfile(src, path)
    before = audio_hash(path)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"bext") + 8
    raw[at : at + 11] = b"edited desc"  # bext Description rewritten in place, as bwfmetaedit does
    note = b"JUNK" + struct.pack("<I", 5) + b"hello\x00"
    raw += note
    raw[4:8] = struct.pack("<I", len(raw) - 8)
    path.write_bytes(bytes(raw))
    assert audio_hash(path) == before
    raw[raw.index(b"data") + 100] ^= 0xFF  # one sample byte
    path.write_bytes(bytes(raw))
    assert audio_hash(path) != before


def test_unknown_format_has_no_audio_hash(tmp_path):
    p = audiogen.write_bytes(tmp_path / "x.wav", b"not audio at all" * 10)
    assert audio_hash(p) is None

"""Metadata written as Vorbis comments (FLAC, OGG, Opus) and ID3 (MP3, AIFF) (issue 15):
read back with mutagen, coded audio byte-identical, other tags kept, undo byte-identical."""

from __future__ import annotations

import mutagen
import numpy as np
import pytest
import soundfile as sf

import audiogen
from indexer.writeback import Journal, plan_file, write_files
from indexer.writeback.atomic import file_hash, region_hash
from indexer.writeback.tags import audio_region

VALUES = {"cat_id": "GLASBrk", "fx_name": "Bottle Smash", "description": "Glass bottle smashed on concrete",
          "keywords": "glass, bottle, smash", "notes": "take 3"}


def _vorbis(m, key):
    return m.tags.get(key, [""])[0]


def _id3(m, key):
    frames = m.tags.getall(key)
    return str(frames[0].text[0]) if frames else ""


@pytest.mark.parametrize("ext", ["flac", "ogg", "opus", "mp3", "aiff"])
def test_tags_read_back_by_mutagen_audio_identical_undo_restores(ext, tmp_path):
    path = audiogen.write_audio(tmp_path / f"glass.{ext}", kind="noise", duration=1.0, sr=48000)
    pre = mutagen.File(path)
    if pre.tags is None:
        pre.add_tags()
    if ext in ("mp3", "aiff"):
        from mutagen.id3 import TPE1

        pre.tags.add(TPE1(encoding=3, text=["Someone Else"]))
    else:
        pre.tags["ARTIST"] = ["Someone Else"]
    pre.save()
    original = file_hash(path)
    decoded = sf.read(path, dtype="float32")[0]
    kind = type(pre).__name__
    with open(path, "rb") as f:
        region = audio_region(f, path.stat().st_size, kind)
        region_before = region_hash(f, *region) if region else None

    journal = Journal(tmp_path / "journal")
    plan = plan_file(path, VALUES)
    assert plan.skipped is None and {c.field for c in plan.changes} >= {"cat_id", "description", "keywords"}
    change, rows = write_files([plan], journal)
    assert rows[0]["status"] == "written", rows

    m = mutagen.File(path)
    if ext in ("mp3", "aiff"):
        assert _id3(m, "TIT2") == "Bottle Smash"
        assert _id3(m, "TXXX:CATID") == "GLASBrk" and _id3(m, "TXXX:CATEGORY") == "GLASS"
        assert _id3(m, "TXXX:KEYWORDS") == VALUES["keywords"] and _id3(m, "TXXX:NOTES") == "take 3"
        assert str(m.tags.getall("COMM")[0].text[0]) == VALUES["description"]
        assert _id3(m, "TPE1") == "Someone Else"
    else:
        assert _vorbis(m, "TITLE") == "Bottle Smash" and _vorbis(m, "CATID") == "GLASBrk"
        assert _vorbis(m, "CATEGORYFULL") == "GLASS-BREAK" and _vorbis(m, "DESCRIPTION") == VALUES["description"]
        assert _vorbis(m, "KEYWORDS") == VALUES["keywords"] and _vorbis(m, "COMMENT") == "take 3"
        assert _vorbis(m, "ARTIST") == "Someone Else"
    assert np.array_equal(sf.read(path, dtype="float32")[0], decoded)
    if region is not None:
        with open(path, "rb") as f:
            new_region = audio_region(f, path.stat().st_size, kind)
            assert new_region[1] == region[1] and region_hash(f, *new_region) == region_before

    assert journal.undo(journal.get(change))[0]["status"] == "restored"
    assert file_hash(path) == original


def test_id3v23_tag_stays_v23(tmp_path):
    path = audiogen.write_audio(tmp_path / "a.mp3", kind="sine", duration=0.5)
    m = mutagen.File(path)
    m.add_tags()
    from mutagen.id3 import TIT2

    m.tags.add(TIT2(encoding=1, text=["old"]))
    m.save(v2_version=3)
    write_files([plan_file(path, {"fx_name": "new", "keywords": "k"})], Journal(tmp_path / "j"))
    m = mutagen.File(path)
    assert m.tags.version[:2] == (2, 3)
    assert str(m.tags.getall("TIT2")[0]) == "new"


def test_undo_refuses_a_file_changed_by_another_tool(tmp_path):
    path = audiogen.write_audio(tmp_path / "a.flac", kind="sine", duration=0.5)
    journal = Journal(tmp_path / "j")
    change, _ = write_files([plan_file(path, {"fx_name": "ours"})], journal)
    m = mutagen.File(path)
    m.tags["TITLE"] = ["theirs"]
    m.save()
    edited = file_hash(path)
    rows = journal.undo(journal.get(change))
    assert rows[0]["status"] == "failed" and "changed since" in rows[0]["reason"]
    assert file_hash(path) == edited
    assert not journal.get(change).undone

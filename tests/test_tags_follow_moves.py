"""A moved file, and a byte-identical copy, keep the tags and the user's decisions of the file
they were copied from (the build gives them a new file row with the same chunks)."""

from __future__ import annotations

import shutil

import audiogen
from indexer import pipeline
from indexer.catalog import Catalog
from indexer.catalog.rows import TagRow


def _open(settings):
    return Catalog.open(settings.catalog_url, create=False)


def test_tags_and_decisions_follow_a_move_and_a_copy(settings, tmp_path):
    lib = tmp_path / "lib"
    door = audiogen.write_audio(lib / "door.wav", kind="noise", duration=1.0, seed=3)
    audiogen.write_audio(lib / "other.wav", kind="sine", duration=1.0)
    pipeline.build(settings, [str(lib)], workers=1, progress=False)
    cat = _open(settings)
    try:
        fid = cat.file_by_path(door).id
        other = cat.file_by_path(lib / "other.wav").id
        cat.replace_tag_set("ucs", [TagRow(fid, "DOORWood", "DOORWood", 0.31), TagRow(other, "TONE", None, 0.2)],
                            source="zero-shot", model="m")
        cat.record_decision(fid, "door", accept=True)
        cat.record_decision(fid, "metal", accept=False)
    finally:
        cat.close()

    (lib / "doors").mkdir()
    moved = lib / "doors" / "door_slam.wav"
    shutil.move(door, moved)
    shutil.copyfile(moved, lib / "door_copy.wav")
    rep = pipeline.build(settings, [str(lib)], workers=1, progress=False)
    assert rep.moved + rep.duplicates == 2 and rep.new == 0

    cat = _open(settings)
    try:
        new_ids = {cat.file_by_path(moved).id, cat.file_by_path(lib / "door_copy.wav").id}
        assert fid not in new_ids
        for nid in new_ids:
            assert cat.tags_for([nid])[nid] == ["door", "DOORWood"]  # "metal" stays rejected
            assert cat.user_decisions("door")[nid] is True
            assert cat.user_decisions("metal")[nid] is False
        assert cat.tags_for([other])[other] == ["TONE"]  # nobody else's tags moved
    finally:
        cat.close()

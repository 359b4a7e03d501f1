"""A metadata edit by another tool keeps a file's vectors (issue 15): bext rewritten in place, an
iXML chunk added by raw chunk editing, FLAC tags changed by mutagen; the rebuild calls no model,
updates metadata and the keyword index, and keeps the same chunks and vectors."""

from __future__ import annotations

import shutil
import struct

import mutagen
import numpy as np
import pytest
from conftest import FIXTURES_BWF

import audiogen
from indexer import builder, clap, pipeline
from indexer.catalog import Catalog


def _snapshot(settings, paths):
    cat = Catalog.open(settings.catalog_url, create=False)
    try:
        out = {}
        for key, p in paths.items():
            row = cat.file_by_path(p)
            chunks, vecs = cat.chunks_for(row.id)
            out[key] = (row.id, [c.id for c in chunks], vecs, cat.metadata_for([row.id])[row.id])
        hits = {fid for fid, _ in cat.keyword_search("quokka")}
        return out, hits
    finally:
        cat.close()


def _forbid_model_and_decoder(monkeypatch):
    monkeypatch.setattr(clap.ClapEncoder, "load", classmethod(lambda cls, *a, **k: pytest.fail("model loaded")))
    monkeypatch.setattr(builder, "DecodePool", lambda *a, **k: pytest.fail("decoder started"))


def test_edits_by_other_tools_update_metadata_without_the_model(settings, tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    bwf = lib / "metacorder.wav"
    shutil.copyfile(FIXTURES_BWF / "metacorder_Sr001-2C-01_01.WAV", bwf)
    plain = audiogen.write_audio(lib / "plain.wav", kind="sweep", duration=1.0)
    flac = audiogen.write_audio(lib / "tones.flac", kind="sine", duration=1.0)
    paths = {"bwf": bwf, "plain": plain, "flac": flac}
    rep = pipeline.build(settings, [str(lib)], workers=1, progress=False)
    assert rep.new == 3
    before, hits = _snapshot(settings, paths)
    assert not hits

    raw = bytearray(bwf.read_bytes())  # bext Description rewritten in place (as bwfmetaedit does)
    at = raw.index(b"bext") + 8
    raw[at : at + 256] = b"quokka footsteps on gravel".ljust(256, b"\x00")
    bwf.write_bytes(bytes(raw))
    xml = b'<?xml version="1.0"?><BWFXML><USER><KEYWORDS>quokka, gravel</KEYWORDS></USER></BWFXML>'
    with open(plain, "r+b") as f:  # an iXML chunk appended by hand, RIFF size fixed
        f.seek(0, 2)
        f.write(b"iXML" + struct.pack("<I", len(xml)) + xml + (b"\x00" if len(xml) & 1 else b""))
        size = f.tell()
        f.seek(4)
        f.write(struct.pack("<I", size - 8))
    m = mutagen.File(flac)
    m["DESCRIPTION"] = ["quokka call"]
    m.save()

    _forbid_model_and_decoder(monkeypatch)
    rep = pipeline.build(settings, [str(lib)], workers=1, progress=False)
    assert (rep.retagged, rep.new, rep.changed) == (3, 0, 0)
    after, hits = _snapshot(settings, paths)
    for key in paths:
        assert after[key][:2] == before[key][:2], key  # same file row, same chunk ids
        assert np.array_equal(after[key][2], before[key][2])
    assert after["bwf"][3]["bext.description"] == "quokka footsteps on gravel"
    assert after["plain"][3]["ixml.user.keywords"] == "quokka, gravel"
    assert after["flac"][3]["tag.description"] == "quokka call"
    assert hits == {after[k][0] for k in paths}


def test_changed_audio_is_still_reembedded(settings, tmp_path):
    lib = tmp_path / "lib"
    p = audiogen.write_audio(lib / "a.wav", kind="sine", duration=1.0)
    pipeline.build(settings, [str(lib)], workers=1, progress=False)
    audiogen.write_audio(p, kind="noise", duration=1.0)
    rep = pipeline.build(settings, [str(lib)], workers=1, progress=False)
    assert (rep.changed, rep.retagged) == (1, 0)


def test_the_build_summary_names_retagged_files(settings, tmp_path):
    from click.testing import CliRunner

    from indexer.cli import main

    lib = tmp_path / "lib"
    flac = audiogen.write_audio(lib / "tones.flac", kind="sine", duration=1.0)
    args = ["build", str(lib), "--index", str(settings.index_dir), "--model", settings.model, "-q"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "retagged" not in first.output
    m = mutagen.File(flac)
    m["DESCRIPTION"] = ["quokka call"]
    m.save()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "0 changed, 1 retagged (metadata only, vectors kept)" in again.output


def _forget_audio_hashes(settings):
    """The catalog as one made before files.audio_hash existed."""
    import sqlalchemy as sa

    engine = sa.create_engine(settings.catalog_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE files SET audio_hash = NULL")
    engine.dispose()


def _audio_hashes(settings):
    cat = Catalog.open(settings.catalog_url, create=False)
    try:
        return cat.files_without_audio_hash()
    finally:
        cat.close()


def test_an_older_catalog_learns_audio_hashes_and_then_keeps_vectors_on_a_tag_edit(settings, tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    flac = audiogen.write_audio(lib / "tones.flac", kind="sine", duration=1.0)
    wav = audiogen.write_audio(lib / "sweep.wav", kind="sweep", duration=1.0)
    pipeline.build(settings, [str(lib)], workers=1, progress=False)
    _forget_audio_hashes(settings)
    assert len(_audio_hashes(settings)) == 2

    # The next build (nothing changed) records them from the bytes that were embedded...
    rep = pipeline.build(settings, [str(lib)], workers=1, progress=False)
    assert (rep.unchanged, rep.changed, rep.new) == (2, 0, 0)
    assert _audio_hashes(settings) == []

    # ...so a tag edit afterwards is a retag: no model, no decoder.
    m = mutagen.File(flac)
    m["DESCRIPTION"] = ["quokka call"]
    m.save()
    _forbid_model_and_decoder(monkeypatch)
    rep = pipeline.build(settings, [str(lib)], workers=1, progress=False)
    assert (rep.retagged, rep.changed, rep.unchanged) == (1, 0, 1)
    assert wav.exists()


def test_no_audio_hash_is_learnt_from_bytes_that_changed_since_they_were_embedded(settings, tmp_path):
    import os

    lib = tmp_path / "lib"
    p = audiogen.write_audio(lib / "a.wav", kind="sine", duration=1.0)
    pipeline.build(settings, [str(lib)], workers=1, progress=False)
    _forget_audio_hashes(settings)
    # New samples in place, same size and mtime (a tool that keeps timestamps): the scan takes
    # the file for unchanged, and the backfill must not record the new audio as the embedded one.
    st = os.stat(p)
    raw = bytearray(p.read_bytes())
    raw[-400:] = bytes(400)
    p.write_bytes(bytes(raw))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    rep = pipeline.build(settings, [str(lib)], workers=1, progress=False)
    assert rep.unchanged == 1
    assert [path for _, path, _ in _audio_hashes(settings)] == [str(p)]

"""write-meta / rename-ucs / undo from the command line (issue 15): preview changes nothing,
--apply writes, --json for scripts, UCS names safe and de-duplicated, undo byte-identical."""

from __future__ import annotations

import json
import shutil

import click
import pytest
from click.testing import CliRunner
from conftest import FIXTURES_BWF

import audiogen
from indexer.metadata import read_metadata
from indexer.writeback.atomic import file_hash
from indexer.writeback.cli import register
from indexer.writeback.rename import plan_renames, safe_block


@pytest.fixture
def cli():
    try:
        from indexer.cli import main as group  # registered there once the CLI refactor landed
        if "write-meta" not in group.commands:
            raise ImportError
    except ImportError:
        group = click.Group()
        register(group)
    runner = CliRunner()
    return lambda *args: runner.invoke(group, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def lib(tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    shutil.copyfile(FIXTURES_BWF / "nuendo 5.1.wav", root / "take 1.wav")
    audiogen.write_audio(root / "glass.flac", kind="noise", duration=0.5)
    audiogen.write_audio(root / "hit.mp3", kind="clicks", duration=0.5)
    return root


def test_preview_changes_nothing_apply_writes_undo_restores(cli, lib):
    hashes = {p: file_hash(p) for p in lib.iterdir()}
    r = cli("write-meta", lib, "--set", "cat_id=GLASBrk", "--set", "keywords=glass, smash", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["applied"] is False and out["change"] is None
    assert {(row["field"], row["new"]) for row in out["rows"]} >= {("cat_id", "GLASBrk"), ("category", "GLASS")}
    assert len({row["path"] for row in out["rows"]}) == 3
    assert {p: file_hash(p) for p in lib.iterdir()} == hashes  # the preview wrote nothing

    r = cli("write-meta", lib, "--set", "cat_id=GLASBrk", "--set", "keywords=glass, smash", "--apply", "--json")
    out = json.loads(r.stdout)
    assert out["change"] and {row["status"] for row in out["rows"]} == {"written"}
    assert read_metadata(lib / "take 1.wav")["ixml.user.catid"] == "GLASBrk"
    assert read_metadata(lib / "glass.flac")["tag.keywords"] == "glass, smash"
    assert read_metadata(lib / "hit.mp3")["tag.catid"] == "GLASBrk"

    r = cli("undo", "--list", "--json")
    assert [c["change"] for c in json.loads(r.stdout)] == [out["change"]]
    r = cli("undo", out["change"])
    assert r.exit_code == 0, r.output
    assert {p: file_hash(p) for p in lib.iterdir()} == hashes
    r = cli("undo")
    assert r.exit_code == 1 and "nothing to undo" in r.output


def test_csv_source_and_fields_filter(cli, lib, tmp_path):
    csv_path = tmp_path / "edits.csv"
    csv_path.write_text("path,field,value\nlib/glass.flac,description,Bottle smash\nlib/glass.flac,notes,skip me\n")
    r = cli("write-meta", "--from", f"csv:{csv_path}", "--fields", "description", "--apply", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["rows"]
    assert [(row["field"], row["new"]) for row in rows] == [("description", "Bottle smash")]
    meta = read_metadata(lib / "glass.flac")
    assert meta["tag.description"] == "Bottle smash" and "tag.comment" not in meta


def test_bad_input_is_one_line_exit_1(cli, lib):
    r = cli("write-meta", lib, "--set", "cat_id=NOTaCAT")
    assert r.exit_code == 1 and "not a UCS CatID" in r.output
    r = cli("write-meta", lib)
    assert r.exit_code == 1 and "--from" in r.output


def test_rename_ucs_from_file_metadata_with_sidecars_and_undo(cli, lib):
    (lib / "take 1.wav.reapeaks").write_bytes(b"peaks")
    (lib / "take 1.txt").write_text("notes")
    cli("write-meta", lib / "take 1.wav", "--set", "cat_id=DOORWood", "--set", "fx_name=Creak: Slow/Old_1", "--apply")
    r = cli("rename-ucs", lib / "take 1.wav", "--from", "meta", "--creator", "JD", "--source", "Barn", "--json")
    row = json.loads(r.stdout)["rows"][0]
    assert row["new_path"].endswith("/DOORWood_Creak Slow Old 1_JD_Barn.wav")
    assert (lib / "take 1.wav").exists()  # preview only
    r = cli("rename-ucs", lib / "take 1.wav", "--from", "meta", "--creator", "JD", "--source", "Barn",
            "--with-sidecars", "--apply", "--json")
    out = json.loads(r.stdout)
    assert out["rows"][0]["status"] == "renamed"
    names = sorted(p.name for p in lib.iterdir())
    assert "DOORWood_Creak Slow Old 1_JD_Barn.wav" in names
    assert "DOORWood_Creak Slow Old 1_JD_Barn.wav.reapeaks" in names and "DOORWood_Creak Slow Old 1_JD_Barn.txt" in names
    assert read_metadata(lib / "DOORWood_Creak Slow Old 1_JD_Barn.wav")["ucs.cat_id"] == "DOORWood"
    r = cli("undo")
    assert r.exit_code == 0, r.output
    assert {"take 1.wav", "take 1.wav.reapeaks", "take 1.txt"} <= {p.name for p in lib.iterdir()}


def test_ucs_names_are_deduplicated_and_safe(tmp_path):
    for n in ("a.wav", "b.wav", "DOORWood_Creak_JD_Barn.wav"):
        audiogen.write_audio(tmp_path / n, duration=0.1)
    plans = plan_renames([(str(tmp_path / "a.wav"), "doorwood", "Creak"), (str(tmp_path / "b.wav"), "DOORWood", "Creak")],
                         creator="JD", source="Barn")
    assert [p.new_path.rsplit("/", 1)[1] for p in plans] == ["DOORWood_Creak 2_JD_Barn.wav", "DOORWood_Creak 3_JD_Barn.wav"]
    assert safe_block('a<b>:"c"/d\\e|f?g*h_i. ') == "a b c d e f g h i"
    bad = plan_renames([(str(tmp_path / "a.wav"), "NOPE", "x")], creator="JD", source="S")[0]
    assert "not in the UCS list" in bad.skipped
    nocreator = plan_renames([(str(tmp_path / "a.wav"), "DOORWood", "x")])[0]
    assert "--creator" in nocreator.skipped


def test_catalog_follows_write_rename_and_undo_without_reembedding(cli, tmp_path, settings):
    from indexer import pipeline
    from indexer.catalog import Catalog

    lib = tmp_path / "lib"
    path = audiogen.write_audio(lib / "door take.wav", kind="sweep", duration=1.5)
    pipeline.build(settings, [str(lib)], workers=1, progress=False)

    def state():
        cat = Catalog.open(settings.catalog_url, create=False)
        try:
            row = cat.file_by_path(path) or cat.file_by_path(lib / "DOORWood_zanzibar creak_JD_Barn.wav")
            chunks, vecs = cat.chunks_for(row.id)
            hits = [fid for fid, _ in cat.keyword_search("zanzibar")]
            return row, [c.id for c in chunks], vecs, cat.metadata_for([row.id])[row.id], row.id in hits
        finally:
            cat.close()

    row0, chunks0, vecs0, meta0, hit0 = state()
    assert not hit0
    r = cli("write-meta", path, "--set", "cat_id=DOORWood", "--set", "description=zanzibar creak", "--apply")
    assert r.exit_code == 0, r.output
    row1, chunks1, vecs1, meta1, hit1 = state()
    assert hit1 and meta1["ixml.user.catid"] == "DOORWood" and meta1["bext.description"] == "zanzibar creak"
    assert (row1.id, chunks1) == (row0.id, chunks0) and (vecs1 == vecs0).all()
    assert row1.content_hash != row0.content_hash and row1.size == path.stat().st_size

    r = cli("rename-ucs", path, "--from", "meta", "--creator", "JD", "--source", "Barn", "--apply")
    assert r.exit_code == 0, r.output
    row2, chunks2, _, meta2, hit2 = state()
    assert row2.rel == "DOORWood_zanzibar creak_JD_Barn.wav" and (row2.id, chunks2) == (row0.id, chunks0)
    assert meta2["ucs.cat_id"] == "DOORWood" and hit2

    assert cli("undo").exit_code == 0 and cli("undo").exit_code == 0
    row3, chunks3, _, meta3, hit3 = state()
    assert row3.rel == "door take.wav" and chunks3 == chunks0 and not hit3
    assert row3.content_hash == row0.content_hash

"""Collections (search.collection, `sfx-search collection`): add, list, show, rename, move,
remove; exports (M3U with offsets, CSV, region WAVs keeping channels and bit depth, never
inside the library); items follow their files through a rebuild after moves and renames."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import audiogen
from conftest import make_library


def build(root, model):
    from indexer import pipeline
    from indexer.config import Settings

    lib = root / "library"
    files = make_library(lib)
    settings = Settings(index_dir=root / "index", model=str(model))
    pipeline.build(settings, [str(lib)], workers=1, progress=False)
    return settings, lib, files


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_clap):
    """One index for the tests that change only collections (each its own names)."""
    return build(tmp_path_factory.mktemp("collections"), tiny_clap)


@pytest.fixture
def own_index(tmp_path, tiny_clap):
    """An index of its own for a test that moves files."""
    return build(tmp_path, tiny_clap)


def cli(settings, *args):
    from search.cli import main

    r = CliRunner().invoke(main, ["collection", *args, "--index", str(settings.index_dir)])
    return r


def show(settings, name):
    r = cli(settings, "show", name, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_add_list_show_rename_move_remove(indexed):
    settings, lib, files = indexed
    r = cli(settings, "add", "door pulls", str(files["sweep"]), f"{files['long']}@12.5", str(files["tone"]))
    assert r.exit_code == 0, r.output
    assert "added 3 items to 'door pulls'" in r.stderr
    assert cli(settings, "add", "rain", str(files["long"])).exit_code == 0
    r = cli(settings, "list", "--json")
    assert json.loads(r.stdout) == [
        {"name": "door pulls", "items": 3, "created_at": json.loads(r.stdout)[0]["created_at"]},
        {"name": "rain", "items": 1, "created_at": json.loads(r.stdout)[1]["created_at"]},
    ]
    rows = show(settings, "door pulls")
    assert [x["path"] for x in rows] == [str(files["sweep"]), str(files["long"]), str(files["tone"])]
    assert [x["status"] for x in rows] == ["ok"] * 3
    assert (rows[0]["start_s"], rows[0]["end_s"]) == (None, None)
    assert (rows[1]["start_s"], rows[1]["end_s"]) == (12.5, 22.5)

    assert cli(settings, "move", "door pulls", "3", "1").exit_code == 0
    assert [x["path"] for x in show(settings, "door pulls")] == [str(files["tone"]), str(files["sweep"]), str(files["long"])]
    assert cli(settings, "rename", "door pulls", "doors").exit_code == 0
    r = cli(settings, "rename", "doors", "rain")
    assert r.exit_code == 1 and "exists already" in r.output
    assert cli(settings, "remove", "doors", "2").exit_code == 0
    assert [x["path"] for x in show(settings, "doors")] == [str(files["tone"]), str(files["long"])]
    assert cli(settings, "remove", "rain").exit_code == 0
    assert [c["name"] for c in json.loads(cli(settings, "list", "--json").stdout)] == ["doors"]
    # Every file is still there: a collection never touches the sounds.
    assert all(p.exists() for p in files.values())


def test_user_errors_are_one_line(indexed, tmp_path):
    settings, lib, files = indexed
    outside = audiogen.write_audio(tmp_path / "outside.wav", audiogen.sine(48000, 1.0), 48000)
    for args, text in (
        (("add", "x", str(outside)), "not an indexed file"),
        (("add", "x", f"{files['tone']}@99"), "outside"),
        (("show", "nope"), "no collection named 'nope'"),
        (("move", "nope", "1", "2"), "no collection"),
        (("export", "nope"), "give one of --m3u"),
    ):
        r = cli(settings, *args)
        assert r.exit_code == 1, (args, r.output)
        assert text in r.output and "Traceback" not in r.output


def test_exports_m3u_csv_and_region_wavs_with_source_format(indexed, tmp_path):
    settings, lib, files = indexed
    assert cli(settings, "add", "pull", f"{files['long']}@12.5", str(files["noise"]), str(files["sweep"]),
               f"{files['clicks']}@1").exit_code == 0
    m3u = tmp_path / "out" / "pull.m3u"
    r = cli(settings, "export", "pull", "--m3u", str(m3u))
    assert r.exit_code == 0, r.output
    lines = m3u.read_text().splitlines()
    assert lines[0] == "#EXTM3U"
    i = lines.index(str(files["long"]))
    assert lines[i - 2] == "#EXTVLCOPT:start-time=12.500" and lines[i - 1] == "#EXTVLCOPT:stop-time=22.500"
    assert lines[lines.index(str(files["noise"])) - 1].startswith("#EXTINF:")

    out_csv = tmp_path / "pull.csv"
    assert cli(settings, "export", "pull", "--csv", str(out_csv)).exit_code == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["path"] for r in rows] == [str(files[k]) for k in ("long", "noise", "sweep", "clicks")]
    assert rows[0]["start_s"] == "12.500" and rows[1]["start_s"] == "" and rows[0]["status"] == "ok"

    wavs = tmp_path / "regions"
    r = cli(settings, "export", "pull", "--wav-dir", str(wavs))
    assert r.exit_code == 0, r.output
    made = sorted(wavs.iterdir())
    assert [p.name for p in made] == ["001 rain_long@12.5s.wav", "002 noise_burst.wav",
                                      "003 DOORWood_Creak Sweep_JD_Gen.wav", "004 clicks_fast@1.0s.wav"]
    # The region: the source's rate, channels and bits, and exactly its samples.
    src, sr = sf.read(files["long"], dtype="int32")
    got, gsr = sf.read(made[0], dtype="int32")
    assert gsr == sr == 16000 and sf.info(made[0]).subtype == sf.info(files["long"]).subtype
    assert np.array_equal(got, src[int(12.5 * sr):int(22.5 * sr)])
    noise = sf.info(made[1])
    assert (noise.subtype, noise.samplerate, noise.channels) == ("PCM_24", 32000, 1)
    assert np.array_equal(sf.read(made[1], dtype="int32")[0], sf.read(files["noise"], dtype="int32")[0])
    assert sf.info(made[2]).channels == 2
    assert sf.info(made[3]).subtype == "PCM_24"  # Ogg Vorbis has no bit depth: 24-bit
    # Never over what is there, never inside the library.
    r = cli(settings, "export", "pull", "--wav-dir", str(wavs))
    assert r.exit_code == 1 and "exists" in r.output
    r = cli(settings, "export", "pull", "--wav-dir", str(lib / "exports"))
    assert r.exit_code == 1 and "inside the library" in r.output
    assert not (lib / "exports").exists()


def test_a_collection_survives_a_rebuild_after_its_files_moved(own_index):
    from indexer import pipeline

    settings, lib, files = own_index
    assert cli(settings, "add", "keep", str(files["sweep"]), f"{files['long']}@3", str(files["tone"]),
               str(files["noise"])).exit_code == 0
    # Move one to another folder, rename another, delete a third, rewrite the fourth in place.
    moved = lib / "sorted" / "doors" / files["sweep"].name
    moved.parent.mkdir(parents=True)
    shutil.move(files["sweep"], moved)
    renamed = files["long"].with_name("RAIN_Tin roof_JD_Gen.wav")
    files["long"].rename(renamed)
    files["tone"].unlink()
    audiogen.write_audio(files["noise"], audiogen.noise(32000, 1.5, seed=9), 32000, subtype="PCM_24")
    pipeline.build(settings, [str(lib)], workers=1, progress=False)

    rows = show(settings, "keep")
    assert [(x["path"], x["status"]) for x in rows] == [
        (str(moved), "moved"), (str(renamed), "moved"), (str(files["tone"]), "missing"), (str(files["noise"]), "ok"),
    ]
    assert rows[1]["start_s"] == 3.0
    # Where they are now is remembered; the export has the new places and leaves the missing one out.
    assert [x["status"] for x in show(settings, "keep")] == ["ok", "ok", "missing", "ok"]
    r = cli(settings, "export", "keep", "--m3u", str(lib.parent / "keep.m3u"))
    assert r.exit_code == 0 and "missing (left out)" in r.stderr
    text = (lib.parent / "keep.m3u").read_text()
    assert str(moved) in text and str(renamed) in text and str(files["tone"]) not in text


def test_the_page_api_adds_reorders_exports_and_matches_the_cli(indexed, tmp_path):
    from starlette.testclient import TestClient

    from search.query import Library
    from search.web.app import create_app

    settings, lib, files = indexed
    with Library.from_settings(settings) as library, \
            TestClient(create_app(library, index_dir=settings.index_dir, allowed_hosts=["testserver"])) as c:
        ids = {k: library.catalog.file_by_path(p).id for k, p in files.items()}
        r = c.post("/api/collections/add", json={"name": "web pull", "items": [
            {"file_id": ids["long"], "start": 13.0, "end": 23.0}, {"file_id": ids["tone"]}]})
        assert r.status_code == 200, r.text
        assert r.json()["added"] == 2
        r = c.post("/api/collections/move", json={"name": "web pull", "position": 2, "to": 1})
        assert [i["path"] for i in r.json()["items"]] == [str(files["tone"]), str(files["long"])]
        assert {"name": "web pull", "items": 2} in c.get("/api/collections").json()["collections"]
        m3u = c.get("/api/collections/export", params={"name": "web pull", "format": "m3u"})
        assert m3u.status_code == 200 and "attachment" in m3u.headers["content-disposition"]
        assert "#EXTVLCOPT:start-time=13.000\n#EXTVLCOPT:stop-time=23.000\n" + str(files["long"]) in m3u.text
        out = tmp_path / "web-wavs"
        r = c.post("/api/collections/export-wav", json={"name": "web pull", "dir": str(out)})
        assert r.status_code == 200 and len(r.json()["files"]) == 2
        assert sf.info(out / "002 rain_long@13.0s.wav").duration == pytest.approx(10.0)
        for path, body, status in (
            ("/api/collections/add", {"name": "x", "items": [{"file_id": 999999}]}, 404),
            ("/api/collections/add", {"name": "x", "items": []}, 400),
            ("/api/collections/add", {"name": "x", "items": [{"file_id": ids["tone"], "start": -2}]}, 400),
            ("/api/collections/move", {"name": "web pull", "position": 1, "to": 9}, 400),
            ("/api/collections/remove", {"name": "nope"}, 400),
        ):
            assert c.post(path, json=body).status_code == status, (path, body)
        assert c.get("/api/collections/export", params={"name": "web pull", "format": "xml"}).status_code == 400
    # The command line sees what the page made.
    assert [x["path"] for x in show(settings, "web pull")] == [str(files["tone"]), str(files["long"])]

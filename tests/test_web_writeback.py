"""The page's write-back API (issue 15): suggestions with scores, decisions, preview before a
confirmed write, forged cross-origin requests refused, writing off beyond loopback, undo."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

import audiogen
from indexer.metadata import read_metadata
from indexer.writeback.atomic import file_hash


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_clap):
    from indexer import pipeline
    from indexer.config import Settings

    root = tmp_path_factory.mktemp("wbweb")
    lib = root / "library"
    files = {
        "door": audiogen.write_audio(lib / "door take.wav", kind="sweep", duration=1.5),
        "glass": audiogen.write_audio(lib / "glass.flac", kind="noise", duration=1.0),
    }
    settings = Settings(index_dir=root / "index", model=str(tiny_clap))
    pipeline.build(settings, [str(lib)], workers=1, progress=False)
    return settings, files


@pytest.fixture(scope="module")
def library(built):
    from indexer.catalog import TagRow
    from search.query import Library

    settings, files = built
    lib = Library.from_settings(settings)
    fid = lib.catalog.file_by_path(files["door"]).id
    lib.catalog.replace_tag_set("ucs", [TagRow(fid, "door wood", "DOORWood", 0.81), TagRow(fid, "creak", None, 0.55)],
                                source="zero-shot", model="m")
    yield lib
    lib.close()


def make_client(library, built, **kw):
    from search.web.app import create_app

    app = create_app(library, index_dir=built[0].index_dir, allowed_hosts=["testserver"], **kw)
    return TestClient(app)


@pytest.fixture(scope="module")
def client(library, built):
    with make_client(library, built) as c:
        yield c


def _token(c) -> str:
    return c.get("/api/writeback/session").json()["token"]


def test_file_values_show_current_metadata_and_scored_suggestions(client, library, built):
    fid = library.catalog.file_by_path(built[1]["door"]).id
    d = client.get(f"/api/writeback/files/{fid}").json()
    assert d["values"]["cat_id"] == "DOORWood" and d["ucs_score"] == pytest.approx(0.81)
    assert [t["label"] for t in d["tags"]][:2] == ["door wood", "creak"]
    assert d["current"]["cat_id"] == ""


def test_preview_then_confirmed_apply_then_undo(client, library, built):
    path = built[1]["door"]
    fid = library.catalog.file_by_path(path).id
    before = file_hash(path)
    headers = {"X-SFX-Token": _token(client), "Origin": "http://testserver"}
    items = [{"file_id": fid, "values": {"cat_id": "DOORWood", "description": "Door creak zanzibar"}}]
    chunks_before = library.catalog.chunks_for(fid)[1]

    def keyword_hits():
        r = client.get("/api/search", params={"q": "zanzibar", "mode": "keyword"})
        return [row["file_id"] for row in r.json()["results"]]

    assert fid not in keyword_hits()
    r = client.post("/api/writeback/apply", json={"items": items, "preview_id": "made-up"}, headers=headers)
    assert r.status_code == 400 and "preview" in r.json()["error"]  # no write without the confirm step
    p = client.post("/api/writeback/preview", json={"items": items}, headers=headers).json()
    assert {(r["field"], r["new"]) for r in p["rows"]} >= {("cat_id", "DOORWood"), ("description", "Door creak zanzibar")}
    assert file_hash(path) == before  # the preview wrote nothing
    r = client.post("/api/writeback/apply", json={"items": items, "preview_id": p["preview_id"]}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["rows"][0]["status"] == "written"
    assert read_metadata(path)["ixml.user.catid"] == "DOORWood"
    # The catalog followed at once: keyword search and the file's facts show the new values,
    # its vectors are the same rows (nothing re-embedded).
    assert fid in keyword_hits()
    assert client.get(f"/api/files/{fid}").json()["metadata"]["ixml.user.catid"] == "DOORWood"
    import numpy as np

    assert np.array_equal(library.catalog.chunks_for(fid)[1], chunks_before)
    again = client.post("/api/writeback/apply", json={"items": items, "preview_id": p["preview_id"]}, headers=headers)
    assert again.status_code == 400  # a preview confirms one write only
    u = client.post("/api/writeback/undo", json={"change": r.json()["change"]}, headers=headers)
    assert u.status_code == 200 and file_hash(path) == before
    assert fid not in keyword_hits()


def test_decision_is_recorded(client, library, built):
    fid = library.catalog.file_by_path(built[1]["door"]).id
    headers = {"X-SFX-Token": _token(client)}
    r = client.post("/api/writeback/decision", json={"file_id": fid, "label": "creak", "accept": False}, headers=headers)
    assert r.status_code == 200
    d = client.get(f"/api/writeback/files/{fid}").json()
    assert {t["label"]: t["decision"] for t in d["tags"]}["creak"] == "rejected"


@pytest.mark.parametrize("forged", [
    {"Origin": "http://evil.example"},
    {"Sec-Fetch-Site": "cross-site"},
    {},  # no token at all: a plain cross-site form or fetch cannot set the header
])
def test_forged_cross_origin_writes_are_refused(client, library, built, forged):
    path = built[1]["glass"]
    fid = library.catalog.file_by_path(path).id
    before = file_hash(path)
    headers = dict(forged)
    if forged:
        headers["X-SFX-Token"] = _token(client)  # even with a stolen token
    items = [{"file_id": fid, "values": {"description": "pwned"}}]
    for url in ("/api/writeback/preview", "/api/writeback/apply", "/api/writeback/decision", "/api/writeback/undo"):
        r = client.post(url, json={"items": items, "preview_id": "x", "file_id": fid, "label": "x"}, headers=headers)
        assert r.status_code == 403, (url, r.text)
    assert file_hash(path) == before


def test_writing_is_off_beyond_loopback_unless_allowed(library, built):
    path = built[1]["glass"]
    fid = library.catalog.file_by_path(path).id
    items = [{"file_id": fid, "values": {"description": "remote"}}]
    with make_client(library, built, loopback=False) as c:
        s = c.get("/api/writeback/session").json()
        assert s["write"] is False and "--allow-write" in s["why"]
        h = {"X-SFX-Token": s["token"]}
        p = c.post("/api/writeback/preview", json={"items": items}, headers=h).json()
        r = c.post("/api/writeback/apply", json={"items": items, "preview_id": p["preview_id"]}, headers=h)
        assert r.status_code == 400 and "writing is off" in r.json()["error"]
    with make_client(library, built, loopback=False, allow_write=True) as c:
        h = {"X-SFX-Token": c.get("/api/writeback/session").json()["token"]}
        p = c.post("/api/writeback/preview", json={"items": items}, headers=h).json()
        r = c.post("/api/writeback/apply", json={"items": items, "preview_id": p["preview_id"]}, headers=h)
        assert r.status_code == 200 and r.json()["rows"][0]["status"] == "written"
    assert read_metadata(path)["tag.description"] == "remote"

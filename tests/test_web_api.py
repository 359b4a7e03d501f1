"""The audition server's JSON API: search, similar, files, audio (Range, transcoding), waveforms,
safety (4xx, never a traceback or a file outside the catalog), and the server.json hand-off."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from starlette.testclient import TestClient

import audiogen
from conftest import make_library


def build_web_library(root: Path, model: Path):
    """A generated library (mixed formats, one file browsers cannot play of each kind) and its index."""
    from indexer import pipeline
    from indexer.config import Settings

    lib = root / "library"
    files = make_library(lib)
    files["aiff"] = audiogen.write_audio(lib / "odd" / "room_tone.aiff", audiogen.noise(48000, 12.0, amp=0.2, seed=3, channels=2), 48000)
    files["multi"] = audiogen.write_audio(lib / "odd" / "hum_6ch.wav", audiogen.sine(48000, 3.0, freq=60, channels=6), 48000, subtype="PCM_24")
    settings = Settings(index_dir=root / "index", model=str(model))
    pipeline.build(settings, [str(lib)], workers=1, progress=False)
    return settings, files


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_clap):
    return build_web_library(tmp_path_factory.mktemp("web"), tiny_clap)


@pytest.fixture(scope="module")
def library(built):
    from search.query import Library

    settings, _ = built
    lib = Library.from_settings(settings)
    yield lib
    lib.close()


@pytest.fixture(scope="module")
def client(library, built):
    from search.web.app import create_app

    opened = []
    app = create_app(library, index_dir=built[0].index_dir, allowed_hosts=["testserver"], opener=opened.append)
    app.state.opened = opened
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def ids(library, built):
    _, files = built
    return {k: library.catalog.file_by_path(p).id for k, p in files.items()}


# ---------------------------------------------------------------------- search and similar


def test_search_get_matches_the_library_and_describes_rows(client, library):
    r = client.get("/api/search", params={"q": "rain on a tin roof", "n": 5})
    assert r.status_code == 200
    rows = r.json()["results"]
    expected = library.search("rain on a tin roof", 5)
    assert [x["path"] for x in rows] == [e.path for e in expected]
    first = rows[0]
    for key in ("rank", "path", "score", "offset_s", "end_s", "duration_s", "file_id", "format", "name", "folder",
                "root", "ext", "playable", "tags", "description"):
        assert key in first
    assert first["name"] == Path(first["path"]).name


def test_search_post_with_filters(client, built):
    body = {"q": "tone", "n": 10, "mode": "semantic", "not": "noise",
            "filters": {"ext": ["flac"], "min_duration": 1, "max_duration": 10, "tag": []}}
    r = client.post("/api/search", json=body)
    assert r.status_code == 200, r.text
    rows = r.json()["results"]
    assert [x["name"] for x in rows] == ["tone_110.flac"]


@pytest.mark.parametrize("params,status,words", [
    ({}, 400, "required"),
    ({"q": "   "}, 400, "required"),
    ({"q": "x" * 2001}, 400, "characters"),
    ({"q": "door", "n": "0"}, 400, "n must"),
    ({"q": "door", "n": "many"}, 400, "integer"),
    ({"q": "door", "mode": "vibes"}, 400, "mode"),
    ({"q": "door", "min_duration": "abc"}, 400, "number"),
    ({"q": "door", "max_duration": "nan"}, 400, "finite"),
])
def test_search_rejects_bad_input_with_a_message(client, params, status, words):
    r = client.get("/api/search", params=params)
    assert r.status_code == status
    assert words in r.json()["error"]


def test_a_filter_that_matches_nothing_is_an_empty_answer_with_a_note(client):
    r = client.get("/api/search", params={"q": "door", "ext": "xyz"})
    assert r.status_code == 200 and r.json()["results"] == []
    assert "no indexed file matches" in r.json()["note"]


def test_absurd_requests_get_4xx_not_tracebacks(client):
    assert client.get("/api/search?q=" + "a" * 10000).status_code == 414
    assert client.post("/api/search", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
    assert client.post("/api/search", json=["q"]).status_code == 400
    assert client.post("/api/search", json={"q": "x", "filters": "all"}).status_code == 400
    assert client.post("/api/search", json={"q": 5}).status_code == 400
    assert client.post("/api/search", content=b"x" * 70000).status_code == 413
    for r in (client.get("/api/nope"), client.delete("/api/search")):
        assert r.status_code in (404, 405) and "Traceback" not in r.text


def test_similar_finds_the_file_itself_first(client, ids):
    r = client.get("/api/similar", params={"file_id": ids["sweep"], "n": 3})
    assert r.status_code == 200
    assert r.json()["results"][0]["file_id"] == ids["sweep"]
    r = client.post("/api/similar", json={"file_id": ids["long"], "start": 14.0, "n": 2})
    assert r.json()["results"][0]["file_id"] == ids["long"]
    assert client.get("/api/similar", params={"file_id": 99999}).status_code == 404
    assert client.get("/api/similar").status_code == 400
    assert client.get("/api/similar", params={"file_id": "1; drop"}).status_code == 400


def test_file_info_and_unknown_ids(client, ids, built):
    r = client.get(f"/api/files/{ids['long']}")
    d = r.json()
    assert r.status_code == 200 and d["path"] == str(built[1]["long"]) and d["duration_s"] == pytest.approx(23.0)
    assert [c["start_s"] for c in d["chunks"]] == [0.0, 10.0, 13.0]
    assert client.get("/api/files/424242").status_code == 404
    assert client.get("/api/files/abc").status_code == 404
    assert client.get("/api/files/-1").status_code == 404
    # Path traversal has nowhere to go: files are ids, static files stay in their folder.
    for raw in ("/api/files/%2e%2e/%2e%2e/etc/passwd", "/static/..%2F..%2F..%2Fetc%2Fpasswd", "/static/../app.py"):
        r = client.get(raw)
        assert r.status_code == 404 and "root:" not in r.text


# ---------------------------------------------------------------------- audio


def test_range_requests_return_the_right_bytes(client, ids, built):
    path = built[1]["tone"]
    data = path.read_bytes()
    url = f"/api/files/{ids['tone']}/audio"
    full = client.get(url)
    assert full.status_code == 200 and full.content == data and full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-type"] == "audio/wav"
    for header, a, b in (("bytes=100-199", 100, 199), ("bytes=1000-", 1000, len(data) - 1),
                         ("bytes=-10", len(data) - 10, len(data) - 1), ("bytes=0-99999999", 0, len(data) - 1)):
        r = client.get(url, headers={"Range": header})
        assert r.status_code == 206, header
        assert r.content == data[a : b + 1]
        assert r.headers["content-range"] == f"bytes {a}-{b}/{len(data)}"
        assert int(r.headers["content-length"]) == b - a + 1


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=5-2", "items=0-1", "bytes=-", "bytes", "0-10", "bytes=1-2-3",
                                    "bytes=" + "9" * 300])
def test_malformed_range_is_400(client, ids, header):
    r = client.get(f"/api/files/{ids['tone']}/audio", headers={"Range": header})
    assert r.status_code == 400 and "error" in r.json()


def test_unsatisfiable_range_is_416(client, ids, built):
    size = built[1]["tone"].stat().st_size
    r = client.get(f"/api/files/{ids['tone']}/audio", headers={"Range": f"bytes={size}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"


def test_unplayable_formats_are_transcoded_to_16_bit_wav(client, ids, built):
    src, sr = sf.read(built[1]["aiff"], dtype="float32")
    r = client.get(f"/api/files/{ids['aiff']}/audio")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert int(r.headers["content-length"]) == len(r.content)
    x, sr2 = sf.read(io.BytesIO(r.content), dtype="float32")
    info = sf.info(io.BytesIO(r.content))
    assert (sr2, info.subtype, x.shape) == (sr, "PCM_16", src.shape)
    assert np.max(np.abs(x - src)) < 1e-4
    # A multichannel 24-bit WAV becomes stereo.
    m = client.get(f"/api/files/{ids['multi']}/audio")
    assert sf.info(io.BytesIO(m.content)).channels == 2


def test_transcoded_ranges_concatenate_to_the_whole(client, ids):
    url = f"/api/files/{ids['aiff']}/audio"
    whole = client.get(url).content
    parts, pos = [], 0
    for size in (11, 33, 5000, 123457, len(whole)):
        r = client.get(url, headers={"Range": f"bytes={pos}-{pos + size - 1}"})
        assert r.status_code == 206
        parts.append(r.content)
        pos += len(r.content)
        if pos >= len(whole):
            break
    assert b"".join(parts) == whole


def test_region_and_download_keep_the_source_resolution(client, ids, built):
    src, sr = sf.read(built[1]["multi"], dtype="int32")
    r = client.get(f"/api/files/{ids['multi']}/audio", params={"start": 0.5, "end": 1.5, "download": 1})
    assert r.status_code == 200
    assert "attachment" in r.headers["content-disposition"] and ".wav" in r.headers["content-disposition"]
    info = sf.info(io.BytesIO(r.content))
    assert (info.channels, info.subtype, info.frames) == (6, "PCM_24", sr)
    x, _ = sf.read(io.BytesIO(r.content), dtype="int32")
    assert np.array_equal(x, src[sr // 2 : sr // 2 + sr])  # bit-exact 24-bit copy of the region
    region = client.get(f"/api/files/{ids['tone']}/audio", params={"start": 0.5, "end": 1.0})
    assert sf.info(io.BytesIO(region.content)).frames == 22050
    assert client.get(f"/api/files/{ids['tone']}/audio", params={"start": 2, "end": 1}).status_code == 400
    assert client.get(f"/api/files/{ids['tone']}/audio", params={"start": "x"}).status_code == 400
    assert client.get("/api/files/99999/audio").status_code == 404


# ---------------------------------------------------------------------- waveform, tags, reveal, page


def test_waveform_png_is_cached_in_the_index(client, ids, built, monkeypatch):
    from search.web import waveform

    r = client.get(f"/api/files/{ids['long']}/waveform", params={"w": 600, "h": 80, "start": 13, "end": 23})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", r.content[16:24]) == (600, 80)
    cache = built[0].index_dir / "waveforms"
    assert any(p.suffix == ".npy" for p in cache.iterdir())
    monkeypatch.setattr(waveform, "compute_peaks", lambda *a, **k: pytest.fail("peaks recomputed"))
    again = client.get(f"/api/files/{ids['long']}/waveform", params={"w": 300, "h": 40})
    assert again.status_code == 200
    assert client.get(f"/api/files/{ids['long']}/waveform", params={"w": 99999}).status_code == 400


def test_png_writer_round_trips():
    import zlib

    from search.web.waveform import png_bytes

    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    data = png_bytes(img)
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    raw = zlib.decompress(idat)
    assert raw == b"\0" + img[0].tobytes() + b"\0" + img[1].tobytes()


def test_tags_404_when_the_index_has_none(client):
    r = client.get("/api/tags")
    assert r.status_code == 404 and "tag" in r.json()["error"]


def test_reveal_runs_only_on_loopback_and_from_the_page(client, ids, library, built):
    from search.web.app import create_app

    r = client.post(f"/api/files/{ids['tone']}/reveal")
    assert r.status_code == 200 and r.json()["path"] == str(built[1]["tone"])
    assert client.app.state.opened == [str(built[1]["tone"])]
    r = client.post(f"/api/files/{ids['tone']}/reveal", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert client.get(f"/api/files/{ids['tone']}/reveal").status_code == 405
    opened = []
    public = create_app(library, index_dir=built[0].index_dir, loopback=False, opener=opened.append)
    r = TestClient(public).post(f"/api/files/{ids['tone']}/reveal")
    assert r.status_code == 403 and r.json()["path"] == str(built[1]["tone"]) and opened == []


def test_loopback_server_refuses_foreign_host_headers(library, built):
    from search.web.app import create_app

    app = create_app(library, index_dir=built[0].index_dir)
    assert TestClient(app, base_url="http://127.0.0.1:8765").get("/api/files/1").status_code == 200
    assert TestClient(app, base_url="http://attacker.example").get("/api/files/1").status_code == 400


def test_page_uses_only_the_json_api(client):
    r = client.get("/")
    assert r.status_code == 200 and "<audio" in r.text
    config = r.text.split('<script id="config" type="application/json">')[1].split("</script>")[0]
    assert "roots" in json.loads(config)
    js = client.get("/static/app.js").text
    import re

    urls = re.findall(r"`(/[a-z][^`$?]*)", js) + re.findall(r'"(/[a-z][^"?]*)"', js)
    assert urls and all(u.startswith("/api/") for u in urls), urls


# ---------------------------------------------------------------------- the real server and the CLI hand-off


def test_cli_hands_queries_to_a_running_server(library, built, monkeypatch):
    from indexer.config import UserError
    from search.filters import Filters
    from search.remote import try_remote_search
    from search.web.app import create_app
    from search.web.server import ServerFile, ThreadedServer, bind

    settings = built[0]
    monkeypatch.delenv("SFX_NO_SERVER", raising=False)
    sock = bind("127.0.0.1", 0)
    server_file = ServerFile(settings.index_dir, "127.0.0.1", sock.getsockname()[1])
    app = create_app(library, index_dir=settings.index_dir, server_file=server_file)
    params = dict(text="distant thunder", n=4, mode="hybrid", not_text=None, filters=Filters())
    with ThreadedServer(app, sock):
        info = json.loads((settings.index_dir / "server.json").read_text())
        assert info["port"] == sock.getsockname()[1] and info["host"] == "127.0.0.1"
        remote = try_remote_search(settings, params)
        assert remote is not None
        local = library.search("distant thunder", 4)
        assert [(r.path, r.offset_s) for r in remote] == [(r.path, r.offset_s) for r in local]
        assert [r.score for r in remote] == pytest.approx([r.score for r in local])
        with pytest.raises(UserError, match="no indexed file matches"):
            try_remote_search(settings, {**params, "filters": Filters(ext=("xyz",))})
    assert not (settings.index_dir / "server.json").exists()
    assert try_remote_search(settings, params) is None


def test_a_second_server_on_the_same_index_is_refused(tmp_path):
    import os

    from indexer.config import UserError
    from search.web.server import ServerFile

    other = {"host": "127.0.0.1", "port": 9, "pid": os.getppid(), "index": str(tmp_path)}  # a live process
    (tmp_path / "server.json").write_text(json.dumps(other))
    with pytest.raises(UserError, match="already runs"):
        ServerFile(tmp_path, "127.0.0.1", 8765).check_free()
    ServerFile(tmp_path, "127.0.0.1", 8765).remove()  # not ours: left alone
    assert (tmp_path / "server.json").exists()


def test_serve_help_and_busy_port(built):
    from search.cli import main
    from search.web.server import bind

    runner = CliRunner()
    r = runner.invoke(main, ["serve", "--help"])
    assert r.exit_code == 0 and "sfx-search serve --open" in r.output and "--host" in r.output
    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        r = runner.invoke(main, ["serve", "--index", str(built[0].index_dir), "--model", built[0].model, "--port", str(port)])
        assert r.exit_code == 1 and "try another --port" in r.output
    finally:
        sock.close()


def test_tags_listed_once_the_index_has_some(client, library, ids):
    from indexer.catalog import TagRow

    rows = [TagRow(file_id=ids[k], label="door", cat_id="DOORWood", score=0.9) for k in list(ids)[:2]]
    library.catalog.replace_tag_set("api-test", rows, source="zero-shot", model="m")
    try:
        r = client.get("/api/tags")
        assert r.status_code == 200 and r.json()["tags"] == [{"label": "door", "count": 2}]
    finally:
        library.catalog.delete_tag_set("api-test")

"""Relevance feedback (search.feedback): Rocchio over stored vectors, checked against the same
formula computed by brute force in numpy over every chunk of the catalog; marks move liked
neighbours up and disliked ones down; outside files are embedded on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import audiogen
from conftest import make_library


def build_feedback_library(root: Path, model: Path):
    """make_library's six sounds plus near copies of two of them (neighbours to find)."""
    from indexer import pipeline
    from indexer.config import Settings

    lib = root / "library"
    files = make_library(lib)
    files["tone2"] = audiogen.write_audio(lib / "tones" / "tone_450.wav", audiogen.sine(44100, 2.0, freq=450), 44100)
    files["noise2"] = audiogen.write_audio(lib / "noise" / "noise_burst_2.wav", audiogen.noise(32000, 1.6, seed=2), 32000)
    files["clicks2"] = audiogen.write_audio(lib / "clicks" / "clicks_slow.wav", audiogen.clicks(48000, 4.0, every_s=0.25), 48000)
    settings = Settings(index_dir=root / "index", model=str(model))
    pipeline.build(settings, [str(lib)], workers=1, progress=False)
    return settings, files


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_clap):
    return build_feedback_library(tmp_path_factory.mktemp("feedback"), tiny_clap)


@pytest.fixture(scope="module")
def lib(built):
    from search.query import Library

    with Library.from_settings(built[0]) as library:
        yield library


# ---------------------------------------------------------------------- brute force


def catalog_chunks(catalog):
    """(chunk ids, file ids, vectors) of every chunk, straight from the catalog."""
    parts = list(catalog.iter_chunk_files())
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]).astype(np.float64))


def window(catalog, path, at=None):
    """A file's example vector by hand: its window at `at`, else its normalised mean window."""
    row = catalog.file_by_path(path)
    chunks, vecs = catalog.chunks_for(row.id)
    vecs = np.asarray(vecs, np.float64)
    if at is None:
        v = vecs.mean(axis=0)
        return v / np.linalg.norm(v)
    i = max(i for i, c in enumerate(chunks) if c.start_s <= at + 1e-6)
    return vecs[i]


def brute_force_order(catalog, q):
    """Files by their best chunk's dot product with q (ties to the smaller id), with scores."""
    _cids, fids, vecs = catalog_chunks(catalog)
    scores = vecs @ q
    best: dict[int, float] = {}
    for f, s in zip(fids.tolist(), scores.tolist()):
        best[f] = max(best.get(f, -np.inf), s)
    order = sorted(best, key=lambda f: (-best[f], f))
    files = catalog.files_by_ids(order)
    return [files[f].path for f in order], [best[f] for f in order]


def formula(text_vec, liked, disliked, alpha=1.0, beta=0.75, gamma=0.25):
    q = np.zeros_like(liked[0] if liked else text_vec, dtype=np.float64)
    if text_vec is not None:
        q = q + alpha * np.asarray(text_vec, np.float64)
    if liked:
        q = q + beta * np.mean(liked, axis=0)
    if disliked:
        q = q - gamma * np.mean(disliked, axis=0)
    return q / np.linalg.norm(q)


# ---------------------------------------------------------------------- tests


def test_weights_are_the_documented_ones():
    from search import feedback

    doc = (Path(__file__).resolve().parent.parent / "docs" / "feedback.md").read_text()
    for name in ("ALPHA", "BETA", "GAMMA"):
        assert f"{name} = {getattr(feedback, name)}" in doc


def test_parse_example_reads_moments_and_keeps_paths_with_at(tmp_path):
    from indexer.config import UserError
    from search.feedback import Example, parse_example

    assert parse_example("a.wav") == Example(path="a.wav")
    assert parse_example("dir/b.wav@12.5") == Example(path="dir/b.wav", start_s=12.5)
    odd = tmp_path / "take@2.wav"
    odd.write_bytes(b"x")
    assert parse_example(str(odd)) == Example(path=str(odd))
    with pytest.raises(UserError, match="seconds"):
        parse_example("c.wav@soon")
    with pytest.raises(UserError, match="0 seconds"):
        parse_example("c.wav@-3")


def test_refine_equals_brute_force_formula_over_the_catalog(lib, built):
    from search.feedback import parse_example, refine

    _, files = built
    like = [parse_example(str(files["clicks"])), parse_example(f"{files['long']}@12.5")]
    unlike = [parse_example(str(files["tone"]))]
    got = refine(lib, "rain on a tin roof", n=len(files), like=like, unlike=unlike)

    t = lib.text_vectors(["rain on a tin roof"])[0]
    liked = [window(lib.catalog, files["clicks"]), window(lib.catalog, files["long"], 12.5)]
    disliked = [window(lib.catalog, files["tone"])]
    paths, scores = brute_force_order(lib.catalog, formula(t, liked, disliked))
    assert [r.path for r in got] == paths
    assert np.allclose([r.score for r in got], scores, atol=1e-4)
    # 12.5 s names the window starting at 10 s (windows 0, 10 and the end-aligned 13 s), not the file.
    chunks, vecs = lib.catalog.chunks_for(lib.catalog.file_by_path(files["long"]).id)
    assert [c.start_s for c in chunks] == [0.0, 10.0, 13.0]
    assert np.allclose(liked[1], vecs[1]) and not np.allclose(liked[1], window(lib.catalog, files["long"]))


def test_examples_without_text_equal_brute_force(lib, built):
    from search.feedback import Example, refine

    _, files = built
    noise_id = lib.catalog.file_by_path(files["noise"]).id
    got = refine(lib, None, n=len(files), like=[Example(file_id=noise_id), Example(path=str(files["sweep"]))],
                 unlike=[Example(path=str(files["low"]))])
    liked = [window(lib.catalog, files["noise"]), window(lib.catalog, files["sweep"])]
    paths, _ = brute_force_order(lib.catalog, formula(None, liked, [window(lib.catalog, files["low"])]))
    assert [r.path for r in got] == paths


def test_marks_move_liked_neighbours_up_and_disliked_down(lib, built):
    from search.feedback import parse_example, refine

    _, files = built
    n = len(files)
    before = [r.path for r in refine(lib, "a bell", n=n)]
    # The near copies are each other's neighbours in sound; like one, dislike another.
    liked, neighbour = str(files["noise"]), str(files["noise2"])
    disliked, its_neighbour = str(files["clicks"]), str(files["clicks2"])
    after = [r.path for r in refine(lib, "a bell", n=n, like=[parse_example(liked)], unlike=[parse_example(disliked)])]
    assert after[0] == liked
    assert after.index(neighbour) < before.index(neighbour) or after.index(neighbour) == 1
    assert after.index(disliked) > before.index(disliked) or after.index(disliked) == n - 1
    assert after.index(its_neighbour) >= before.index(its_neighbour)


def test_outside_file_is_embedded_on_the_fly(lib, built, tmp_path):
    from search.feedback import parse_example, refine

    _, files = built
    outside = audiogen.write_audio(tmp_path / "mine.wav", audiogen.clicks(48000, 4.0, every_s=0.1), 48000)
    got = refine(lib, None, n=3, like=[parse_example(str(outside))])
    # Same samples as the library's OGG clicks (decoded through another codec): that file comes first.
    assert got[0].path == str(files["clicks"])


def test_bad_feedback_is_one_line_user_error(lib, built, tmp_path):
    from indexer.config import UserError
    from search.feedback import parse_example, refine

    _, files = built
    with pytest.raises(UserError, match="liked example"):
        refine(lib, None, unlike=[parse_example(str(files["tone"]))])
    with pytest.raises(UserError, match="neither in the index nor a readable file"):
        refine(lib, "rain", like=[parse_example(str(tmp_path / "missing.wav"))])


# ---------------------------------------------------------------------- JSON API


@pytest.fixture(scope="module")
def client(lib, built):
    from starlette.testclient import TestClient

    from search.web.app import create_app

    with TestClient(create_app(lib, index_dir=built[0].index_dir, allowed_hosts=["testserver"])) as c:
        yield c


def test_api_refine_equals_the_library(client, lib, built):
    from search.feedback import Example, refine

    _, files = built
    ids = {k: lib.catalog.file_by_path(p).id for k, p in files.items()}
    body = {"q": "rain on a tin roof", "n": 5, "like": [{"file_id": ids["clicks"]}, {"file_id": ids["long"], "start": 12.5}],
            "unlike": [{"file_id": ids["tone"]}]}
    r = client.post("/api/refine", json=body)
    assert r.status_code == 200, r.text
    rows = r.json()["results"]
    want = refine(lib, "rain on a tin roof", 5, like=[Example(file_id=ids["clicks"]), Example(file_id=ids["long"], start_s=12.5)],
                  unlike=[Example(file_id=ids["tone"])])
    assert [(x["path"], x["score"], x["offset_s"]) for x in rows] == [(w.path, w.score, w.offset_s) for w in want]
    assert rows[0]["name"] == Path(rows[0]["path"]).name
    # Filters apply as in any search.
    r = client.post("/api/refine", json={**body, "n": 20, "filters": {"ext": ["wav"]}})
    assert r.status_code == 200 and {Path(x["path"]).suffix for x in r.json()["results"]} == {".wav"}


def test_api_refine_refuses_bad_input_with_4xx(client, lib, built):
    _, files = built
    tone = lib.catalog.file_by_path(files["tone"]).id
    cases = [
        ({"q": "x", "like": [{"file_id": "a"}]}, 400, "file_id"),
        ({"q": "x", "like": [{"file_id": tone, "start": -1}]}, 400, "start"),
        ({"q": "x", "like": "nope"}, 400, "like"),
        ({"q": "x", "like": [{"file_id": 999999}]}, 404, "999999"),
        ({"unlike": [{"file_id": tone}]}, 400, "liked example"),
        ({"q": "x", "n": 0, "like": [{"file_id": tone}]}, 400, "n must"),
    ]
    for body, status, text in cases:
        r = client.post("/api/refine", json=body)
        assert r.status_code == status, (body, r.text)
        assert text in r.json()["error"]
    assert client.get("/api/refine").status_code == 405


# ---------------------------------------------------------------------- command line


def run_cli(settings, *args):
    from click.testing import CliRunner

    from search.cli import main

    return CliRunner().invoke(main, [*args, "--index", str(settings.index_dir), "--model", settings.model])


def test_cli_like_unlike_equals_the_json_api(client, lib, built):
    import json

    settings, files = built
    ids = {k: lib.catalog.file_by_path(p).id for k, p in files.items()}
    r = run_cli(settings, "rain on a tin roof", "-n", "6", "--json", "--like", str(files["clicks"]),
                "--like", f"{files['long']}@12.5", "--unlike", str(files["tone"]))
    assert r.exit_code == 0, r.output
    cli_rows = json.loads(r.stdout)
    api_rows = client.post("/api/refine", json={
        "q": "rain on a tin roof", "n": 6, "like": [{"file_id": ids["clicks"]}, {"file_id": ids["long"], "start": 12.5}],
        "unlike": [{"file_id": ids["tone"]}]}).json()["results"]
    keys = ("rank", "path", "score", "offset_s", "end_s", "duration_s")
    assert [{k: x[k] for k in keys} for x in cli_rows] == [{k: x[k] for k in keys} for x in api_rows]
    assert len(cli_rows) == 6


def test_cli_similar_several_files_equals_brute_force(lib, built):
    import json

    settings, files = built
    r = run_cli(settings, "similar", str(files["noise"]), f"{files['long']}@3", "--unlike", str(files["low"]),
                "-n", str(len(files)), "--json")
    assert r.exit_code == 0, r.output
    liked = [window(lib.catalog, files["noise"]), window(lib.catalog, files["long"], 3.0)]
    paths, scores = brute_force_order(lib.catalog, formula(None, liked, [window(lib.catalog, files["low"])]))
    rows = json.loads(r.stdout)
    assert [x["path"] for x in rows] == paths
    assert np.allclose([x["score"] for x in rows], scores, atol=1e-4)
    # One file keeps the plain "similar" (same order as liking it alone).
    one = json.loads(run_cli(settings, "similar", str(files["sweep"]), "-n", "4", "--json", "--include-self").stdout)
    paths, _ = brute_force_order(lib.catalog, formula(None, [window(lib.catalog, files["sweep"])], []))
    assert [x["path"] for x in one] == paths[:4]
    r = run_cli(settings, "similar", str(files["noise"]), str(files["tone"]), "--start", "1")
    assert r.exit_code == 1 and "FILE@SECONDS" in r.output

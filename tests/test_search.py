"""sfx-search on a real index built with the tiny random checkpoint.

Random weights give meaningless similarities, so these tests check properties that hold for
any weights: the ranking equals a brute-force numpy ranking over the catalog vectors, a clip
finds itself, filters and keywords select what they say, and the text model runs once per text.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from indexer import pipeline
from search import cli as search_cli
from search.filters import Filters
from search.fusion import best_chunks, fuse, result_rows
from search.query import Library


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_clap):
    """One index for the module; the tests only read it (and the text-vector cache)."""
    from conftest import make_library
    from indexer.config import Settings

    base = tmp_path_factory.mktemp("search")
    root = base / "library"
    files = make_library(root)
    shutil.copy(files["tone"], root / "tones" / "tone_440_copy.wav")  # a byte-identical duplicate
    settings = Settings(index_dir=base / "index", model=str(tiny_clap))
    pipeline.build(settings, [str(root)], workers=1, progress=False)
    return settings, root, files


def _brute_force(lib: Library, q: np.ndarray, n: int):
    """Best chunk per file by numpy over every catalog vector."""
    best: dict[int, float] = {}
    for ids, vecs in lib.catalog.iter_vectors():
        scores = vecs @ q
        rows = lib.catalog.chunks_by_ids(ids)
        for cid, s in zip(ids.tolist(), scores.tolist()):
            fid = rows[cid].file_id
            best[fid] = max(best.get(fid, -9.0), s)
    # Byte-identical duplicates tie; BLAS may differ in the last bit, so ties are by file id.
    return sorted(best.items(), key=lambda kv: (-round(kv[1], 5), kv[0]))[:n]


def test_ranking_equals_brute_force_for_random_queries(built):
    settings, _, _ = built
    rng = np.random.default_rng(0)
    with Library.from_settings(settings) as lib:
        for _ in range(10):
            q = rng.standard_normal(lib.dim).astype(np.float32)
            q /= np.linalg.norm(q)
            got = sorted(lib.rank_files(q, 4), key=lambda t: (-round(t[1], 5), t[0]))
            want = _brute_force(lib, q, 4)
            assert [f for f, _, _ in got] == [f for f, _ in want]
            np.testing.assert_allclose([s for _, s, _ in got], [s for _, s in want], atol=1e-5)


def test_ranking_reads_files_a_slice_at_a_time_and_stays_exact(built, monkeypatch):
    settings, _, _ = built
    rng = np.random.default_rng(1)
    with Library.from_settings(settings) as lib:
        monkeypatch.setattr(lib, "_chunk_step", 1)  # slices of 4n chunks, then x4: many slices
        calls = []
        real = lib.catalog.chunk_files
        monkeypatch.setattr(lib.catalog, "chunk_files", lambda ids: calls.append(len(ids)) or real(ids))
        n_files = lib.catalog.indexed_file_count()
        for n in (1, 2, 3, n_files):
            q = rng.standard_normal(lib.dim).astype(np.float32)
            q /= np.linalg.norm(q)
            calls.clear()
            got = sorted(lib.rank_files(q, n), key=lambda t: (-round(t[1], 5), t[0]))
            want = _brute_force(lib, q, n)
            assert [f for f, _, _ in got] == [f for f, _ in want]
            assert 1 <= calls[0] <= 4 * n
            if n == 1:  # the best chunk's file is known after the first slice: nothing more read
                assert calls == [4] and lib.catalog.chunk_count() > 4


def test_best_chunk_of_keyword_only_files_equals_a_per_file_scan(built):
    settings, _, _ = built
    with Library.from_settings(settings) as lib:
        q = np.random.default_rng(2).standard_normal(lib.dim).astype(np.float32)
        fids = sorted({fid for fid, _ in _brute_force(lib, q, 10_000)})  # every file with chunks
        got = best_chunks(lib.catalog, q, fids + [10**9])  # an unknown file is simply absent
        assert set(got) == set(fids)
        for fid in fids:
            chunks, vecs = lib.catalog.chunks_for(fid)
            s = vecs @ q
            i = int(np.argmax(s))
            assert got[fid][1] == chunks[i].id
            assert abs(got[fid][0] - float(s[i])) < 1e-5


def test_text_search_is_exact_and_returns_n_distinct_files(built):
    settings, _, _ = built
    with Library.from_settings(settings) as lib:
        res = lib.search("rain on a tin roof", n=5, mode="semantic")
        q = lib.text_vectors(["rain on a tin roof"])[0]
        want = _brute_force(lib, q, 7)
        # duplicates are grouped, so compare with the brute force minus the duplicate copy
        got_ids = [r.file_id for r in res]
        assert len(set(r.path for r in res)) == 5
        assert got_ids == [f for f, _ in want if f in got_ids][:5]
        assert all(r.offset_s <= r.end_s <= r.duration_s + 1e-6 for r in res)


def test_similar_finds_itself_first_and_groups_duplicates(built):
    settings, root, files = built
    with Library.from_settings(settings) as lib:
        for key in ("low", "noise", "clicks", "sweep", "long"):
            res = lib.similar(files[key], n=3, include_self=True)
            assert res[0].path == str(files[key]), key
            assert res[0].score == pytest.approx(1.0, abs=1e-4)
        res = lib.similar(files["tone"], n=3, include_self=True)
        assert {res[0].path, *res[0].duplicates} == {str(files["tone"]), str(root / "tones" / "tone_440_copy.wav")}
        assert all(r.path != str(root / "tones" / "tone_440_copy.wav") for r in res[1:])
        # a moment of a long file: the chunk at 13 s is the best match, at offset 13 s
        res = lib.similar(files["long"], start_s=14.0, n=1, include_self=True)
        assert res[0].path == str(files["long"]) and res[0].offset_s == pytest.approx(13.0)


def test_similar_in_catalog_does_not_call_the_model(built, monkeypatch):
    settings, _, files = built
    from indexer import clap

    monkeypatch.setattr(clap.ClapEncoder, "load", classmethod(lambda cls, *a, **k: pytest.fail("model loaded")))
    with Library.from_settings(settings) as lib:
        assert lib.similar(files["sweep"], n=2, include_self=True)[0].path == str(files["sweep"])


def test_similar_on_a_file_outside_the_library(built, tmp_path):
    settings, _, files = built
    outside = tmp_path / "outside.wav"
    shutil.copy(files["clicks"].with_suffix(".ogg"), tmp_path / "x.ogg")
    import soundfile as sf

    data, sr = sf.read(files["clicks"])
    sf.write(outside, data, sr, subtype="FLOAT")
    with Library.from_settings(settings) as lib:
        res = lib.similar(outside, n=1)
        assert res[0].path == str(files["clicks"]) and res[0].score > 0.999


def test_filters_select_what_they_say(built):
    settings, root, files = built
    with Library.from_settings(settings) as lib:
        res = lib.search("anything", n=20, filters=Filters(ext=("flac",)), mode="semantic")
        assert [r.path for r in res] == [str(files["low"])]
        res = lib.search("anything", n=20, filters=Filters(under=str(root / "noise")), mode="semantic")
        assert [r.path for r in res] == [str(files["noise"])]
        res = lib.search("anything", n=20, filters=Filters(min_duration=10), mode="semantic")
        assert [r.path for r in res] == [str(files["long"])]
        res = lib.search("anything", n=20, filters=Filters(channels=2, sample_rate=48000), mode="semantic")
        assert [r.path for r in res] == [str(files["sweep"])]
        from indexer.config import UserError

        with pytest.raises(UserError, match="no indexed file matches"):
            lib.search("anything", filters=Filters(ext=("mp3",)))


def test_keywords_and_hybrid_fusion(built):
    settings, _, files = built
    with Library.from_settings(settings) as lib:
        res = lib.search("creak", n=3, mode="keyword")
        assert res[0].path == str(files["sweep"]) and res[0].ucs == "DOORWood Creak Sweep"
        hybrid = lib.search("door creak", n=8, mode="hybrid")
        sem = lib.search("door creak", n=8, mode="semantic")
        assert hybrid[0].path == str(files["sweep"]) or sem[0].path == str(files["sweep"])
        assert str(files["sweep"]) in [r.path for r in hybrid[:2]]
        # SQL and FTS syntax in a query is just text
        assert isinstance(lib.search('"; DROP TABLE files; -- NEAR(a b) *', n=3), list)


def test_hybrid_keyword_half_runs_beside_the_text_tower_and_its_errors_surface(built, monkeypatch):
    import threading

    settings, _, files = built
    with Library.from_settings(settings) as lib:
        seen = {}
        real = lib.catalog.keyword_search

        def spy(text, limit=200):
            seen["thread"] = threading.current_thread().name
            return real(text, limit=limit)

        monkeypatch.setattr(lib.catalog, "keyword_search", spy)
        # the same fusion as the keyword and semantic rankings computed one after the other
        res = lib.search("creak sweep", n=5)
        assert seen["thread"].startswith("sfx-search")  # not the caller's thread
        sem = lib.rank_files(lib.text_vectors(["creak sweep"])[0], 50)
        kw = lib.keyword_files("creak sweep", None, limit=50)
        q = lib.text_vectors(["creak sweep"])[0]
        fused, found = fuse(sem, kw)
        want = result_rows(lib.catalog, fused, 5, found=found, best_for=q)

        def shown(rows):
            return [(r.path, r.found_by, r.sound_score, r.keyword_score, r.chunk_id, r.offset_s) for r in rows]

        assert shown(res) == shown(want)
        # keyword-only rows get their best chunk and its cosine, looked up for the rows shown
        # only: the same as looking them up for every keyword-only candidate (this library is
        # too small for the semantic half to miss a file: fused here without it)
        alone, alone_found = fuse([], kw)
        best = best_chunks(lib.catalog, q, [fid for fid, _s, _c in alone])
        keyword_only = result_rows(lib.catalog, alone, 5, found=alone_found, best_for=q)
        assert keyword_only and all(r.found_by == "keyword" for r in keyword_only)
        for r in keyword_only:
            assert (r.sound_score, r.chunk_id) == (round(best[r.file_id][0], 6), best[r.file_id][1])

        def broken(text, limit=200):
            raise RuntimeError("the catalog went away")

        monkeypatch.setattr(lib.catalog, "keyword_search", broken)
        with pytest.raises(RuntimeError, match="went away"):
            lib.search("creak sweep", n=5)


def test_negative_text_pushes_results_away(built):
    settings, _, _ = built
    with Library.from_settings(settings) as lib:
        q = lib.text_vectors(["metal"])[0]
        neg = lib.text_vectors(["music"])[0]
        res = lib.search("metal", n=8, not_text="music", mode="semantic")
        for r in res:
            chunks, vecs = lib.catalog.chunks_for(r.file_id)
            want = max(float(v @ q - 0.5 * (v @ neg)) for v in vecs)
            assert r.score == pytest.approx(want, abs=1e-5)


def test_text_vectors_are_cached_in_the_catalog(built, monkeypatch):
    settings, _, _ = built
    with Library.from_settings(settings) as lib:
        v1 = lib.search("thunder far away", n=2, mode="semantic")
    from indexer import clap

    monkeypatch.setattr(clap.ClapEncoder, "load", classmethod(lambda cls, *a, **k: pytest.fail("model loaded")))
    with Library.from_settings(settings) as lib:
        v2 = lib.search("thunder far away", n=2, mode="semantic")
    assert [r.path for r in v1] == [r.path for r in v2]


def test_cli_json_paths_and_m3u(built, tmp_path):
    settings, _, files = built
    runner = CliRunner()
    args = ["--index", str(settings.index_dir), "--model", str(settings.model)]
    out = runner.invoke(search_cli.main, ["rain", "-n", "3", "--json", *args])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert len(rows) == 3
    for key in ("path", "score", "offset_s", "end_s", "duration_s", "rank"):
        assert key in rows[0]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    out = runner.invoke(search_cli.main, ["rain", "-n", "2", "--paths", "--m3u", str(tmp_path / "p.m3u"), *args])
    assert out.exit_code == 0 and len(out.stdout.strip().splitlines()) == 2
    m3u = (tmp_path / "p.m3u").read_text()
    assert m3u.startswith("#EXTM3U") and "#EXTVLCOPT:start-time=" in m3u
    out = runner.invoke(search_cli.main, ["similar", str(files["low"]), "-n", "1", "--paths", "--include-self", *args])
    assert out.stdout.strip() == str(files["low"])
    out = runner.invoke(search_cli.main, ["rain", "--ext", "mp3", *args])
    assert out.exit_code == 0 and out.stdout == "" and "no indexed file matches" in out.stderr
    out = runner.invoke(search_cli.main, ["   ", *args])
    assert out.exit_code == 1 and "give a description" in out.output

"""The catalog paths made fast for million-file libraries keep their answers (bench_catalog.py).

File states and filters read through the driver's cursor, a broad filter's chunk ids come from
one pass over the chunks table, the walk builds Paths lazily, and the integrity check runs in
the background of a build or a status, with every write waiting for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from indexer.catalog import Catalog, CatalogError, rel_to_db
from indexer.catalog import tables as T
from indexer.scan import ScannedFile, scan

BAD_CHECK = "*** in database main ***\nPage 7: btreeInitPage() returns error code 11"


@pytest.fixture
def cat(tmp_path):
    c = Catalog.open(f"sqlite:///{tmp_path / 'catalog.sqlite'}", create=True)
    yield c
    c.close()


def _bulk(cat: Catalog, root_id: int, n: int, chunks_per_file: int = 2) -> None:
    files, chunks, tags = [], [], []
    cid = 0
    for i in range(1, n + 1):
        ext = ("wav", "flac", "aif")[i % 3]
        files.append(dict(id=i, root_id=root_id, rel=f"d{i % 7}/f{i}.{ext}", size=i, mtime_ns=10 * i,
                          content_hash=f"{i:032x}", duration_s=float(i % 50), sample_rate=48000, channels=1 + i % 2,
                          subtype="PCM_16", container=ext.upper(), status="ok" if i % 11 else "failed", indexed_at=0.0))
        for j in range(chunks_per_file):
            cid += 1
            chunks.append(dict(id=cid, file_id=i, idx=j, start_s=10.0 * j, end_s=10.0 * j + 10, vector=b"\0" * 8))
        if i % 5 == 0:
            tags.append(dict(file_id=i, label="Door Wood", cat_id="DOORWood", score=0.5, set_name="s",
                             source="zero-shot"))
    with cat.transaction() as conn:
        conn.execute(T["files"].insert(), files)
        conn.execute(T["chunks"].insert(), chunks)
        conn.execute(T["tags"].insert(), tags)


def test_file_states_match_the_rows_including_names_that_are_not_utf8(cat, tmp_path):
    root = cat.add_root(tmp_path)
    odd = os.fsdecode(b"caf\xe9 bad.wav")  # not UTF-8 on disk: stored base64-encoded
    cat.mark_failed(root.id, odd, "cannot decode", size=5, mtime_ns=7)
    cat.mark_failed(root.id, "sub/plain.wav", "cannot decode", size=6, mtime_ns=8, content_hash="ab")
    assert rel_to_db(odd) != odd
    states = cat.file_states(root.id)
    assert set(states) == {odd, "sub/plain.wav"}
    s = states["sub/plain.wav"]
    assert (s.rel, s.size, s.mtime_ns, s.content_hash, s.status) == ("sub/plain.wav", 6, 8, "ab", "failed")
    assert states[odd].rel == odd and states[odd].size == 5
    assert cat.file_states(root.id + 1) == {}
    with cat.transaction():  # inside a write transaction: read on the same connection
        assert set(cat.file_states(root.id)) == {odd, "sub/plain.wav"}


def test_file_stats_agree_with_file_states_with_one_root_and_several(cat, tmp_path):
    """The rerun's light read (a table scan when one root holds everything, the index when
    there are several) gives the same facts as file_states, and file_states_for the rest."""
    odd = os.fsdecode(b"caf\xe9 bad.wav")
    one = cat.add_root(tmp_path / "one")
    for i, rel in enumerate([odd, "a.wav", "sub/b.wav"]):
        cat.mark_failed(one.id, rel, "cannot decode", size=10 + i, mtime_ns=100 + i, content_hash=f"h{i}")

    def agree(root_id):
        stats, states = cat.file_stats(root_id), cat.file_states(root_id)
        assert stats == {(s.rel, s.size, s.mtime_ns) for s in states.values()}
        assert cat.file_states_for(root_id, list(states)) == states
        return {rel for rel, _, _ in stats}

    assert len(agree(one.id)) == 3  # one root: read by a table scan
    two = cat.add_root(tmp_path / "two")
    cat.mark_failed(two.id, "a.wav", "cannot decode", size=1, mtime_ns=2)
    assert len(agree(one.id)) == 3 and agree(two.id) == {"a.wav"}  # two roots: by the index
    assert cat.file_stats(two.id + 1) == set() and cat.file_states_for(one.id, ["nope.wav"]) == {}


def test_broad_filter_chunk_ids_agree_with_the_batched_lookup(cat, tmp_path):
    root = cat.add_root(tmp_path)
    _bulk(cat, root.id, 24_000)
    wav = cat.filter_file_ids(exts=("wav",))
    expect = {i for i in range(1, 24_001) if i % 3 == 0 and i % 11}
    assert wav == expect
    many = cat.chunk_ids_for_files(wav)  # > 20 000 files, most of the catalog: one pass
    assert np.array_equal(many, np.sort(np.concatenate([[2 * i - 1, 2 * i] for i in sorted(wav)])))
    few = sorted(wav)[:5000]  # the IN-list path
    assert np.array_equal(cat.chunk_ids_for_files(few), np.sort(np.concatenate([[2 * i - 1, 2 * i] for i in few])))
    both = cat.filter_file_ids(exts=("wav", "FLAC"), tags=("doorwood",), channels=2, min_duration=10)
    assert both == {i for i in range(1, 24_001) if i % 3 in (0, 1) and i % 11 and i % 5 == 0 and i % 2 == 1
                    and i % 50 >= 10}


def test_scanned_files_build_their_path_lazily_and_compare_by_value(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.wav").write_bytes(b"12345")
    [item] = list(scan(tmp_path))
    st = os.stat(tmp_path / "a" / "x.wav")
    same = ScannedFile(tmp_path / "a" / "x.wav", "a/x.wav", 5, st.st_mtime_ns)
    assert item == same and hash(item) == hash(same)
    assert isinstance(item.path, Path) and item.path == tmp_path / "a" / "x.wav"
    assert item != ScannedFile(tmp_path / "a" / "x.wav", "a/x.wav", 6, st.st_mtime_ns)
    assert "a/x.wav" in repr(item)


def test_a_write_waits_for_the_background_check_and_is_refused_when_it_fails(cat, tmp_path, monkeypatch):
    root = cat.add_root(tmp_path)
    monkeypatch.setattr(Catalog, "integrity_check", lambda self: BAD_CHECK)
    cat.verify_in_background()
    assert cat.file_states(root.id) == {}  # reads go on meanwhile
    with pytest.raises(CatalogError, match="integrity check"):
        cat.mark_failed(root.id, "x.wav", "why", size=1, mtime_ns=1)
    with pytest.raises(CatalogError):
        cat.set_meta("k", "v")  # and every later write too
    assert cat.file_states(root.id) == {} and cat.get_meta("k") is None


def test_background_check_that_passes_lets_writes_through(cat, tmp_path):
    root = cat.add_root(tmp_path)
    cat.verify_in_background()
    cat.mark_failed(root.id, "x.wav", "why", size=1, mtime_ns=1)
    assert set(cat.file_states(root.id)) == {"x.wav"}


def test_noop_build_and_status_still_report_a_failed_check(settings, library, monkeypatch):
    from click.testing import CliRunner

    from indexer.cli import main

    root, _files = library
    idx = ["--index", str(settings.index_dir)]
    r = CliRunner().invoke(main, ["build", str(root), *idx, "--model", settings.model, "-q"])
    assert r.exit_code == 0, r.output
    db = settings.index_dir / "catalog.sqlite"
    before = db.read_bytes()
    monkeypatch.setattr(Catalog, "integrity_check", lambda self: BAD_CHECK)
    for args in (["build", str(root), *idx, "--model", settings.model, "-q"], ["status", *idx]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 1 and "integrity check" in r.output, (args, r.output)
    assert db.read_bytes() == before


def test_keyword_search_with_a_filter_finds_matches_ranked_below_the_first_few_hundred(tmp_path):
    from indexer.catalog.keywords import insert_keyword_rows, keyword_columns
    from indexer.config import Settings
    from indexer.index import Index
    from search.filters import Filters
    from search.query import Library

    settings = Settings(index_dir=tmp_path / "index", model="unused")
    lib_root = tmp_path / "lib"
    lib_root.mkdir()
    cat = Catalog.open(settings.catalog_url, create=True)
    root = cat.add_root(lib_root)
    files, fts = [], []
    for i in range(1, 601):
        folder = "a" if i <= 500 else "b"
        rel = f"{folder}/door {i}.wav"
        files.append(dict(id=i, root_id=root.id, rel=rel, size=i, mtime_ns=i, content_hash=f"{i:032x}",
                          duration_s=1.0, sample_rate=48000, channels=1, subtype="PCM_16", container="WAV",
                          status="ok", indexed_at=0.0))
        # b's sounds say more than "door": they rank below all of a's.
        desc = "wood creak slam heavy old" if folder == "b" else ""
        fts.append((i, keyword_columns(rel, {"bext.description": desc})))
    with cat.transaction() as conn:
        conn.execute(T["files"].insert(), files)
        insert_keyword_rows(conn, cat.dialect, fts)
    cat.close()
    with Library(Index.open(settings), "unused") as lib:
        got = lib.search("door", n=30, mode="keyword", filters=Filters(under=str(lib_root / "b")))
        assert len(got) == 30 and all(Path(r.path).parent == lib_root / "b" for r in got)
        assert len(lib.search("door", n=30, mode="keyword")) == 30
        # Every match fails the filter: the widening stops when the matches run out.
        assert lib.search("creak", n=30, mode="keyword", filters=Filters(under=str(lib_root / "a"))) == []


def test_text_vectors_of_a_reader_wait_for_the_check_without_holding_up_the_query(tmp_path, monkeypatch):
    import threading

    path = tmp_path / "catalog.sqlite"
    Catalog.open(f"sqlite:///{path}", create=True).close()
    reader = Catalog.open(f"sqlite:///{path}", create=False)
    release = threading.Event()
    verdict = ["ok"]

    def slow_check():  # a huge catalog: the check outlasts the query
        release.wait(30)
        return verdict[0]

    monkeypatch.setattr(reader, "integrity_check", slow_check)
    a, b = np.ones((1, 4), np.float32), np.full((1, 4), 2.0, np.float32)
    reader.store_text_vectors("m", ["rain"], a)  # returns while the check runs
    assert reader.cached_text_vectors("m", ["rain"]) == {}
    release.set()
    reader.__dict__["_verifying"][0].join(10)  # the background check has now passed
    reader.store_text_vectors("m", ["wind"], b)  # so both are written
    got = reader.cached_text_vectors("m", ["rain", "wind"])
    assert set(got) == {"rain", "wind"} and (got["wind"] == 2.0).all()
    reader.close()

    # a check still running at close: the process does not wait for it, nothing is written
    reader = Catalog.open(f"sqlite:///{path}", create=False)
    release.clear()
    monkeypatch.setattr(reader, "integrity_check", slow_check)
    reader.store_text_vectors("m", ["thunder"], a)
    reader.close()
    release.set()
    # a check that fails: the pending vectors are dropped with a one-line error, never written
    reader = Catalog.open(f"sqlite:///{path}", create=False)
    verdict[0] = BAD_CHECK
    monkeypatch.setattr(reader, "integrity_check", slow_check)
    with pytest.raises(CatalogError, match="corrupt"):
        reader.store_text_vectors("m", ["hail"], a)
    reader.close()
    check = Catalog.open(f"sqlite:///{path}", create=False)
    assert set(check.cached_text_vectors("m", ["rain", "wind", "thunder", "hail"])) == {"rain", "wind"}
    check.close()


def test_a_query_starts_the_check_early_only_where_its_store_would_wait_for_it(tmp_path, monkeypatch):
    """expect_text_vectors: a small catalog's check starts before the texts are embedded (the
    first store waits for it); a large one's is left to the store, a read-only one never runs."""
    from indexer.catalog import textvectors

    path = tmp_path / "catalog.sqlite"
    Catalog.open(f"sqlite:///{path}", create=True).close()

    def started(read_only: bool = False) -> bool:
        cat = Catalog.open(f"sqlite:///{path}", create=False)
        cat.read_only = read_only or cat.read_only  # as a catalog the user cannot write opens
        calls = []
        monkeypatch.setattr(cat, "verify_in_background", lambda: calls.append(1))
        cat.expect_text_vectors()
        cat.close()
        return bool(calls)

    assert started()
    monkeypatch.setattr(textvectors, "QUICK_CHECK_MAX_BYTES", 0)
    assert not started()
    monkeypatch.undo()
    assert not started(read_only=True)

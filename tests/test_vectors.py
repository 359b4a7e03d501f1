"""VectorIndex: exactness, changes, filters, persistence, and the approximate policy."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from indexer import vectors
from indexer.config import UserError
from indexer.vectors import planning
from indexer.vectors import IndexCorrupt, VectorIndex, meta_path, parse_memory, plan_index

D = 64


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n, d=D, clusters=100, seed=0, draw=None):
    """n draws of a mixture fixed by seed; another `draw` gives fresh points of it."""
    rng = np.random.default_rng(seed)
    centers = unit(rng.standard_normal((clusters, d)))
    rng = rng if draw is None else np.random.default_rng(draw)
    return unit(centers[rng.integers(0, clusters, n)] + 0.15 * rng.standard_normal((n, d)))


def brute(q, ids, x, k):
    s = q @ x.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, 1), ids[order]


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(1)
    x = unit(rng.standard_normal((500, D)))
    ids = rng.choice(10**9, 500, replace=False).astype(np.int64)
    return ids, x


@pytest.fixture(scope="module")
def approx():
    """The default approximate index beyond a lowered exact threshold (20k clustered vectors),
    re-ranked against float16 copies as Index feeds it."""
    x = clustered(20_000)
    ids = np.arange(20_000, dtype=np.int64) * 2 + 1
    rerank = vectors.ArrayRerank(ids, x.astype(np.float16))
    index = VectorIndex(D, exact_threshold=5_000, memory="64M", rerank=rerank).build(ids, x)
    return index, ids, x


def test_exact_matches_numpy_ranking(small):
    ids, x = small
    q = unit(np.random.default_rng(2).standard_normal((7, D)))
    index = VectorIndex(D).build(ids, x)
    assert index.meta["factory"] == "IDMap2,Flat" and index.ntotal == 500
    scores, found = index.search(q, 10)
    want_s, want_i = brute(q, ids, x, 10)
    assert found.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(found, want_i)
    np.testing.assert_allclose(scores, want_s, rtol=1e-5, atol=1e-5)


def test_add_remove_and_padding(small):
    ids, x = small
    index = VectorIndex(D).build(ids[:3], x[:3])
    index.add(ids[3:5], x[3:5])
    assert index.ntotal == 5
    assert index.remove([ids[0], 12345]) == 1
    scores, found = index.search(x[0], 8)
    assert set(found[0, :4]) == set(ids[1:5]) and (found[0, 4:] == -1).all()
    assert np.isneginf(scores[0, 4:]).all()
    np.testing.assert_allclose(index.reconstruct([ids[3]]), x[3:4], rtol=1e-6)


def test_filtered_search_returns_only_allowed_and_k(small, approx):
    ids, x = small
    flat = VectorIndex(D).build(ids, x)
    allowed = ids[::25]  # 20 ids
    for index, q in ((flat, x[:3]), (approx[0], approx[2][:3])):
        allowed = (ids if index is flat else approx[1])[::25][:40]
        _, found = index.search(q, 10, allowed_ids=allowed)
        assert found.shape == (3, 10) and set(found.ravel()) <= set(allowed)
        assert (found >= 0).all()
    # exact within the allowed set for the flat index
    _, found = flat.search(x[:3], 10, allowed_ids=ids[::25])
    np.testing.assert_array_equal(found, brute(x[:3], ids[::25], x[::25], 10)[1])


def test_save_load_round_trip_and_mmap(tmp_path, small):
    ids, x = small
    index = VectorIndex(D).build(ids, x)
    path = tmp_path / "chunks.faiss"
    index.save(path, generation=7)
    meta = json.loads(meta_path(path).read_text())
    assert meta["generation"] == 7 and meta["ntotal"] == 500
    back = VectorIndex.load(path)
    assert back._mapped and back.meta["generation"] == 7
    np.testing.assert_array_equal(back.search(x[:5], 5)[1], index.search(x[:5], 5)[1])
    back.add([-5 + 0], unit(np.ones((1, D))))  # copies out of the mapping before changing
    assert back.ntotal == 501 and back.search(unit(np.ones((1, D))), 1)[1][0, 0] == -5
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_crash_before_rename_leaves_old_index(tmp_path, small, monkeypatch):
    ids, x = small
    path = tmp_path / "chunks.faiss"
    VectorIndex(D).build(ids[:100], x[:100]).save(path, generation=1)

    def crash(src, dst):
        raise OSError("power lost")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        VectorIndex(D).build(ids, x).save(path, generation=2)
    monkeypatch.undo()
    back = VectorIndex.load(path)
    assert back.ntotal == 100 and back.meta["generation"] == 1


def test_corrupt_or_truncated_file_raises(tmp_path, small):
    ids, x = small
    path = tmp_path / "chunks.faiss"
    VectorIndex(D).build(ids, x).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorrupt, match="rebuild"):
        VectorIndex.load(path)
    path.write_bytes(b"\0" * len(data))
    with pytest.raises(IndexCorrupt):
        VectorIndex.load(path)
    meta_path(path).write_text("{not json")
    with pytest.raises(IndexCorrupt):
        VectorIndex.load(path)
    # faiss itself refusing a file whose meta was rewritten to match it
    path.write_bytes(b"garbage!" * 100)
    meta = dict(format_version=1, dim=D, kind="flat", tombstones=[], ntotal=0,
                index_bytes=800, index_digest=vectors.file_digest(path))
    meta_path(path).write_text(json.dumps(meta))
    with pytest.raises(IndexCorrupt, match="faiss"):
        VectorIndex.load(path)


def test_approximate_reaches_recall_on_held_out_queries(approx, tmp_path):
    index, ids, x = approx
    assert index.meta["kind"] == "ivf-pqfs32" and index.meta["factory"].endswith(",PQ32x4fs")
    # The tuner aims above the target, so that fresh queries reach it too (issue 20).
    assert index.meta["recall_at_10"] >= 0.95 + vectors.tuning.RECALL_MARGIN and index.meta["tuned_on"]["held_out"]
    assert index.meta["rerank"] and index.meta["params"]["k_factor"] > 1
    assert index.meta["by_residual"] and vectors.faiss_lib().extract_index_ivf(index.index).by_residual
    q = clustered(300, draw=99)  # fresh draws from the same mixture
    truth_s, truth = brute(q, ids, x, 10)
    scores, found = index.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
    assert recall >= 0.93  # tuned at 0.95 on other queries; a small sampling margin
    # re-ranked scores are the exact inner products (of the float16 copies), best first
    pos = np.searchsorted(ids, found)
    exact = np.einsum("qd,qkd->qk", q, x.astype(np.float16).astype(np.float32)[pos])
    np.testing.assert_allclose(scores, exact, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()
    index.save(tmp_path / "ivf.faiss")
    back = VectorIndex.load(tmp_path / "ivf.faiss", rerank=index.rerank)
    assert back.meta["params"] == index.meta["params"]
    assert vectors.faiss_lib().extract_index_ivf(back.index).by_residual  # kept in the file
    np.testing.assert_array_equal(back.search(q[:20], 10)[1], found[:20])
    # tuned again (e.g. after a move to another machine): a setting it tried, timed, that
    # reaches the target, and the fastest of those it settled on for each re-ranking depth
    back.tune(ids, x, seed=5)
    tried = back.meta["tuning"]
    chosen = next(t for t in tried if {k: t[k] for k in back.meta["params"]} == back.meta["params"])
    assert chosen["recall"] >= 0.95 and all(t["ms"] > 0 for t in tried)
    assert len({t["k_factor"] for t in tried}) >= 2


def test_pq_with_rerank_reaches_target():
    x = clustered(12_000, seed=3)  # PQ wants >= 39 x 256 training points
    ids = np.arange(12_000, dtype=np.int64)
    rerank = vectors.ArrayRerank(ids, x.astype(np.float16))
    index = VectorIndex(D, kind="ivf-pq8", rerank=rerank).build(ids, x)
    assert "PQ" in index.meta["factory"] and index.meta["rerank"]
    assert index.meta["recall_at_10"] >= 0.95
    q = clustered(200, seed=3, draw=98)
    truth = brute(q, ids, x, 10)[1]
    found = index.search(q, 10)[1]
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]) >= 0.9


def test_ivf_add_remove_and_needs_retrain():
    x2 = clustered(20_000)
    ids2 = np.arange(20_000, dtype=np.int64) * 2 + 1
    index = VectorIndex(D, exact_threshold=5_000, memory="64M").build(ids2[:6000], x2[:6000])
    assert not index.needs_retrain() and index.meta["trained_n"] == 6000
    index.add(ids2[6000:12000], x2[6000:12000])
    assert index.ntotal == 12000 and not index.needs_retrain()
    index.add(ids2[12000:12100], x2[12000:12100])
    assert index.needs_retrain() and "twice" in index.retrain_reason()
    assert index.remove(ids2[:7000]) == 7000
    assert index.search(x2[:5], 10)[1].min() >= 2 * 7000 + 1
    index.meta["memory"] = 100_000  # the data outgrew its budget: re-plan with smaller codes
    assert "budget" in index.retrain_reason()
    flat = VectorIndex(D, exact_threshold=100).build(ids2[:100], x2[:100])
    assert not flat.needs_retrain()
    flat.add(ids2[100:101], x2[100:101])
    assert flat.needs_retrain()


def test_hnsw_tombstones(tmp_path):
    x = clustered(3000, seed=5)
    ids = np.arange(3000, dtype=np.int64) + 10
    index = VectorIndex(D, kind="hnsw").build(ids, x)
    assert index.meta["recall_at_10"] >= 0.95
    assert index.remove(ids[:100]) == 100 and index.ntotal == 2900
    found = index.search(x[:100], 10)[1]
    assert not set(found.ravel()) & set(ids[:100]) and (found >= 0).all()
    _, f = index.search(x[:2], 10, allowed_ids=ids[50:120])
    assert set(f.ravel()) <= set(ids[100:120]) and (f >= 0).all()
    with pytest.raises(ValueError):
        index.add(ids[:1], x[:1])
    index.save(tmp_path / "h.faiss")
    back = VectorIndex.load(tmp_path / "h.faiss")
    assert back.ntotal == 2900 and not set(back.search(x[:20], 10)[1].ravel()) & set(ids[:100])
    index.remove(ids[100:800])
    assert index.needs_retrain() and "HNSW" in index.retrain_reason()


def test_memory_parsing_and_plan():
    assert parse_memory("2G") == 2 * 2**30 and parse_memory("512M") == 512 * 2**20
    assert parse_memory("800k") == 800 * 1024 and parse_memory(123) == 123
    with pytest.raises(UserError):
        parse_memory("lots")
    assert plan_index(100_000, 512)["kind"] == "flat"
    one_m = plan_index(1_000_000, 512, "2G")
    assert one_m["kind"] == "ivf-pqfs256" and one_m["factory"] == "IVF2048,PQ256x4fs"
    ten_m = plan_index(10_000_000, 512, "2G")
    assert ten_m["factory"] == "IVF8192_HNSW32,PQ256x4fs" and ten_m["bytes"] <= 2 * 2**30
    assert plan_index(10_000_000, 512, "1200M")["kind"] == "ivf-pqfs128"  # smaller codes to fit
    assert plan_index(1_000_000, 512, "2G", kind="ivf-flat")["factory"] == "IVF2048,Flat"
    assert plan_index(10_000_000, 512, "2G", kind="ivf-pq")["factory"].endswith(",PQ128np")
    with pytest.raises(UserError):
        plan_index(10_000_000, 512, "100M")


def test_exact_copy_streams_and_holds_exactly_what_was_read(tmp_path):
    from indexer.index import ExactVectors

    rng = np.random.default_rng(4)
    ids = np.arange(10, 20, dtype=np.int64)
    v = unit(rng.standard_normal((10, D)))
    ev = ExactVectors(tmp_path, None)
    assert not ev.loaded
    # the catalog counted 12 chunks, then two were removed before they were read
    ev._write_parts(iter([(ids[:6], v[:6]), (ids[6:], v[6:])]), 12, D)
    assert ev.loaded and ev.vecs.dtype == np.float16 and len(ev.ids) == len(ev.vecs) == 10
    np.testing.assert_array_equal(ev.ids, ids)
    np.testing.assert_allclose(ev.vecs, v, atol=1e-3)
    # more chunks than counted (committed meanwhile): the copy stops at the count
    ev._write_parts(iter([(ids, v)]), 7, D)
    np.testing.assert_array_equal(ev.ids, ids[:7])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exact.f16.npy", "exact.ids.npy"]


def test_hnsw_quantizer_gives_way_to_a_flat_one_for_residual_codes(monkeypatch, tmp_path):
    """Past 4096 lists the coarse quantizer is an HNSW graph, which faiss's fast-scan IVF
    searches residual codes through wrongly (recall ~0.01): after the bulk add a flat quantizer
    over the same centroids takes its place, and the index finds what a flat-quantized one does."""
    x = clustered(20_000)
    ids = np.arange(20_000, dtype=np.int64)
    plan = vectors.plan_index

    def graph_plan(*a, **k):  # the plan of a big library, on a small one
        p = plan(*a, **k)
        p["factory"] = p["factory"].replace(f"IVF{p['nlist']},", f"IVF{p['nlist']}_HNSW32,")
        return p

    def built():
        rerank = vectors.ArrayRerank(ids, x.astype(np.float16))
        return VectorIndex(D, exact_threshold=5_000, memory="64M", rerank=rerank).build(ids, x)

    flat = built()
    monkeypatch.setattr(planning, "plan_index", graph_plan)
    graph = built()
    faiss = vectors.faiss_lib()
    assert "_HNSW32," in graph.meta["factory"] and graph.meta["quantizer"] == "flat"
    assert type(faiss.downcast_index(faiss.extract_index_ivf(graph.index).quantizer)).__name__ == "IndexFlatIP"
    assert graph.meta["recall_at_10"] >= 0.95 and abs(graph.meta["recall_at_10"] - flat.meta["recall_at_10"]) < 0.03
    graph.save(tmp_path / "g.faiss")
    back = VectorIndex.load(tmp_path / "g.faiss", rerank=graph.rerank)
    q = clustered(50, draw=7)
    np.testing.assert_array_equal(back.search(q, 10)[1], graph.search(q, 10)[1])
    back.add(np.arange(20_000, 20_100, dtype=np.int64), clustered(100, draw=8))  # later additions go in too
    assert back.ntotal == 20_100


@pytest.mark.parametrize("kind", ["gapped", "dense", "tiny", "empty"])
def test_sorted_ids_finds_what_searchsorted_finds(kind):
    rng = np.random.default_rng(9)
    ids = {"gapped": np.unique(rng.integers(0, 10**7, 5000)),  # not a multiple of the block
           "dense": np.arange(70, 70 + 3000),
           "tiny": np.array([5, 9]),
           "empty": np.zeros(0, np.int64)}[kind].astype(np.int64)
    keys = np.concatenate([ids[rng.integers(0, len(ids), 400)] if len(ids) else [],
                           rng.integers(-5, 10**7 + 5, 400), [-1, 10**8]]).astype(np.int64)
    pos, found = vectors.SortedIds(ids)(keys)
    np.testing.assert_array_equal(found, np.isin(keys, ids))
    np.testing.assert_array_equal(pos[found], np.searchsorted(ids, keys[found]))


def test_array_rerank_reads_rows_of_unsorted_ids_and_maps_memmaps(tmp_path):
    rng = np.random.default_rng(3)
    ids = rng.permutation(np.arange(0, 3000, 3)).astype(np.int64)
    x = unit(rng.standard_normal((len(ids), D))).astype(np.float16)
    np.save(tmp_path / "x.npy", x)
    rr = vectors.ArrayRerank(ids, np.load(tmp_path / "x.npy", mmap_mode="r"))
    want = ids[[7, 3, 500, 2]]
    np.testing.assert_array_equal(rr(want), x[[7, 3, 500, 2]].astype(np.float32))
    with pytest.raises(KeyError):
        rr(np.array([1], np.int64))  # not a multiple of 3: absent
    assert vectors.map_pages(rr.vecs)  # a memmap's pages can be mapped up front
    assert not vectors.map_pages(x)  # an array in RAM has nothing to map
    rr.warm()


def test_single_query_flat_search_runs_on_one_thread_and_restores_the_setting(small, monkeypatch):
    faiss = vectors.faiss_lib()
    ids, x = small
    index = VectorIndex(D, kind="flat").build(ids, x)
    seen = []
    real = index.index.search

    def spy(*a, **k):
        seen.append(faiss.omp_get_max_threads())
        return real(*a, **k)

    monkeypatch.setattr(index.index, "search", spy)
    faiss.omp_set_num_threads(2)
    want = brute(x[:1], ids, x, 5)[1]
    np.testing.assert_array_equal(index.search(x[:1], 5)[1], want)
    index.search(x[:40], 5)  # a batch keeps every thread
    assert seen == [1, 2] and faiss.omp_get_max_threads() == 2


@pytest.mark.parametrize("with_torch", [False, True])
def test_the_float16_cast_gives_numpys_numbers_on_every_path(with_torch, monkeypatch):
    """The re-ranking cast (faiss's decoder without torch, torch's with it) equals numpy's
    element for element, specials included, into a fresh array or a given buffer."""
    from indexer.vectors.arrays import FAST_CAST_MIN, as_float32

    if with_torch:
        pytest.importorskip("torch")
    else:
        monkeypatch.delitem(sys.modules, "torch", raising=False)
    rng = np.random.default_rng(3)
    rows = FAST_CAST_MIN // 512 + 7
    x = rng.standard_normal((rows, 512)).astype(np.float16)
    x[0, :6] = [np.inf, -np.inf, 0.0, -0.0, 6e-8, 65504]  # infinities, signed zeros, subnormal, max
    x[1, 0] = np.nan
    ref = x.astype(np.float32)
    got = as_float32(x)
    assert got.dtype == np.float32 and np.array_equal(got, ref, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(ref))
    buf = np.full((rows + 5, 512), 7.0, np.float32)
    assert as_float32(x, out=buf[:rows]) is not None
    assert np.array_equal(buf[:rows], ref, equal_nan=True) and (buf[rows:] == 7.0).all()
    strided = np.full((512, rows), 7.0, np.float32).T  # a buffer whose rows are not contiguous
    assert np.array_equal(as_float32(x, out=strided), ref, equal_nan=True)
    assert np.array_equal(as_float32(x[:3]), ref[:3], equal_nan=True)  # under the threshold: numpy's

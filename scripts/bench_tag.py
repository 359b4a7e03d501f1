"""Benchmark zero-shot tagging: N chunks x L labels through the tagger's scoring path.

Synthetic unit vectors (d=512) grouped into files of 1-8 chunks are fed in catalog-sized
batches (65 536 chunks) through `search.tagging.scoring.score_blocks` + `select` (top-3),
exactly as `sfx-search tag` does with the catalog's batches. Measured in the same run:
- the reference floor: the bare float32 matmul of the same blocks (no grouping/selection);
- a naive per-file loop (each file's chunks @ labels, max, argsort) on a subset, extrapolated;
- optionally (--catalog-chunks), the catalog read rate of `iter_chunk_files` on a real SQLite
  catalog of that many synthetic chunks, extrapolated to N (reading is not part of scoring).

    .venv/bin/python scripts/bench_tag.py                 # 1 000 000 chunks x 752 labels
    .venv/bin/python scripts/bench_tag.py --chunks 200000 --catalog-chunks 50000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search.tagging.scoring import score_blocks, select  # noqa: E402

BATCH = 65536


def unit(rng, n, d):
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def synthetic(n_chunks, d, seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 9, n_chunks // 2 + 1)
    fids = np.repeat(np.arange(len(sizes)), sizes)[:n_chunks]
    return fids, unit(rng, n_chunks, d)


def batches(fids, vecs):
    for i in range(0, len(fids), BATCH):
        yield fids[i : i + BATCH], vecs[i : i + BATCH]


def catalog_read_rate(n, d) -> float:
    """Chunks per second read by Catalog.iter_chunk_files from a real SQLite catalog."""
    from indexer.catalog import Catalog, FileInfo, ModelRecord

    with tempfile.TemporaryDirectory() as tmp:
        cat = Catalog.open(f"sqlite:///{tmp}/catalog.sqlite")
        cat.ensure_model(ModelRecord("bench", "0" * 64, {}, d))
        root = cat.add_root(tmp)
        fids, vecs = synthetic(n, d, seed=1)
        starts = np.flatnonzero(np.r_[True, fids[1:] != fids[:-1]])
        ends = np.r_[starts[1:], len(fids)]
        info = FileInfo(10.0, 48000, 1, "PCM_16", "WAV")
        with cat.transaction():
            for k, (a, b) in enumerate(zip(starts, ends)):
                cat.write_file(root.id, f"f{k}.wav", size=1, mtime_ns=1, content_hash=str(k), info=info,
                               chunks=[(i, 10.0 * i, 10.0 * i + 10) for i in range(b - a)], vectors=vecs[a:b],
                               metadata={})
        t = time.perf_counter()
        got = sum(len(ids) for ids, _, _ in cat.iter_chunk_files())
        dt = time.perf_counter() - t
        cat.close()
    assert got == n
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--labels", type=int, default=752)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--naive-files", type=int, default=3000)
    ap.add_argument("--catalog-chunks", type=int, default=0, help="also time catalog reads on this many chunks")
    a = ap.parse_args()

    t = time.perf_counter()
    fids, vecs = synthetic(a.chunks, a.dim)
    labels = unit(np.random.default_rng(2), a.labels, a.dim)
    n_files = int(fids[-1]) + 1
    print(f"data: {a.chunks} chunks in {n_files} files, {a.labels} labels, d={a.dim} "
          f"(generated in {time.perf_counter() - t:.1f} s)")

    for mode, kw in (("multi-label max", dict(agg="max")), ("exclusive max", dict(agg="max", exclusive=True, logit_scale=33.4))):
        t = time.perf_counter()
        tags = files = 0
        for f, sc in score_blocks(batches(fids, vecs), labels, **kw):
            r, _, _ = select(sc, top_k=3)
            tags += len(r)
            files += len(f)
        dt = time.perf_counter() - t
        assert files == n_files
        print(f"tagger ({mode}, top-3): {dt:6.2f} s  ({a.chunks / dt / 1e3:.0f} k chunks/s, {tags} tags)")

    t = time.perf_counter()
    for _, v in batches(fids, vecs):
        v @ labels.T
    ref = time.perf_counter() - t
    print(f"reference: bare matmul of the same blocks: {ref:6.2f} s (the floor)")

    sub = min(a.naive_files, n_files)
    end = int(np.searchsorted(fids, sub))
    t = time.perf_counter()
    for k in range(sub):
        a0, b0 = np.searchsorted(fids[:end], [k, k + 1])
        s = (vecs[a0:b0] @ labels.T).max(axis=0)
        np.argsort(-s)[:3]
    naive = (time.perf_counter() - t) * n_files / sub
    print(f"reference: naive per-file loop on {sub} files, extrapolated: {naive:6.2f} s")

    if a.catalog_chunks:
        rate = catalog_read_rate(a.catalog_chunks, a.dim)
        print(f"catalog read (iter_chunk_files, SQLite, {a.catalog_chunks} chunks): {rate / 1e3:.0f} k chunks/s "
              f"-> {a.chunks / rate:.1f} s for {a.chunks} chunks")


if __name__ == "__main__":
    main()

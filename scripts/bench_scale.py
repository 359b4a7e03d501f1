"""Benchmark the vector index policy at scale on synthetic clustered unit vectors.

    python scripts/bench_scale.py --n 1000000 [--queries 200] [--memory 2G] [--dim 512]
    python scripts/bench_scale.py --n 10000000 --kinds ivf-pqfs --workdir /big/disk/bench10m

With --workdir the float16 vectors, the exact truth and each built index are kept there,
so a rerun (e.g. on a quieter machine) only measures; build_s is then the first run's.

Vectors are a mixture of gaussian clusters on the sphere (sizes and spreads vary, like
libraries with many near-duplicate takes and a long tail); queries are fresh draws from the
same mixture, never in the index. One line per index, the exact flat index first: its
results are the truth the others' recall@10 is measured against. Latency is single-query
(one query per call), with all threads (p50_ms, p99_ms) and one thread (*_1t). ram_mb is
the serialized index size; IVF-PQ re-ranks its candidates against float16 exact vectors
memory-mapped from disk (as the catalog holds them), reported apart as rerank_disk_mb.
The default approximate kind (IVF over 4-bit fast-scan PQ codes) re-ranks the same way.
Timings on a shared machine are noisy: compare lines of the same run, not runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The product's thread settings before numpy loads OpenBLAS (as any `import indexer` has
# them): with numpy first, OpenBLAS's threads spun after each re-ranking product on the core
# faiss's second thread scans with, and two threads measured slower than one (12 ms vs 10).
import indexer  # noqa: E402,F401
import numpy as np  # noqa: E402
# A query process has torch loaded (the text tower) and the re-ranking's float16 -> float32
# cast uses it when it is there (indexer.vectors.as_float32): 0.1 ms for 2000 candidates
# against numpy's 1.9 ms. Measure the index as that process searches it.
import torch  # noqa: E402,F401

from indexer.vectors import ArrayRerank, VectorIndex, parse_memory, plan_index  # noqa: E402


class Mixture:
    """A fixed mixture of `clusters` gaussian blobs on the unit sphere."""

    def __init__(self, dim: int, clusters: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        c = rng.standard_normal((clusters, dim), dtype=np.float32)
        self.centers = c / np.linalg.norm(c, axis=1, keepdims=True)
        self.weights = rng.pareto(1.0, clusters) + 1
        self.weights /= self.weights.sum()
        self.spread = rng.uniform(0.02, 0.06, clusters).astype(np.float32)  # cos to centre ~0.5-0.9

    def draw(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        which = rng.choice(len(self.centers), n, p=self.weights)
        x = rng.standard_normal((n, self.centers.shape[1]), dtype=np.float32)
        x *= self.spread[which, None]
        x += self.centers[which]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x


def generate(mix: Mixture, n: int, out: np.ndarray, part: int = 100_000) -> None:
    for i, s in enumerate(range(0, n, part)):
        out[s:s + part] = mix.draw(min(part, n - s), seed=1000 + i)


def latencies(index: VectorIndex, q: np.ndarray, threads: int) -> tuple[float, float]:
    import faiss

    faiss.omp_set_num_threads(threads)
    index.search(q[:3], 10)  # warm up
    t = []
    for row in q:
        s = time.perf_counter()
        index.search(row[None], 10)
        t.append((time.perf_counter() - s) * 1000)
    return float(np.percentile(t, 50)), float(np.percentile(t, 99))


def file_mb(index: VectorIndex, tmpdir: str) -> float:
    import faiss

    p = os.path.join(tmpdir, "size.faiss")
    faiss.write_index(index.index, p)
    size = os.path.getsize(p)
    os.unlink(p)
    return size / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--memory", default="2G")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--clusters", type=int, default=4000)
    ap.add_argument("--kinds", default="auto",
                    help="comma list of ivf-flat,ivf-sq8,ivf-pq,hnsw or 'auto' (those that fit)")
    ap.add_argument("--workdir", default=None,
                    help="keep float16 vectors, truth and built indexes here for reruns")
    ap.add_argument("--retune", action="store_true",
                    help="with --workdir: tune a kept index's search settings again (and keep them)")
    args = ap.parse_args()
    n, d = args.n, args.dim
    threads = len(os.sched_getaffinity(0))
    mix = Mixture(d, args.clusters)
    tag = f"n{n}-d{d}-c{args.clusters}"
    if args.workdir:
        tmp = os.path.join(args.workdir, tag)
        os.makedirs(tmp, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp()
    t = time.perf_counter()
    # float16 on disk: the catalog's exact copy, used for IVF-PQ re-ranking and, at 10M, for
    # streaming the build (20 GB of float32 would not be held at once).
    vec_path = os.path.join(tmp, "vecs16.npy")
    if os.path.exists(vec_path + ".done"):
        x16 = np.load(vec_path, mmap_mode="r")
    else:
        x16 = np.lib.format.open_memmap(vec_path, "w+", np.float16, (n, d))
        generate(mix, n, x16)
        x16.flush()
        open(vec_path + ".done", "w").close()
    big = n * d * 4 > 8 * 2**30
    x = x16 if big else np.asarray(x16, dtype=np.float32)
    ids = np.arange(n, dtype=np.int64)
    q = mix.draw(args.queries, seed=7)
    print(f"# generated n={n} d={d} in {time.perf_counter() - t:.1f}s; threads={threads}; "
          f"load={os.getloadavg()[0]:.1f} (shared machine: timings are noisy)", file=sys.stderr,
          flush=True)

    def report(index: VectorIndex, truth: np.ndarray | None, extra: str = "") -> np.ndarray:
        faiss_threads = threads
        found = index.search(q, 10)[1]
        recall = 1.0 if truth is None else float(np.mean(
            [len(set(f) & set(tr)) / 10 for f, tr in zip(found, truth)]))
        p50_1, p99_1 = latencies(index, q, 1)
        p50, p99 = latencies(index, q, faiss_threads)
        print(f"index={index.meta['factory']} n={n} recall@10={recall:.3f} p50_ms={p50:.2f} "
              f"p99_ms={p99:.2f} p50_ms_1t={p50_1:.2f} p99_ms_1t={p99_1:.2f} "
              f"ram_mb={file_mb(index, tmp):.0f} build_s={index.meta['build_s']:.1f}"
              f" params={','.join(f'{k}:{v}' for k, v in index.meta['params'].items()) or '-'}"
              f" tuned_recall={index.meta.get('recall_at_10', 1.0):.3f}{extra}", flush=True)
        return found

    truth_path = os.path.join(tmp, f"truth-q{len(q)}.npy")
    if n * (4 * d + 56) <= 16 * 2**30:
        flat = VectorIndex(d, kind="flat").build(ids, x)
        truth = report(flat, None)
        del flat
    else:
        # A flat index would not fit in RAM: the exact reference streams the float16 copy.
        from indexer.vectors import exact_topk
        if os.path.exists(truth_path):
            truth = np.load(truth_path)
            print(f"# exact top 10: kept from an earlier run ({truth_path})", flush=True)
        else:
            t = time.perf_counter()
            truth = exact_topk(q, ids, x, 10)
            np.save(truth_path, truth)
            print(f"# exact top 10 by streaming brute force: {time.perf_counter() - t:.1f}s for "
                  f"{len(q)} queries", flush=True)
        times = []
        for row in q[:3]:  # its single-query latency, this run
            t = time.perf_counter()
            exact_topk(row[None], ids, x, 10)
            times.append((time.perf_counter() - t) * 1000)
        print(f"index=Flat n={n} recall@10=1.000 p50_ms={np.median(times):.0f} "
              f"p99_ms={max(times):.0f} ram_mb=0 build_s=0.0 exact=streamed-float16 (3 queries "
              f"by brute force over the float16 copy: a flat index would need "
              f"{n * d * 4 / 2**30:.0f} GB of RAM)", flush=True)

    budget = parse_memory(args.memory)
    if args.kinds == "auto":
        kinds = ["ivf-pqfs"] + [k for k in ("ivf-flat", "ivf-sq8") if
                                plan_index(n, d, budget, kind=k)["bytes"] <= budget]
        if n <= 300_000:
            kinds.insert(0, "hnsw")
    else:
        kinds = args.kinds.split(",")
    for kind in kinds:
        rerank = ArrayRerank(ids, x16) if "pq" in kind or "sq" in kind else None
        if rerank is not None:  # as `sfx-search serve` does at start: no page faults later
            t = time.perf_counter()
            rerank.warm()
            print(f"# mapped the float16 copy's pages in {time.perf_counter() - t:.1f}s",
                  file=sys.stderr, flush=True)
        saved = os.path.join(tmp, f"{kind}-{budget}.faiss")
        if args.workdir and os.path.exists(saved):
            index = VectorIndex.load(saved, mmap=False, rerank=rerank)
            if args.retune:
                t = time.perf_counter()
                index.tune(ids, x)
                print(f"# tuned {index.meta['factory']} again in {time.perf_counter() - t:.0f}s: "
                      f"{index.meta['params']}", file=sys.stderr, flush=True)
                index.save(saved)
        else:
            index = VectorIndex(d, kind=kind, memory=budget, exact_threshold=0, rerank=rerank)
            t = time.perf_counter()
            index.build(ids, x)
            print(f"# built {index.meta['factory']} in {time.perf_counter() - t:.0f}s "
                  f"(tuning included; build_s excludes it)", file=sys.stderr, flush=True)
            if args.workdir:
                index.save(saved)
        extra = f" rerank_disk_mb={x16.nbytes / 2**20:.0f}" if index.meta.get("rerank") else ""
        report(index, truth, extra)
        del index


if __name__ == "__main__":
    main()

"""What the vector index is tuned on, and the recall fresh text queries then get, at 1M windows.

    python scripts/bench_tuning.py [--queries 60] [--sources held-out,descriptions]

Tunes the benchmark's 1M-window index (scripts/bench_search.py makes it) again in memory, once
per source of tuning queries, and measures each chosen setting on the same fresh text queries
(new descriptions through the text tower) against their exact top 10 (computed in the same run):

  held-out      held-out windows alone (the tuner before issue 20's margin)
  descriptions  UCS descriptions embedded by the text tower, no cached text query
  cached        the catalog's cached text queries topped up with descriptions (the product)

Nothing is saved: the index on disk keeps its settings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_search as bench  # noqa: E402  (sets the product's thread settings first)
import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=60, help="fresh text queries measured")
    ap.add_argument("--sources", default="held-out,descriptions")
    args = ap.parse_args()
    os.environ["SFX_CACHE_DIR"] = str(bench.BENCH / "cache")
    bench.checkpoint()
    index_dir = bench.make_index(bench.BENCH / "search-1m", 1_000_000)
    from indexer import tuning_queries as tq
    from indexer.vectors.tuning import exact_topk
    from search import Library

    lib = Library.open(index_dir, model=str(bench.CKPT))
    vi = lib.index.vectors()
    ev = vi.rerank
    ids, vecs = np.asarray(ev.ids), ev.vecs
    salt = f"t{int(time.time())}"
    texts = [bench.unique_text(i, salt) for i in range(args.queries)]
    fresh = lib.encoder("text").embed_text(texts)  # not cached: they stay fresh
    truth = exact_topk(fresh, ids, vecs, 10)
    print(f"tuning sources at 1M ({vi.meta['factory']}), {len(texts)} fresh text queries ({bench.load()})")
    saved = dict(vi.meta)
    for source in args.sources.split(","):
        t = time.perf_counter()
        if source == "held-out":
            queries, where = None, None
        elif source == "descriptions":
            queries = tq.embed_descriptions(lib.settings, lib.catalog, tq.TUNING_QUERIES)
            where = f"{len(queries)} descriptions"
        else:
            queries, where = tq.tuning_queries(lib.settings, lib.catalog, vecs)
        vi.tune(ids, vecs, queries=queries, queries_from=where)
        found = vi.search(fresh, 10)[1]
        got = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
        chosen = next(x for x in vi.meta["tuning"] if all(x[k] == v for k, v in vi.meta["params"].items()))
        print(f"  {source:12s} tuned {time.perf_counter() - t:5.0f} s -> {vi.meta['params']} "
              f"(tuning recall {vi.meta['recall_at_10']}, {chosen['ms']} ms a query when tuned); "
              f"fresh text queries recall@10 {got:.3f}")
    vi.meta = saved
    print(f"  reference: the exact top 10 of the same fresh queries (this run; {bench.load()})")
    lib.close()


if __name__ == "__main__":
    main()

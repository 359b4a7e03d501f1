"""A/B of `Library.search` (hybrid and semantic) over the 1M-window benchmark index: this tree's
search/query.py against another revision's, in one process, interleaved query by query.

    python scripts/bench_query_ab.py --baseline main [--queries 30]

The text vectors are cached first, so the figures are the search side alone (vector search,
keyword half, fusion, result rows). Both libraries share the open index; the results of every
hybrid query are compared field by field (path, score, found_by, both halves' scores, chunk,
offset, duplicates), and the keyword half ranked in memory against FTS5's bm25() (file ids
and scores). Uses the index scripts/bench_search.py builds (~/.cache/sfx-index-bench).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_search as bench  # noqa: E402  (sets the product's thread settings first)
import numpy as np  # noqa: E402


def baseline_module(rev: str):
    """search/query.py of `rev`, loaded as a module of this tree's search package."""
    src = subprocess.run(["git", "show", f"{rev}:search/query.py"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    tmp = Path(tempfile.mkdtemp()) / "query_baseline.py"
    tmp.write_text(src)
    spec = importlib.util.spec_from_file_location("search.query_baseline", tmp)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def shown(rows):
    return [(r.path, r.score, r.found_by, r.sound_score, r.keyword_score, r.chunk_id, r.offset_s,
             tuple(r.duplicates)) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="main", help="git revision whose search/query.py is the reference")
    ap.add_argument("--queries", type=int, default=30)
    args = ap.parse_args()
    os.environ["SFX_CACHE_DIR"] = str(bench.BENCH / "cache")
    bench.checkpoint()
    index_dir = bench.make_index(bench.BENCH / "search-1m", 1_000_000)
    import search.query as ours

    base = baseline_module(args.baseline)
    new = ours.Library.open(index_dir, model=str(bench.CKPT))
    new.index.keep_warm = True  # as sfx-search serve does
    new.catalog.keep_keywords_in_memory()  # both revisions share the catalog, and so this
    new.catalog.keyword_ranker_ready(wait=600)
    new.search("warm up the library", n=20)
    old = base.Library(new.index, new.model)
    old.settings = new.settings
    salt = f"ab{int(time.time())}"
    texts = [bench.unique_text(i, salt) for i in range(args.queries)]
    new.text_vectors(texts)
    new.text_vectors([t + " again" for t in texts])
    new.catalog.verify_in_background()
    time.sleep(5)
    print(f"A/B over 1M windows: this tree vs {args.baseline}'s search/query.py ({bench.load()})")
    times = {k: [] for k in ("base_hybrid", "ours_hybrid", "base_semantic", "ours_semantic")}
    same = 0
    for i, text in enumerate(texts):
        order = [("base", old), ("ours", new)] if i % 2 == 0 else [("ours", new), ("base", old)]
        got = {}
        for name, lib in order:
            t = time.perf_counter()
            got[name] = lib.search(text + " again", n=20)
            times[name + "_hybrid"].append(time.perf_counter() - t)
        same += shown(got["base"]) == shown(got["ours"])
        for name, lib in order:
            t = time.perf_counter()
            lib.search(text, n=20, mode="semantic")
            times[name + "_semantic"].append(time.perf_counter() - t)
    for k, v in times.items():
        print(f"  {k:14s} p50 {1000 * np.median(v):6.1f} ms (range {1000 * min(v):.1f}-{1000 * max(v):.1f})")
    ratio = np.array(times["ours_hybrid"]) / np.array(times["base_hybrid"])
    print(f"  hybrid, ours / baseline, per query: p50 {np.median(ratio):.2f} (quartiles "
          f"{np.percentile(ratio, 25):.2f}-{np.percentile(ratio, 75):.2f})")
    print(f"  identical hybrid results: {same} of {len(texts)} ({bench.load()})")
    # The keyword half ranked in memory against FTS5's bm25(), list for list (both revisions
    # above shared the in-memory ranking): file ids and scores, plain and all-words-first.
    cat, agree, kw_ms = new.catalog, 0, {"memory": [], "fts5": []}
    for text in texts:
        got = {}
        for name, on in (("memory", True), ("fts5", False)):
            cat.keep_keywords_in_memory(on)
            t = time.perf_counter()
            got[name] = cat.keyword_search(text + " again", limit=60)
            kw_ms[name].append(time.perf_counter() - t)
            got[name] = (got[name], cat.keyword_search(text, limit=60, all_words_first=True))
        agree += got["memory"] == got["fts5"]
    cat.keep_keywords_in_memory()
    print(f"  keyword half, in memory vs FTS5 bm25(): identical lists and scores {agree} of {len(texts)}; "
          f"p50 {1000 * np.median(kw_ms['memory']):.1f} ms vs {1000 * np.median(kw_ms['fts5']):.1f} ms")
    new.close()


if __name__ == "__main__":
    main()

"""The FAISS index over chunk ids: a cache of the catalog's vectors (DESIGN invariant 1).

Up to `exact_threshold` vectors the index is exact (flat). Beyond it the default is IVF over
4-bit fast-scan product codes whose top candidates are re-ranked against exact vectors the
caller feeds (the float16 copy of the catalog's vectors), so the scores returned are exact;
the first code size whose index fits the memory budget is taken, and the search settings are
tuned to a recall@10 target (docs/benchmarks.md has what this gives at 10M vectors).
IVF-Flat, IVF-SQ8, IVF-PQ (8-bit codes) and HNSW stay available on request (`kind=`).

    vector_index.py  VectorIndex: ids, add/remove, search, re-ranking, rebuild policy, save/load
    kinds/           one module per index kind, registered in kinds/__init__.py (KINDS)
    planning.py      which kind and size for n vectors under a memory budget
    tuning.py        search settings to a recall target at the least latency
    store.py         the faiss file and its meta sidecar, atomic writes, IndexCorrupt
    arrays.py        exact vectors: SortedIds, ArrayRerank, read_rows, map_pages, matmul
    runtime.py       faiss loaded lazily, its OpenMP threads

Everything a caller needs is importable from here (`from indexer.vectors import VectorIndex`).
"""

from __future__ import annotations

import importlib

# name -> submodule. Loaded on first use, so that importing the package (or its kind registry,
# for the CLI's --kind choices) costs no numpy or faiss import at a command's start-up.
_EXPORTS = {
    "ArrayRerank": "arrays", "Rerank": "arrays", "SortedIds": "arrays", "as_float32": "arrays",
    "map_pages": "arrays", "matmul": "arrays", "read_rows": "arrays",
    "KINDS": "kinds", "Kind": "kinds", "kind_choices": "kinds", "kind_named": "kinds", "kind_of": "kinds",
    "DEFAULT_EXACT_THRESHOLD": "planning", "DEFAULT_MEMORY": "planning", "parse_memory": "planning",
    "plan_index": "planning",
    "faiss_lib": "runtime", "omp_threads": "runtime",
    "FORMAT_VERSION": "store", "IndexCorrupt": "store", "file_digest": "store", "meta_path": "store",
    "saved_generation": "store",
    "TUNER_VERSION": "tuning", "exact_topk": "tuning",
    "DEFAULT_RECALL": "vector_index", "TOMBSTONE_SHARE": "vector_index", "VectorIndex": "vector_index",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

"""flat: exact search, an IDMap2 over a flat inner-product index (the default for a small library)."""

from __future__ import annotations

from ..runtime import faiss_lib, omp_threads
from .base import Kind, PlanSpace

# Below faiss's BLAS threshold (20 queries) a flat search runs query by query, where a second
# thread slows one query down (docs/benchmarks.md, "single-query flat search").
ONE_THREAD_BELOW = 20
ID_MAP_BYTES = 56  # per vector: the id and the IDMap2's reverse map


class Flat(Kind):
    name = "flat"
    tuned = False
    memory_mapped = True

    def plans(self, space: PlanSpace) -> dict[str, dict]:
        return {"flat": dict(factory="IDMap2,Flat", per_vector=4 * space.d + ID_MAP_BYTES, coarse=0)}

    def search(self, vi, q, k, kk, sel, allowed):
        faiss = faiss_lib()
        params = faiss.SearchParameters(sel=sel) if sel else None
        if len(q) < ONE_THREAD_BELOW:
            with omp_threads(1):
                D, I = vi.index.search(q, kk, params=params)
        else:
            D, I = vi.index.search(q, kk, params=params)
        return D, I, False

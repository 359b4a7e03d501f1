"""ivf-pqfs: inverted lists of 4-bit fast-scan product codes, re-ranked exactly (the default
past the exact threshold).

Codes of each vector's residual from its list's centroid (`IVF{nlist},PQ{m}x4fs`, m/2 bytes
a vector): faiss scans a million of them in a few ms with SIMD lookup tables. Its top
candidates (k x k_factor) are re-ranked against the float16 copy of the catalog's vectors,
so the scores returned are exact. A family: the largest code that fits the budget is taken.
"""

from __future__ import annotations

from .base import PlanSpace
from .ivf import Ivf

ID_BYTES = 8
MIN_CODE = 8                    # sub-quantizers at least
CODE_DIVISORS = (2, 4, 8, 16)   # m = d / divisor, largest code first
LUT_BYTES = 32 * 8              # per list: the fast-scan lookup tables' share
MIN_TRAIN = 65_536
# faiss's fast-scan implementations: 14 splits a query's probed lists over the threads (the
# default scans one query on one thread); 15 does so and gathers a deep top-k in a reservoir
# instead of a heap (docs/benchmarks.md, "fast-scan implem").
IMPLEM_SPLIT, IMPLEM_SPLIT_RESERVOIR = 14, 15
RESERVOIR_FROM = 20             # candidates per query from which the reservoir pays


class IvfPqFastScan(Ivf):
    name = "ivf-pqfs"
    sized = True
    compressed = True
    pq_codes = True
    min_train = MIN_TRAIN
    rerank_factors = (8, 32, 100, 150, 200, 300, 400)

    def plans(self, space: PlanSpace) -> dict[str, dict]:
        out = {}
        for m in (space.d // div for div in CODE_DIVISORS):
            if m >= MIN_CODE and space.d % m == 0:
                out[f"ivf-pqfs{m}"] = dict(factory=f"{space.ivf},PQ{m}x4fs", per_vector=m / 2 + ID_BYTES,
                                           coarse=space.coarse + space.nlist * LUT_BYTES)
        return out

    def configure(self, faiss, index, plan: dict) -> None:
        # Codes of each vector's residual from its list's centroid (faiss's default), not of
        # the vector: a better recall at the same speed (docs/benchmarks.md, "residual codes").
        # The finer codes are what a dense library of millions needs.
        faiss.extract_index_ivf(index).by_residual = True

    def prepare_search(self, ivf, kk: int) -> None:
        ivf.implem = IMPLEM_SPLIT_RESERVOIR if kk > RESERVOIR_FROM else IMPLEM_SPLIT

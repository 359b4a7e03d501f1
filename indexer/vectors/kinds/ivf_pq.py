"""ivf-pq: inverted lists of 8-bit product codes (on request), re-ranked exactly.

A family: `ivf-pq` takes the largest code (m bytes a vector) that fits the budget."""

from __future__ import annotations

from .base import PlanSpace
from .ivf import Ivf

ID_BYTES = 8
CODE_SIZES = (128, 64, 32, 16, 8)  # m sub-quantizers, one byte each; largest first
MIN_TRAIN = 65_536


class IvfPq(Ivf):
    name = "ivf-pq"
    sized = True
    compressed = True
    pq_codes = True
    min_train = MIN_TRAIN
    rerank_factors = (4, 16, 64)

    def plans(self, space: PlanSpace) -> dict[str, dict]:
        out = {}
        for m in CODE_SIZES:
            if space.d % m == 0:
                # No OPQ rotation: its training takes minutes on a small CPU, and the re-ranking
                # against exact vectors recovers what it would add.
                out[f"ivf-pq{m}"] = dict(factory=f"IVF{space.nlist},PQ{m}np", m=m, per_vector=m + ID_BYTES,
                                         coarse=space.coarse)
        return out

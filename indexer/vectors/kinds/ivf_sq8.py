"""ivf-sq8: inverted lists of 8-bit scalar-quantized vectors (on request), re-ranked exactly."""

from __future__ import annotations

from .base import PlanSpace
from .ivf import Ivf

ID_BYTES = 8


class IvfSq8(Ivf):
    name = "ivf-sq8"
    compressed = True
    rerank_factors = (1, 4, 16, 64)

    def plans(self, space: PlanSpace) -> dict[str, dict]:
        return {"ivf-sq8": dict(factory=f"IVF{space.nlist},SQ8", per_vector=space.d + ID_BYTES,
                                coarse=space.coarse)}

"""ivf-flat: inverted lists of exact vectors (on request); removes by a hashed direct map."""

from __future__ import annotations

from .base import PlanSpace
from .flat import ID_MAP_BYTES
from .ivf import Ivf


class IvfFlat(Ivf):
    name = "ivf-flat"

    def plans(self, space: PlanSpace) -> dict[str, dict]:
        return {"ivf-flat": dict(factory=f"IVF{space.nlist},Flat", per_vector=4 * space.d + ID_MAP_BYTES,
                                 coarse=space.coarse)}

    def configure(self, faiss, index, plan: dict) -> None:
        faiss.extract_index_ivf(index).set_direct_map_type(faiss.DirectMap.Hashtable)

"""hnsw: an HNSW graph over exact vectors (on request). It cannot remove ids (they are
tombstoned until a rebuild) and its build is slow on small machines."""

from __future__ import annotations

from ..runtime import faiss_lib
from .base import Kind, PlanSpace
from .flat import ID_MAP_BYTES

LINKS = 32                 # neighbours per node (HNSW32)
LINK_BYTES = 8             # per link per vector
UPPER_LAYERS = 1.1         # the graph's upper layers add about a tenth
EF_CONSTRUCTION = 80
DEFAULT_EF_SEARCH = 64
MAX_EF_SEARCH = 4096       # a filtered search widens efSearch up to this, then goes exact
MAX_EXACT_ALLOWED = 100_000  # a filter this small is searched exactly when the graph misses
EF_GRID = (16, 32, 64, 128, 256, 512, 1024)


class Hnsw(Kind):
    name = "hnsw"
    removes = False

    def plans(self, space: PlanSpace) -> dict[str, dict]:
        per_vector = 4 * space.d + ID_MAP_BYTES + LINKS * LINK_BYTES * UPPER_LAYERS
        return {"hnsw": dict(factory=f"IDMap2,HNSW{LINKS},Flat", per_vector=per_vector, coarse=0)}

    def configure(self, faiss, index, plan: dict) -> None:
        faiss.downcast_index(index.index).hnsw.efConstruction = EF_CONSTRUCTION

    def search(self, vi, q, k, kk, sel, allowed):
        faiss = faiss_lib()
        ef = max(vi.meta["params"].get("efSearch", DEFAULT_EF_SEARCH), kk)
        while True:
            D, I = vi.index.search(q, kk, params=faiss.SearchParametersHNSW(sel=sel, efSearch=ef))
            if sel is None or (I[:, -1] >= 0).all() or ef >= MAX_EF_SEARCH:
                break
            ef *= 4
        if allowed is not None and (I[:, -1] < 0).any() and len(allowed) <= MAX_EXACT_ALLOWED:
            D, I = exact_over(vi, q, k, allowed)
            return D, I, True
        return D, I, False

    def choose(self, tuner) -> list[dict]:
        found = tuner.smallest([dict(efSearch=e) for e in EF_GRID])
        return [found] if found else []


def exact_over(vi, q, k, allowed):
    """The exact top k among the allowed ids, from the graph's stored vectors."""
    import numpy as np

    live = np.array([i for i in allowed.tolist() if i not in vi.tombstones], np.int64)
    have, vecs = [], []
    for i in live.tolist():
        try:
            vecs.append(vi.index.reconstruct(i))
            have.append(i)
        except RuntimeError:
            pass
    if not have:
        return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
    s = q @ np.stack(vecs).T
    pad = max(0, k - len(have))
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    D = np.pad(np.take_along_axis(s, order, 1), ((0, 0), (0, pad)), constant_values=-np.inf)
    I = np.pad(np.asarray(have)[order], ((0, 0), (0, pad)), constant_values=-1)
    return D.astype(np.float32), I

"""What an index kind is: the plans it offers, how it is made, trained, searched and tuned.

A kind is one subclass of `Kind` in a module of its own, listed in `KINDS`
(indexer/vectors/kinds/__init__.py). VectorIndex asks the kind of its index (the `kind` in
its meta, e.g. "ivf-pqfs256") for everything that differs between kinds, and does the rest
(ids, tombstones, re-ranking, persistence) the same way for all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class PlanSpace:
    """What every kind's plans are computed from (see planning.plan_index)."""

    d: int
    nlist: int     # inverted lists of an IVF index for this many vectors
    coarse: int    # bytes of the IVF coarse centroids
    ivf: str       # the IVF part of a factory string ("IVF4096" or "IVF8192_HNSW32")


class Kind:
    """One index kind; the defaults are those of an exact, removable, tunable-free index."""

    name = ""              # what kind= and the CLI's --kind ask for
    sized = False          # a family of code sizes: its plans are named name + size ("ivf-pq64")
    tuned = True           # search settings are tuned to a recall target (flat: exact already)
    compressed = False     # keeps codes, not vectors: re-ranks against the exact float16 copy
    removes = True         # faiss can remove ids (else they are tombstoned)
    memory_mapped = False  # a saved index is read memory-mapped

    def plans(self, space: PlanSpace) -> dict[str, dict]:
        """name -> dict(factory, per_vector bytes, coarse bytes, ...) for this kind."""
        raise NotImplementedError

    def owns(self, kind: str) -> bool:
        """Whether a concrete kind name (an index's meta["kind"]) is one of this kind's."""
        return kind == self.name or (self.sized and re.fullmatch(re.escape(self.name) + r"\d+", kind) is not None)

    def configure(self, faiss, index, plan: dict) -> None:
        """Settings made right after index_factory."""

    def train(self, faiss, index, vecs, plan: dict, n: int, rng: np.random.Generator) -> None:
        """Train the empty index on a sample of vecs (nothing to do for untrained kinds)."""

    def after_add(self, vi) -> None:
        """Called once the bulk of the vectors is in (see IVF's flat quantizer)."""

    def search(self, vi, q: np.ndarray, k: int, kk: int, sel, allowed):
        """(D, I, final): the kk best candidates; final means already the k answers."""
        raise NotImplementedError

    def choose(self, tuner) -> list[dict]:
        """Settings that reach the tuner's recall target (see tuning.Tuner)."""
        return []

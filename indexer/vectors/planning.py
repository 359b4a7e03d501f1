"""Which index for n vectors under a memory budget: the plan the kinds offer, one chosen.

Up to `exact_threshold` vectors the index is exact (flat). Beyond it the first code size of
IVF over 4-bit fast-scan product codes whose index fits the budget (with room to grow) is
taken; the other kinds are there on request (`kind=`, `sfx-index reindex --kind`).
"""

from __future__ import annotations

import math
import re

import numpy as np

from indexer.config import UserError

from .kinds import KINDS, PlanSpace, kind_named

DEFAULT_EXACT_THRESHOLD = 200_000
DEFAULT_MEMORY = "2G"
DEFAULT_GROWTH = 1.5          # an index is planned to hold this many times today's vectors
MIN_LISTS = 16
LISTS_PER_SQRT_N = 4          # nlist ~ 4 sqrt(n), a power of two
MIN_TRAIN_PER_LIST = 39       # faiss warns below 39 training points per centroid
HNSW_QUANTIZER_LISTS = 4096   # beyond this many lists the coarse quantizer is an HNSW graph
AUTO_FAMILY = "ivf-pqfs"      # what `auto` takes past the exact threshold


def parse_memory(value: str | int) -> int:
    """'2G', '512M', '800k' or a number of bytes -> bytes (binary units)."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kKmMgGtT]?)[bB]?\s*", str(value))
    if not m:
        raise UserError(f"cannot read memory size {value!r}: write e.g. 2G, 512M or 800k")
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))


def plan_index(n: int, d: int, memory: str | int = DEFAULT_MEMORY, *, kind: str = "auto",
               exact_threshold: int = DEFAULT_EXACT_THRESHOLD, growth: float = DEFAULT_GROWTH) -> dict:
    """Pick the index for n vectors; it must fit the budget with room to grow (growth x n).

    An index that outgrows its budget later is re-planned (see VectorIndex.retrain_reason)."""
    budget = parse_memory(memory)
    cap = int(max(n, 1) * growth)
    nlist = max(MIN_LISTS, 2 ** int(math.log2(max(LISTS_PER_SQRT_N * math.sqrt(max(n, 1)), MIN_LISTS))))
    nlist = min(nlist, max(MIN_LISTS, 2 ** int(math.log2(max(n // MIN_TRAIN_PER_LIST, MIN_LISTS)))))
    # Past HNSW_QUANTIZER_LISTS lists, assigning millions of vectors to brute-force centroids
    # dominates the build; an HNSW graph over the centroids does not.
    ivf = f"IVF{nlist}_HNSW32" if nlist > HNSW_QUANTIZER_LISTS else f"IVF{nlist}"
    space = PlanSpace(d=d, nlist=nlist, coarse=nlist * d * 4, ivf=ivf)
    plans: dict[str, dict] = {}
    owner: dict[str, str] = {}
    for k in KINDS:
        for name, p in k.plans(space).items():
            plans[name], owner[name] = p, k.name
    for p in plans.values():
        p["bytes"] = cap * p["per_vector"] + p["coarse"]
        if p["factory"].startswith("IVF"):
            p["nlist"] = nlist
    if kind == "auto":
        if n <= exact_threshold:
            kind = "flat"
        else:
            family = [name for name in plans if owner[name] == AUTO_FAMILY]
            fits = [name for name in family if plans[name]["bytes"] <= budget]
            if not fits:
                raise UserError(f"{n} vectors do not fit in {memory} even as {family[-1]}: "
                                "raise --memory")
            kind = fits[0]
    family_kind = kind_named(kind)
    if kind not in plans and family_kind is not None:
        # A family of code sizes: its largest code that fits, else its smallest.
        sizes = [name for name in plans if owner[name] == family_kind.name]
        if sizes:
            kind = next((name for name in sizes if plans[name]["bytes"] <= budget), sizes[-1])
    if kind not in plans:
        raise ValueError(f"unknown index kind {kind!r} (one of auto, {', '.join(plans)})")
    return dict(kind=kind, budget=budget, **plans[kind])

"""The registry of index kinds: one module per kind, listed here once.

Adding a kind: write a module with a `Kind` subclass (see base.py and, for an IVF variant,
ivf.py), and add an instance to KINDS. Planning (planning.plan_index), the CLI's
`sfx-index reindex --kind` choices and VectorIndex read this list. The order matters to
planning: a family's plans are listed in the order its module gives them, and error messages
list the kinds in this order.
"""

from __future__ import annotations

from .base import Kind, PlanSpace
from .flat import Flat
from .hnsw import Hnsw
from .ivf_flat import IvfFlat
from .ivf_pq import IvfPq
from .ivf_pqfs import IvfPqFastScan
from .ivf_sq8 import IvfSq8

KINDS: tuple[Kind, ...] = (Flat(), Hnsw(), IvfFlat(), IvfSq8(), IvfPqFastScan(), IvfPq())


def kind_named(name: str) -> Kind | None:
    """The kind a request name stands for ("ivf-pq"), or None."""
    return next((k for k in KINDS if k.name == name), None)


def kind_choices() -> list[str]:
    """What `kind=` (and `sfx-index reindex --kind`) accepts: auto, then every registered kind."""
    return ["auto"] + [k.name for k in KINDS]


def kind_of(kind: str) -> Kind:
    """The kind of a concrete index (its meta["kind"], e.g. "ivf-pqfs256")."""
    for k in KINDS:
        if k.owns(kind):
            return k
    raise ValueError(f"unknown index kind {kind!r}")


__all__ = ["KINDS", "Kind", "PlanSpace", "kind_choices", "kind_named", "kind_of"]

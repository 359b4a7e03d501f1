"""VectorIndex: int64 chunk ids -> unit vectors in FAISS, searched by inner product.

The kind-independent part: ids, additions and removals (tombstones where the kind cannot
remove), filtered search and exact re-ranking of approximate candidates, when to rebuild,
saving and loading. What differs by kind is asked of its Kind (indexer/vectors/kinds/).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from . import planning, store, tuning
from .arrays import Rerank, matmul
from .kinds import Kind, kind_of
from .planning import DEFAULT_EXACT_THRESHOLD, DEFAULT_MEMORY, parse_memory
from .runtime import faiss_lib

log = logging.getLogger(__name__)

DEFAULT_RECALL = 0.95
TOMBSTONE_SHARE = 0.2  # HNSW is rebuilt when more than this share of it is dead
ADD_ROWS = 65_536      # vectors handed to faiss per add call (a float16 memmap is read so)
DEEP_K_FACTOR = 10     # a deep search fetches max(2 k, this x k_factor) candidates, not k x factor


class VectorIndex:
    """int64 chunk ids -> unit vectors, searched by inner product."""

    def __init__(self, dim: int, *, memory: str | int = DEFAULT_MEMORY, kind: str = "auto",
                 exact_threshold: int = DEFAULT_EXACT_THRESHOLD,
                 recall_target: float = DEFAULT_RECALL, rerank: Rerank | None = None):
        self.dim = dim
        self.rerank = rerank
        self.meta: dict = dict(format_version=store.FORMAT_VERSION, dim=dim, metric="ip",
                               kind=kind, memory=parse_memory(memory),
                               exact_threshold=exact_threshold, recall_target=recall_target,
                               params={}, trained_n=0, tombstones=[], generation=None,
                               kind_request=kind)
        self.tombstones: set[int] = set()
        self._mapped = False
        self._kind: tuple[str, Kind] | None = None
        self.index = None
        self._make({"kind": "flat", "factory": "IDMap2,Flat"})

    @property
    def kind(self) -> Kind:
        """The Kind of this index (from meta["kind"], e.g. "ivf-pqfs256")."""
        name = self.meta["kind"]
        if self._kind is None or self._kind[0] != name:
            self._kind = (name, kind_of(name))
        return self._kind[1]

    # -- building -------------------------------------------------------------------------
    def _make(self, plan: dict) -> None:
        faiss = faiss_lib()
        self.index = faiss.index_factory(self.dim, plan["factory"], faiss.METRIC_INNER_PRODUCT)
        kind_of(plan["kind"]).configure(faiss, self.index, plan)
        ivf = faiss.extract_index_ivf(self.index) if "IVF" in plan["factory"] else None
        self.meta.update(kind=plan["kind"], factory=plan["factory"], params={},
                         by_residual=None if ivf is None else bool(ivf.by_residual),
                         quantizer=None if ivf is None else "hnsw" if "_HNSW" in plan["factory"] else "flat",
                         estimated_bytes=int(plan.get("bytes", 0)),
                         bytes_per_vector=plan.get("per_vector", 0),
                         coarse_bytes=plan.get("coarse", 0))
        self.tombstones = set()

    def build(self, ids, vecs, *, queries: np.ndarray | None = None, seed: int = 0,
              generation=None, queries_from: str | None = None) -> "VectorIndex":
        """Replace the contents with (ids, vecs); choose, train and tune the index.

        vecs may be a float16 memmap: it is read in chunks. `queries`: text-like vectors
        (indexer.tuning_queries; `queries_from` says where they came from) that must reach the
        recall target beside held-out vectors of the data (tuning.tune).
        """
        ids = np.asarray(ids, dtype=np.int64)
        n = len(ids)
        plan = planning.plan_index(n, self.dim, self.meta["memory"], kind=self.meta["kind_request"],
                                   exact_threshold=self.meta["exact_threshold"])
        self._make(plan)
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        self.kind.train(faiss_lib(), self.index, vecs, plan, n, rng)
        for s in range(0, n, ADD_ROWS):
            self._add_raw(ids[s:s + ADD_ROWS], vecs[s:s + ADD_ROWS])
        self.kind.after_add(self)
        self.meta.update(trained_n=n, build_s=round(time.perf_counter() - t0, 2),
                         generation=generation)
        tuning.tune(self, ids, vecs, queries, rng, queries_from)
        return self

    def tune(self, ids, vecs, *, queries: np.ndarray | None = None, seed: int = 0,
             queries_from: str | None = None) -> "VectorIndex":
        """Tune the search settings again on the vectors the index holds (see build)."""
        tuning.tune(self, np.asarray(ids, dtype=np.int64), vecs, queries, np.random.default_rng(seed), queries_from)
        return self

    # -- changing -------------------------------------------------------------------------
    def _add_raw(self, ids, vecs) -> None:
        self.index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32),
                                np.ascontiguousarray(ids, dtype=np.int64))

    def add(self, ids, vecs) -> None:
        """Add new ids (never present before) to the trained index, without retraining."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.tombstones and self.tombstones.intersection(ids.tolist()):
            raise ValueError("an id removed from an HNSW index cannot be re-added: rebuild")
        self._own()
        for s in range(0, len(ids), ADD_ROWS):
            self._add_raw(ids[s:s + ADD_ROWS], vecs[s:s + ADD_ROWS])

    def remove(self, ids) -> int:
        """Remove ids; returns how many were present (HNSW: tombstoned)."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if not self.kind.removes:
            new = set(ids.tolist()) - self.tombstones
            self.tombstones |= new
            return len(new)
        self._own()
        return int(self.index.remove_ids(ids))  # faiss picks the selector its direct map needs

    @property
    def ntotal(self) -> int:
        """Live vectors (tombstoned ones excluded)."""
        return int(self.index.ntotal) - len(self.tombstones)

    def ids(self) -> np.ndarray:
        """Every live id (IDMap or IVF layouts)."""
        faiss, idx = faiss_lib(), self.index
        if hasattr(idx, "id_map"):
            ids = faiss.vector_to_array(idx.id_map)
        else:
            invlists = faiss.extract_index_ivf(idx).invlists
            parts = []
            for lst in range(invlists.nlist):
                size = invlists.list_size(lst)
                if size:
                    parts.append(faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy())
            ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        if self.tombstones:
            ids = ids[~np.isin(ids, np.fromiter(self.tombstones, np.int64))]
        return ids.astype(np.int64)

    def retrain_reason(self) -> str | None:
        m, n = self.meta, self.ntotal
        if not self.kind.tuned:
            return f"{n} vectors exceed the exact threshold" if n > m["exact_threshold"] else None
        if n > 2 * m["trained_n"]:
            return f"{n} vectors, more than twice the {m['trained_n']} it was trained on"
        if n < m["trained_n"] / 2:
            return f"{n} vectors, less than half the {m['trained_n']} it was trained on"
        if len(self.tombstones) > TOMBSTONE_SHARE * self.index.ntotal:
            return f"{len(self.tombstones)} removed vectors still in the HNSW graph"
        per = m.get("bytes_per_vector")
        if per and m.get("kind_request") == "auto" and n * per + m.get("coarse_bytes", 0) > m["memory"]:
            return f"{n} vectors outgrow the {m['memory'] / 2**30:.1f} GiB budget as {m['factory']}"
        return None

    def needs_retrain(self) -> bool:
        return self.retrain_reason() is not None

    # -- searching ------------------------------------------------------------------------
    def search(self, q: np.ndarray, k: int, allowed_ids=None) -> tuple[np.ndarray, np.ndarray]:
        """Top k by inner product: (scores float32 (m, k), ids int64 (m, k)), -1 / -inf padded.

        allowed_ids restricts the hits to those ids and still returns k of them when k exist.
        """
        q = np.ascontiguousarray(np.atleast_2d(q), dtype=np.float32)
        allowed = None if allowed_ids is None else np.unique(np.asarray(allowed_ids, np.int64))
        return self._search(q, k, allowed)

    def search_ids(self, q: np.ndarray, k: int) -> np.ndarray:
        """Top k ids of float32 contiguous queries, unfiltered (the tuner's probe)."""
        return self._search(q, k, None)[1]

    def _selector(self, allowed):
        """(selector or None, the parts to keep alive while it is used: SWIG does not)."""
        faiss = faiss_lib()
        sel = None if allowed is None else faiss.IDSelectorBatch(allowed)
        if not self.tombstones:
            return sel, ()
        batch = faiss.IDSelectorBatch(np.fromiter(self.tombstones, np.int64))
        live = faiss.IDSelectorNot(batch)
        return (live if sel is None else faiss.IDSelectorAnd(sel, live)), (sel, batch, live)

    def _search(self, q, k, allowed):
        p = self.meta["params"]
        m = len(q)
        if allowed is not None and len(allowed) == 0 or self.index.ntotal == 0:
            return np.full((m, k), -np.inf, np.float32), np.full((m, k), -1, np.int64)
        kf = p.get("k_factor", 1) if self.rerank is not None else 1
        sel, _parts = self._selector(allowed)
        # k_factor was tuned for the top 10: a deep k (search fetches hundreds of chunks to
        # find n distinct files) needs a margin over k, not k times the factor.
        kk = min(k * kf, max(2 * k, DEEP_K_FACTOR * kf))
        D, I, final = self.kind.search(self, q, k, kk, sel, allowed)
        if final:
            return D, I
        if kf > 1:
            D, I = self._rerank(q, I, k)
        D[I < 0] = -np.inf
        return D[:, :k].astype(np.float32, copy=False), I[:, :k]

    def _rerank(self, q, cand, k):
        valid = cand >= 0
        uniq, inv = np.unique(cand[valid], return_inverse=True)
        vecs = np.asarray(self.rerank(uniq), dtype=np.float32)
        scores = np.full(cand.shape, -np.inf, np.float32)
        # One product of the distinct candidates with every query, then a gather: no copy
        # of a vector per (query, candidate) pair.
        scores[valid] = matmul(vecs, q.T)[inv.ravel(), np.nonzero(valid)[0]]
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, 1), np.take_along_axis(cand, order, 1)

    def reconstruct(self, ids) -> np.ndarray:
        """Stored vectors of ids (exact for flat, HNSW and IVF-Flat; else via the rerank source)."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.rerank is not None and self.kind.compressed:
            return np.asarray(self.rerank(ids), np.float32)
        if self.kind.compressed:
            raise NotImplementedError(f"{self.meta['factory']} keeps no exact vectors")
        try:
            return np.stack([self.index.reconstruct(int(i)) for i in ids]) if len(ids) else \
                np.zeros((0, self.dim), np.float32)
        except RuntimeError as e:
            raise KeyError(f"id not in index: {e}") from None

    # -- persistence ----------------------------------------------------------------------
    def save(self, path, *, generation=None) -> None:
        """Write index and meta atomically (tmp in the same dir, fsync, rename)."""
        if generation is not None:
            self.meta["generation"] = generation
        meta = dict(self.meta, ntotal=self.ntotal, tombstones=sorted(self.tombstones))
        self.meta = store.save(self.index, meta, path)

    @classmethod
    def load(cls, path, *, mmap: bool = True, rerank: Rerank | None = None) -> "VectorIndex":
        """Read a saved index; IndexCorrupt if it is truncated, damaged or not its meta's."""
        index, meta, mapped = store.load(path, mmap=lambda m: mmap and _maps(m.get("kind")))
        self = cls.__new__(cls)
        self.dim, self.rerank, self.index, self.meta = meta["dim"], rerank, index, meta
        self.tombstones, self._mapped, self._kind = set(meta["tombstones"]), mapped, None
        return self

    def _own(self) -> None:
        """A memory-mapped flat index is read-only: copy it into RAM before changing it."""
        if not self._mapped:
            return
        faiss = faiss_lib()
        flat = faiss.downcast_index(self.index.index)
        xb = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * self.dim).reshape(-1, self.dim)
        owned = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        owned.add_with_ids(np.array(xb), faiss.vector_to_array(self.index.id_map))
        self.index, self._mapped = owned, False


def _maps(kind) -> bool:
    try:
        return kind_of(str(kind)).memory_mapped
    except ValueError:
        return False

"""The FAISS index over chunk ids: choosing, training, tuning, searching and saving it.

The catalog holds the truth; this file is a cache of its vectors (DESIGN invariant 1).
Up to `exact_threshold` vectors the index is exact (IDMap2 over a flat inner-product index).
Beyond it the default is IVF over 4-bit fast-scan product codes (`IVF{nlist},PQ{m}x4fs`,
d/4 bytes a vector at m = d/2) of each vector's residual from its list's centroid: faiss
scans a million of them in a few ms with SIMD lookup tables. Its top candidates
(k x `k_factor`) are re-ranked against exact vectors the caller feeds (the float16 copy of
the catalog's vectors), so the scores returned are exact. The first code size whose index
fits the memory budget is taken; past a few million vectors the coarse quantizer is an
HNSW graph so that assigning vectors stays cheap, replaced by a flat one over the same
centroids once the bulk add is done (see _flat_quantizer). A query's probed lists are
scanned on all threads. nprobe and k_factor are tuned on queries (cached text queries when
there are enough: they sit apart from the audio vectors and a coarse quantizer trained on
audio routes them poorly) to a recall@10 target, timed one query a call, and recorded in a
JSON sidecar. At 10M vectors: 1.3 GB, recall@10 ~0.96 in 6-8 ms (scripts/bench_scale.py).

IVF-Flat, IVF-SQ8, IVF-PQ (8-bit codes) and HNSW stay available on request (`kind=`);
HNSW cannot remove (tombstones instead) and its build is slow on small machines.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from indexer.config import UserError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DEFAULT_EXACT_THRESHOLD = 200_000
DEFAULT_MEMORY = "2G"
DEFAULT_RECALL = 0.95
TOMBSTONE_SHARE = 0.2  # HNSW is rebuilt when more than this share of it is dead
_CHUNK = 65_536
_TUNE_TIMED = 64  # queries timed one by one for each setting the tuner tries
TUNER_VERSION = 2  # recorded with the settings: 2 = timed one query a call, ~1.5x nprobe grid

# Exact vectors for re-ranking: int64 ids (n,) -> (n, d) float16/float32, same order.
Rerank = Callable[[np.ndarray], np.ndarray]


class IndexCorrupt(UserError):
    """The index file is unreadable or disagrees with its meta sidecar; rebuild it."""


def _faiss():
    # Busy-waiting OpenMP threads collapse on a machine shared with other work (minutes
    # instead of seconds here); passive waiting costs microseconds per call.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import faiss  # lazy: `sfx-search` start-up must not pay for it before it searches

    if not getattr(_faiss, "threads_set", False):
        n = int(os.environ.get("SFX_FAISS_THREADS", "0")) or len(os.sched_getaffinity(0))
        faiss.omp_set_num_threads(n)
        _faiss.threads_set = True
    return faiss


@contextlib.contextmanager
def _omp_threads(n: int):
    """Run faiss on n OpenMP threads meanwhile. The setting is the calling thread's own
    (OpenMP keeps it per thread), so other threads' searches are not touched.

    A flat search of one query is twice as fast on one thread as on two (100k vectors:
    8-10 ms against 15-20 ms; 1M: 86 ms against 173 ms), whatever the wait policy."""
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def parse_memory(value: str | int) -> int:
    """'2G', '512M', '800k' or a number of bytes -> bytes (binary units)."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kKmMgGtT]?)[bB]?\s*", str(value))
    if not m:
        raise UserError(f"cannot read memory size {value!r}: write e.g. 2G, 512M or 800k")
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))


def plan_index(n: int, d: int, memory: str | int = DEFAULT_MEMORY, *, kind: str = "auto",
               exact_threshold: int = DEFAULT_EXACT_THRESHOLD, growth: float = 1.5) -> dict:
    """Pick the index for n vectors; it must fit the budget with room to grow (growth x n).

    An index that outgrows its budget later is re-planned (see retrain_reason)."""
    budget = parse_memory(memory)
    cap = int(max(n, 1) * growth)
    nlist = max(16, 2 ** int(math.log2(max(4 * math.sqrt(max(n, 1)), 16))))
    nlist = min(nlist, max(16, 2 ** int(math.log2(max(n // 39, 16)))))  # >= 39 train pts/list
    coarse = nlist * d * 4
    # Past 4096 lists, assigning millions of vectors to brute-force centroids dominates
    # the build (10M x 8192 x 512 multiply-adds); an HNSW graph over the centroids does not.
    ivf = f"IVF{nlist}_HNSW32" if nlist > 4096 else f"IVF{nlist}"
    plans = {
        "flat": dict(factory="IDMap2,Flat", per_vector=4 * d + 56, coarse=0),
        "hnsw": dict(factory="IDMap2,HNSW32,Flat", per_vector=4 * d + 56 + 32 * 8 * 1.1, coarse=0),
        "ivf-flat": dict(factory=f"IVF{nlist},Flat", per_vector=4 * d + 56, coarse=coarse),
        "ivf-sq8": dict(factory=f"IVF{nlist},SQ8", per_vector=d + 8, coarse=coarse),
    }
    for m in (d // 2, d // 4, d // 8, d // 16):
        if m >= 8 and d % m == 0:
            plans[f"ivf-pqfs{m}"] = dict(factory=f"{ivf},PQ{m}x4fs", per_vector=m / 2 + 8,
                                         coarse=coarse + nlist * 32 * 8)
    for m in (128, 64, 32, 16, 8):
        if d % m == 0:
            # No OPQ rotation: its training takes minutes on a small CPU, and the re-ranking
            # against exact vectors recovers what it would add.
            plans[f"ivf-pq{m}"] = dict(factory=f"IVF{nlist},PQ{m}np", m=m, per_vector=m + 8,
                                       coarse=coarse)
    for p in plans.values():
        p["bytes"] = cap * p["per_vector"] + p["coarse"]
        if p["factory"].startswith("IVF"):
            p["nlist"] = nlist
    pqfs = [k for k in plans if k.startswith("ivf-pqfs")]
    if kind == "auto":
        if n <= exact_threshold:
            kind = "flat"
        else:
            fits = [k for k in pqfs if plans[k]["bytes"] <= budget]
            if not fits:
                raise UserError(f"{n} vectors do not fit in {memory} even as {pqfs[-1]}: "
                                "raise --memory")
            kind = fits[0]
    if kind in ("ivf-pqfs", "ivf-pq"):  # the family: its largest code that fits, else its smallest
        sizes = [k for k in plans if re.fullmatch(kind + r"\d+", k)]
        kind = next((k for k in sizes if plans[k]["bytes"] <= budget), sizes[-1])
    if kind not in plans:
        raise ValueError(f"unknown index kind {kind!r} (one of auto, {', '.join(plans)})")
    return dict(kind=kind, budget=budget, **plans[kind])


class SortedIds:
    """Positions of ids in a sorted, duplicate-free int64 array (in RAM or memory-mapped).

    A plain binary search over 10M ids misses the cache at each of its last ~10 steps
    (1.5 ms for the 2000 candidates of a query); here a coarse search in every 64th id
    (an array that stays in cache) finds each id's block and one 512-byte read finishes
    it (~0.3 ms). Ids that are exactly consecutive (a fresh catalog) need no search."""

    STEP = 64

    def __init__(self, ids: np.ndarray):
        self.ids = ids
        n = len(ids)
        self.first = int(ids[0]) if n else 0
        self.dense = bool(n) and int(ids[-1]) - self.first == n - 1
        self.coarse = None if self.dense else np.ascontiguousarray(ids[::self.STEP])

    def __call__(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, found): ids[positions[found]] == keys[found]."""
        keys = np.asarray(keys, np.int64)
        n = len(self.ids)
        if n == 0:
            return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
        if self.dense:
            pos = (keys - self.first).clip(0, n - 1)
        else:
            start = (np.searchsorted(self.coarse, keys, side="right") - 1).clip(0) * self.STEP
            window = np.minimum(start[:, None] + np.arange(self.STEP), n - 1)
            pos = (start + (self.ids[window] < keys[:, None]).sum(1)).clip(0, n - 1)
        return pos, self.ids[pos] == keys


class ArrayRerank:
    """A Rerank source over (ids, vecs) arrays; vecs may be a float16 np.memmap."""

    def __init__(self, ids: np.ndarray, vecs: np.ndarray):
        ids = np.asarray(ids, dtype=np.int64)
        ordered = len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1]))
        self.order = None if ordered else np.argsort(ids, kind="stable")
        self.lookup = SortedIds(ids if ordered else ids[self.order])
        self.vecs = vecs

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        pos, found = self.lookup(ids)
        if not found.all():
            raise KeyError("rerank source lacks some ids")
        return read_rows(self.vecs, pos if self.order is None else self.order[pos])

    def warm(self) -> None:
        map_pages(self.vecs)


def read_rows(vecs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """vecs[rows] as float32, read in file order (a memmap reads faster so)."""
    if len(rows) < 2 or np.all(rows[1:] >= rows[:-1]):  # the usual case: sorted candidates
        return as_float32(vecs[rows])
    srt = np.argsort(rows)
    out = np.empty((len(rows), vecs.shape[1]), dtype=np.float32)
    out[srt] = as_float32(vecs[rows[srt]])
    return out


def map_pages(arr, *, step: int = 256 << 20) -> bool:
    """Map a memory-mapped array's pages into this process now (MADV_POPULATE_READ).

    A re-ranking read touches ~2000 rows scattered over the float16 copy; while their pages
    are not yet mapped each costs a page fault (5 ms a query at 10M vectors instead of
    0.6 ms). A long-running reader (`sfx-search serve`) maps them once at start: 0.35 s for
    10 GB in the page cache, a full read from disk otherwise. Called through ctypes so that
    other threads run meanwhile. Returns False where the kernel (< 5.14) or array cannot."""
    base = getattr(arr, "base", None)
    while base is not None and not hasattr(base, "madvise"):
        base = getattr(base, "base", None)
    if base is None or not len(arr):
        return False
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    page = mmap.PAGESIZE
    start = arr.ctypes.data // page * page
    end = arr.ctypes.data + arr.nbytes
    for at in range(start, end, step):
        if libc.madvise(at, min(step, end - at), getattr(mmap, "MADV_POPULATE_READ", 22)) != 0:
            return False
    return True


def as_float32(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float16 rows -> float32 (into `out` when given: a reused buffer spares the page faults
    of a fresh one, ~50 ms for 64k rows). numpy converts at ~1 ns an element (3 ms for the
    4000 candidates a query re-ranks); torch's vectorised cast is several times faster, so
    it is used when the process has already imported it (the query path has, for the text
    tower)."""
    torch = sys.modules.get("torch")
    if a.dtype == np.float16 and torch is not None and a.size >= 65_536:
        out = np.empty(a.shape, np.float32) if out is None else out
        with warnings.catch_warnings():  # a read-only memmap: torch only reads it here
            warnings.simplefilter("ignore", UserWarning)
            torch.from_numpy(out).copy_(torch.from_numpy(np.ascontiguousarray(a)))
        return out
    if out is None:
        return np.asarray(a, dtype=np.float32)
    out[...] = a
    return out


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b, through torch when the process has it (the query path has, for the text tower).

    numpy's OpenBLAS threads spin for a while after each product unless told otherwise before
    numpy loads (indexer/__init__.py does, but a program that imported numpy first cannot be
    helped so): on two cores they took them from the text tower of the next query, whose ops
    then ran 3-5x slower (a warm query 100-130 ms instead of ~45 ms). torch's own threads wait
    passively."""
    torch = sys.modules.get("torch")
    if torch is None:
        return a @ b
    return (torch.from_numpy(np.ascontiguousarray(a)) @ torch.from_numpy(np.ascontiguousarray(b))).numpy()


class VectorIndex:
    """int64 chunk ids -> unit vectors, searched by inner product."""

    def __init__(self, dim: int, *, memory: str | int = DEFAULT_MEMORY, kind: str = "auto",
                 exact_threshold: int = DEFAULT_EXACT_THRESHOLD,
                 recall_target: float = DEFAULT_RECALL, rerank: Rerank | None = None):
        self.dim = dim
        self.rerank = rerank
        self.meta: dict = dict(format_version=FORMAT_VERSION, dim=dim, metric="ip",
                               kind=kind, memory=parse_memory(memory),
                               exact_threshold=exact_threshold, recall_target=recall_target,
                               params={}, trained_n=0, tombstones=[], generation=None,
                               kind_request=kind)
        self._tomb: set[int] = set()
        self._mapped = False
        self.index = None
        self._make({"kind": "flat", "factory": "IDMap2,Flat"})

    # -- building -------------------------------------------------------------------------
    def _make(self, plan: dict) -> None:
        faiss = _faiss()
        self.index = faiss.index_factory(self.dim, plan["factory"], faiss.METRIC_INNER_PRODUCT)
        if plan["kind"] == "ivf-flat":
            faiss.extract_index_ivf(self.index).set_direct_map_type(faiss.DirectMap.Hashtable)
        if plan["kind"] == "hnsw":
            hnsw = faiss.downcast_index(self.index.index)
            hnsw.hnsw.efConstruction = 80
        if plan["kind"].startswith("ivf-pqfs"):
            # Codes of each vector's residual from its list's centroid (faiss's default), not of
            # the vector: measured on 3M clustered vectors, recall@10 0.951 against 0.876 with
            # the top 400 re-ranked, 0.990 against 0.983 with 4000, at the same speed (probing
            # every list too). The finer codes are what a dense 10M library needs.
            faiss.extract_index_ivf(self.index).by_residual = True
        ivf = faiss.extract_index_ivf(self.index) if "IVF" in plan["factory"] else None
        self.meta.update(kind=plan["kind"], factory=plan["factory"], params={},
                         by_residual=None if ivf is None else bool(ivf.by_residual),
                         quantizer=None if ivf is None else "hnsw" if "_HNSW" in plan["factory"] else "flat",
                         estimated_bytes=int(plan.get("bytes", 0)),
                         bytes_per_vector=plan.get("per_vector", 0),
                         coarse_bytes=plan.get("coarse", 0))
        self._tomb = set()

    def build(self, ids, vecs, *, queries: np.ndarray | None = None, seed: int = 0,
              generation=None) -> "VectorIndex":
        """Replace the contents with (ids, vecs); choose, train and tune the index.

        vecs may be a float16 memmap: it is read in chunks. `queries` (e.g. cached text
        vectors) are used for tuning; by default held-out vectors of the data are used.
        """
        ids = np.asarray(ids, dtype=np.int64)
        n = len(ids)
        plan = plan_index(n, self.dim, self.meta["memory"], kind=self.meta["kind_request"],
                          exact_threshold=self.meta["exact_threshold"])
        self._make(plan)
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        if "IVF" in plan["factory"]:
            ntrain = min(n, max(40 * plan["nlist"], 65_536 if "PQ" in plan["factory"] else 0))
            sample = np.sort(rng.choice(n, ntrain, replace=False))
            train = np.ascontiguousarray(vecs[sample], dtype=np.float32)
            faiss = _faiss()
            ivf = faiss.downcast_index(faiss.extract_index_ivf(self.index))
            ivf.cp.niter = 10
            if "PQ" in plan["factory"]:  # many small k-means (16 or 256 centroids): cheap
                ivf.pq.cp.niter, ivf.pq.cp.max_points_per_centroid = 10, 4096
            self.index.train(train)
            del train
        for s in range(0, n, _CHUNK):
            self._add_raw(ids[s:s + _CHUNK], vecs[s:s + _CHUNK])
        self._flat_quantizer()
        self.meta.update(trained_n=n, build_s=round(time.perf_counter() - t0, 2),
                         generation=generation)
        self._tune(ids, vecs, queries, rng)
        return self

    def tune(self, ids, vecs, *, queries: np.ndarray | None = None, seed: int = 0) -> "VectorIndex":
        """Tune the search settings again on the vectors the index holds (see build)."""
        self._tune(np.asarray(ids, dtype=np.int64), vecs, queries, np.random.default_rng(seed))
        return self

    def _flat_quantizer(self) -> None:
        """Swap an HNSW coarse quantizer for a flat one over the same centroids, once the bulk
        add is done. The graph makes assigning millions of vectors fast, but faiss's fast-scan
        IVF searches residual codes wrongly through it (inner product: recall@10 0.01 instead
        of 0.45 in a small trial; 0.003 at 10M). A flat scan of the centroids costs a query
        ~1 ms at 8192 lists."""
        faiss = _faiss()
        if "HNSW" not in self.meta["factory"] or "IVF" not in self.meta["factory"]:
            return
        ivf = faiss.extract_index_ivf(self.index)
        if not ivf.by_residual:
            return
        graph = faiss.downcast_index(ivf.quantizer)
        flat = faiss.IndexFlatIP(self.dim)
        flat.add(graph.storage.reconstruct_n(0, ivf.nlist))
        ivf.quantizer = flat
        ivf.own_fields = True
        flat.this.disown()  # the IVF index owns (and frees) it now
        self.meta["quantizer"] = "flat"

    def _tune(self, ids, vecs, queries, rng) -> None:
        kind, n, k = self.meta["kind"], len(ids), 10
        if kind == "flat" or n <= k:
            self.meta.update(recall_at_10=1.0, params={})
            return
        held_out = queries is None
        if held_out:
            pos = np.sort(rng.choice(n, min(500, n // 10), replace=False))
            queries, self_ids = np.asarray(vecs[pos], np.float32), ids[pos]
        else:
            queries, self_ids = np.asarray(queries, np.float32), None
        truth = _exact_topk(queries, ids, vecs, k, self_ids)
        target = self.meta["recall_target"]
        tried: list[dict] = []
        seen: dict[tuple, tuple[float, float]] = {}  # params -> (recall, ms a query)

        def measure(params: dict) -> tuple[float, float]:
            key = tuple(sorted(params.items()))
            if key not in seen:
                self.meta["params"] = params
                found = self._search_ids(queries, k + 1)
                # Latency as a reader sees it, one query a call: timing the batch instead
                # measured re-ranking every query's candidates at once (750k rows at 10M),
                # which ranked settings by memory traffic no single query has.
                times = []
                for row in queries[:_TUNE_TIMED]:
                    t = time.perf_counter()
                    self._search_ids(row[None], k + 1)
                    times.append(time.perf_counter() - t)
                seen[key] = (_recall(found, truth, k, self_ids), float(np.median(times)) * 1000)
                tried.append(dict(params, recall=round(seen[key][0], 4), ms=round(seen[key][1], 3)))
            return seen[key]

        def trial(params: dict) -> float:
            return measure(params)[0]

        def smallest(options: list[dict]) -> dict | None:
            """The first option reaching the target (recall grows along the list): bisection."""
            if trial(options[-1]) < target:
                return None
            lo, hi = 0, len(options) - 1
            while lo < hi:
                mid = (lo + hi) // 2
                if trial(options[mid]) >= target:
                    hi = mid
                else:
                    lo = mid + 1
            return options[hi]

        reached: list[dict] = []
        if kind == "hnsw":
            found = smallest([dict(efSearch=e) for e in (16, 32, 64, 128, 256, 512, 1024)])
            reached += [found] if found else []
        else:
            nlist = _faiss().extract_index_ivf(self.index).nlist
            # Steps of ~1.5x: at 10M a probe costs ~10 us, and a power-of-two grid leaves
            # the setting that just reaches the target up to 2x dearer than needed.
            grid = sorted({round(b * 2 ** e) for e in range(16) for b in (1, 1.5)})
            probes = [p for p in grid if p < nlist] + [nlist]
            factors = ([1] if kind == "ivf-flat" else [1, 4, 16, 64] if kind == "ivf-sq8"
                       else [8, 32, 100, 150, 200, 300, 400] if kind.startswith("ivf-pqfs")
                       else [4, 16, 64])
            saved_rerank = self.rerank
            if self.rerank is None and kind != "ivf-flat":
                self.rerank = ArrayRerank(ids, vecs)  # tune as the caller will search: re-ranked
                self.rerank.warm()  # and time it without page faults, as a server searches
            try:
                # The smallest re-ranking depth that reaches the target with every list probed,
                # then the smallest nprobe for it and for each deeper one (deeper re-ranking
                # allows fewer probes) while that keeps getting faster; the fastest wins.
                for f in factors:
                    options = [dict(nprobe=p, k_factor=f) for p in probes]
                    if reached:  # a deeper re-ranking reaches wherever a shallower one did
                        options = [o for o in options if o["nprobe"] <= reached[-1]["nprobe"]]
                    found = smallest(options)
                    if found is None:
                        continue
                    reached.append(found)
                    if len(reached) > 1 and measure(found)[1] >= measure(reached[-2])[1]:
                        break  # deeper re-ranking no longer pays for the probes it saves
            finally:
                self.rerank = saved_rerank
        if reached:
            params = min(reached, key=lambda p: measure(p)[1])
        else:  # target out of reach: take the most accurate setting
            key = max(seen, key=lambda kk: (seen[kk][0], -seen[kk][1]))
            params = dict(key)
            log.warning("index %s reaches recall@10 %.3f, below target %.2f",
                        self.meta["factory"], seen[key][0], target)
        recall = measure(params)[0]
        self.meta.update(recall_at_10=round(recall, 4), params=params, tuning=tried,
                         rerank=params.get("k_factor", 1) > 1, tuner=TUNER_VERSION,
                         tuned_on=dict(queries=len(queries), held_out=held_out))
        log.info("chose %s %s recall@10=%.3f", self.meta["factory"], params, recall)

    # -- changing -------------------------------------------------------------------------
    def _add_raw(self, ids, vecs) -> None:
        self.index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32),
                                np.ascontiguousarray(ids, dtype=np.int64))

    def add(self, ids, vecs) -> None:
        """Add new ids (never present before) to the trained index, without retraining."""
        ids = np.asarray(ids, dtype=np.int64)
        if self._tomb and self._tomb.intersection(ids.tolist()):
            raise ValueError("an id removed from an HNSW index cannot be re-added: rebuild")
        self._own()
        for s in range(0, len(ids), _CHUNK):
            self._add_raw(ids[s:s + _CHUNK], vecs[s:s + _CHUNK])

    def remove(self, ids) -> int:
        """Remove ids; returns how many were present (HNSW: tombstoned)."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if self.meta["kind"] == "hnsw":
            new = set(ids.tolist()) - self._tomb
            self._tomb |= new
            return len(new)
        self._own()
        return int(self.index.remove_ids(ids))  # faiss picks the selector its direct map needs

    @property
    def ntotal(self) -> int:
        """Live vectors (tombstoned ones excluded)."""
        return int(self.index.ntotal) - len(self._tomb)

    def retrain_reason(self) -> str | None:
        m, n = self.meta, self.ntotal
        if m["kind"] == "flat":
            return f"{n} vectors exceed the exact threshold" if n > m["exact_threshold"] else None
        if n > 2 * m["trained_n"]:
            return f"{n} vectors, more than twice the {m['trained_n']} it was trained on"
        if n < m["trained_n"] / 2:
            return f"{n} vectors, less than half the {m['trained_n']} it was trained on"
        if len(self._tomb) > TOMBSTONE_SHARE * self.index.ntotal:
            return f"{len(self._tomb)} removed vectors still in the HNSW graph"
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

    def _search_ids(self, q, k):
        return self._search(q, k, None)[1]

    def _selector(self, allowed):
        """(selector or None, the parts to keep alive while it is used: SWIG does not)."""
        faiss = _faiss()
        sel = None if allowed is None else faiss.IDSelectorBatch(allowed)
        if not self._tomb:
            return sel, ()
        batch = faiss.IDSelectorBatch(np.fromiter(self._tomb, np.int64))
        live = faiss.IDSelectorNot(batch)
        return (live if sel is None else faiss.IDSelectorAnd(sel, live)), (sel, batch, live)

    def _search(self, q, k, allowed):
        faiss, kind, p = _faiss(), self.meta["kind"], self.meta["params"]
        m = len(q)
        if allowed is not None and len(allowed) == 0 or self.index.ntotal == 0:
            return np.full((m, k), -np.inf, np.float32), np.full((m, k), -1, np.int64)
        kf = p.get("k_factor", 1) if self.rerank is not None else 1
        sel, _parts = self._selector(allowed)
        # k_factor was tuned for the top 10: a deep k (search fetches hundreds of chunks to
        # find n distinct files) needs a margin over k, not k times the factor.
        kk = min(k * kf, max(2 * k, 10 * kf))
        if kind == "flat":
            params = faiss.SearchParameters(sel=sel) if sel else None
            if m < 20:  # below faiss's BLAS threshold, where a second thread halves the speed
                with _omp_threads(1):
                    D, I = self.index.search(q, kk, params=params)
            else:
                D, I = self.index.search(q, kk, params=params)
        elif kind == "hnsw":
            ef = max(p.get("efSearch", 64), kk)
            while True:
                D, I = self.index.search(q, kk, params=faiss.SearchParametersHNSW(sel=sel, efSearch=ef))
                if sel is None or (I[:, -1] >= 0).all() or ef >= 4096:
                    break
                ef *= 4
            if allowed is not None and (I[:, -1] < 0).any() and len(allowed) <= 100_000:
                return self._exact_over(q, k, allowed)
        else:
            ivf = faiss.downcast_index(faiss.extract_index_ivf(self.index))
            nlist = ivf.nlist
            if hasattr(ivf, "implem"):  # fast-scan
                # Split the probed lists of even a single query over the threads (faiss's
                # implem 14; 15 gathers a deep top-k in a reservoir instead of a heap): the
                # default scans one query on one thread. At 10M, nprobe 512, top 2000 on
                # two threads: 4.8 ms a query instead of 6.6 ms.
                ivf.implem = 15 if kk > 20 else 14
            nprobe = p.get("nprobe", 1)
            if allowed is not None:  # expected hits per query ~ |allowed| * nprobe / nlist
                nprobe = max(nprobe, math.ceil(2 * nlist * kk / max(len(allowed), 1)))
            while True:
                sp = faiss.SearchParametersIVF(sel=sel, nprobe=min(nprobe, nlist))
                D, I = self.index.search(q, kk, params=sp)
                if allowed is None or (I[:, -1] >= 0).all() or nprobe >= nlist:
                    break
                nprobe *= 4
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

    def _exact_over(self, q, k, allowed):
        live = np.array([i for i in allowed.tolist() if i not in self._tomb], np.int64)
        have, vecs = [], []
        for i in live.tolist():
            try:
                vecs.append(self.index.reconstruct(i))
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

    def reconstruct(self, ids) -> np.ndarray:
        """Stored vectors of ids (exact for flat, HNSW and IVF-Flat; else via the rerank source)."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.rerank is not None and self.meta["kind"] not in ("flat", "hnsw", "ivf-flat"):
            return np.asarray(self.rerank(ids), np.float32)
        if self.meta["kind"] not in ("flat", "hnsw", "ivf-flat"):
            raise NotImplementedError(f"{self.meta['factory']} keeps no exact vectors")
        try:
            return np.stack([self.index.reconstruct(int(i)) for i in ids]) if len(ids) else \
                np.zeros((0, self.dim), np.float32)
        except RuntimeError as e:
            raise KeyError(f"id not in index: {e}") from None

    # -- persistence ----------------------------------------------------------------------
    def save(self, path, *, generation=None) -> None:
        """Write index and meta atomically (tmp in the same dir, fsync, rename)."""
        faiss, path = _faiss(), Path(path)
        if generation is not None:
            self.meta["generation"] = generation
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        os.close(fd)
        try:
            # Through Python file I/O: a full disk raises OSError here instead of leaving a
            # short file that would then be renamed into place.
            with open(tmp, "wb") as fh:
                writer = faiss.PyCallbackIOWriter(fh.write)
                faiss.write_index(self.index, writer)
                del writer
                fh.flush()
                os.fsync(fh.fileno())
            meta = dict(self.meta, ntotal=self.ntotal, tombstones=sorted(self._tomb),
                        index_bytes=os.path.getsize(tmp), index_digest=_digest(tmp),
                        faiss_version=faiss.__version__, saved_at=time.time())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _atomic_write(meta_path(path), json.dumps(meta, indent=1).encode())
        _fsync(path.parent)
        self.meta = meta

    @classmethod
    def load(cls, path, *, mmap: bool = True, rerank: Rerank | None = None) -> "VectorIndex":
        """Read a saved index; IndexCorrupt if it is truncated, damaged or not its meta's."""
        faiss, path = _faiss(), Path(path)
        try:
            meta = json.loads(meta_path(path).read_text())
            size, digest = meta["index_bytes"], meta["index_digest"]
        except FileNotFoundError:
            raise IndexCorrupt(f"{path}: index meta missing; rebuild the index") from None
        except (ValueError, KeyError, TypeError) as e:
            raise IndexCorrupt(f"{meta_path(path)}: unreadable meta ({e}); rebuild the index") from None
        if meta.get("format_version") != FORMAT_VERSION:
            raise IndexCorrupt(f"{path}: index format {meta.get('format_version')} unknown; rebuild")
        try:
            actual = os.path.getsize(path)
        except FileNotFoundError:
            raise IndexCorrupt(f"{path}: index file missing; rebuild the index") from None
        if actual != size or _digest(path) != digest:
            raise IndexCorrupt(f"{path}: index file is truncated or does not match its meta "
                               f"({actual} bytes, expected {size}); rebuild the index")
        flags = faiss.IO_FLAG_MMAP_IFC if mmap and meta["kind"] == "flat" else 0
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError as e:
            raise IndexCorrupt(f"{path}: faiss cannot read it ({str(e).splitlines()[0]}); "
                               "rebuild the index") from None
        if index.d != meta["dim"] or index.ntotal - len(meta["tombstones"]) != meta["ntotal"]:
            raise IndexCorrupt(f"{path}: index and meta disagree; rebuild the index")
        self = cls.__new__(cls)
        self.dim, self.rerank, self.index, self.meta = meta["dim"], rerank, index, meta
        self._tomb, self._mapped = set(meta["tombstones"]), bool(flags)
        return self

    def _own(self) -> None:
        """A memory-mapped flat index is read-only: copy it into RAM before changing it."""
        if not self._mapped:
            return
        faiss = _faiss()
        flat = faiss.downcast_index(self.index.index)
        xb = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * self.dim).reshape(-1, self.dim)
        owned = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        owned.add_with_ids(np.array(xb), faiss.vector_to_array(self.index.id_map))
        self.index, self._mapped = owned, False


def meta_path(path) -> Path:
    return Path(str(path) + ".meta.json")


def _digest(path) -> str:
    """Cheap identity of an index file: its size and its first and last MiB."""
    h, size = hashlib.sha256(), os.path.getsize(path)
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    return h.hexdigest()[:32]


def _fsync(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _exact_topk(q, ids, vecs, k, self_ids=None) -> np.ndarray:
    """Exact top-k ids by streaming over vecs (self matches dropped when self_ids given)."""
    kk = k + (self_ids is not None)
    best_s = np.full((len(q), kk), -np.inf, np.float32)
    best_i = np.full((len(q), kk), -1, np.int64)
    buf = np.empty((min(_CHUNK, len(ids)), q.shape[1]), np.float32)
    for s in range(0, len(ids), _CHUNK):
        part = vecs[s:s + _CHUNK]
        # rows x queries, then transposed as a view: no transposed copy of the rows
        sc = matmul(as_float32(part, out=buf[:len(part)]), q.T).T
        both_s = np.concatenate([best_s, sc], 1)
        both_i = np.concatenate([best_i, np.broadcast_to(ids[s:s + _CHUNK], sc.shape)], 1)
        top = np.argpartition(-both_s, kk - 1, axis=1)[:, :kk]
        best_s, best_i = np.take_along_axis(both_s, top, 1), np.take_along_axis(both_i, top, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return _drop_self(np.take_along_axis(best_i, order, 1), self_ids, k)


def _drop_self(found, self_ids, k):
    if self_ids is None:
        return found[:, :k]
    return np.stack([r[r != s][:k] for r, s in zip(found, self_ids)])


def _recall(found, truth, k, self_ids) -> float:
    found = _drop_self(found, self_ids, k)
    return float(np.mean([len(set(f[f >= 0]) & set(t[t >= 0])) / k for f, t in zip(found, truth)]))

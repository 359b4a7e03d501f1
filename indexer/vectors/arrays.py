"""Reading exact vectors fast: id lookup, row reads from memory maps, casts and products.

These serve the re-ranking of approximate candidates (a float16 copy of the catalog's
vectors, memory-mapped) and the exact top-k of the tuner. Figures behind the choices made
here are in docs/benchmarks.md ("re-ranking reads").
"""

from __future__ import annotations

import sys
import warnings
from typing import Callable

import numpy as np

# Exact vectors for re-ranking: int64 ids (n,) -> (n, d) float16/float32, same order.
Rerank = Callable[[np.ndarray], np.ndarray]

MADV_POPULATE_READ = 22        # Linux >= 5.14; the mmap module names it from Python 3.13 on
MAP_STEP_BYTES = 256 << 20     # pages mapped per madvise call, so other threads run between
FAST_CAST_MIN = 65_536         # elements from which torch's or faiss's cast beats numpy's


class SortedIds:
    """Positions of ids in a sorted, duplicate-free int64 array (in RAM or memory-mapped).

    A plain binary search over millions of ids misses the cache at each of its last ~10
    steps; here a coarse search in every 64th id (an array that stays in cache) finds each
    id's block and one 512-byte read finishes it. Ids that are exactly consecutive (a fresh
    catalog) need no search."""

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


def map_pages(arr, *, step: int = MAP_STEP_BYTES) -> bool:
    """Map a memory-mapped array's pages into this process now (MADV_POPULATE_READ).

    A re-ranking read touches ~2000 rows scattered over the float16 copy; while their pages
    are not yet mapped each costs a page fault, which dominates a query on a large library.
    A long-running reader (`sfx-search serve`) maps them once at start. Called through ctypes
    so that other threads run meanwhile. Returns False where the kernel (< 5.14) or array
    cannot."""
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
        advice = getattr(mmap, "MADV_POPULATE_READ", MADV_POPULATE_READ)
        if libc.madvise(at, min(step, end - at), advice) != 0:
            return False
    return True


def as_float32(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float16 rows -> float32 (into `out` when given: a reused buffer spares the page faults
    of a fresh one), the same numbers whichever way. numpy converts one element at a time
    (~2 ns); faiss's float16 decoder (always loaded here) is ~2x faster and torch's vectorised
    cast ~9x, so torch is used when the process has already imported it (a query on the torch
    runtime) and faiss otherwise (a query on OpenVINO imports no torch)."""
    if a.dtype != np.float16 or a.ndim != 2 or a.size < FAST_CAST_MIN:
        if out is None:
            return np.asarray(a, dtype=np.float32)
        out[...] = a
        return out
    if out is not None and not out.flags.c_contiguous:  # the fast casts write rows in place
        out[...] = as_float32(a)
        return out
    out = np.empty(a.shape, np.float32) if out is None else out
    torch = sys.modules.get("torch")
    if torch is not None:
        with warnings.catch_warnings():  # a read-only memmap: torch only reads it here
            warnings.simplefilter("ignore", UserWarning)
            torch.from_numpy(out).copy_(torch.from_numpy(np.ascontiguousarray(a)))
        return out
    from .runtime import faiss_lib

    codes = np.ascontiguousarray(a).view(np.uint8)
    _fp16_decoder(a.shape[1]).decode_c(faiss_lib().swig_ptr(codes), faiss_lib().swig_ptr(out), len(a))
    return out


_DECODERS: dict = {}


def _fp16_decoder(d: int):
    """faiss's float16 scalar quantizer for rows of width d: its decode is the float16 ->
    float32 cast, in C++."""
    if d not in _DECODERS:
        from .runtime import faiss_lib

        faiss = faiss_lib()
        _DECODERS[d] = faiss.ScalarQuantizer(d, faiss.ScalarQuantizer.QT_fp16)
    return _DECODERS[d]


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b, through torch when the process has it (the query path has, for the text tower).

    numpy's OpenBLAS threads spin for a while after each product unless told otherwise before
    numpy loads (indexer/__init__.py does, but a program that imported numpy first cannot be
    helped so): on a small machine they took the cores from the text tower of the next
    query, whose ops then ran several times slower. torch's own threads wait passively."""
    torch = sys.modules.get("torch")
    if torch is None:
        return a @ b
    return (torch.from_numpy(np.ascontiguousarray(a)) @ torch.from_numpy(np.ascontiguousarray(b))).numpy()

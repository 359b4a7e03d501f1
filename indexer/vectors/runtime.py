"""faiss, loaded lazily and set up once: OpenMP wait policy and thread count.

`sfx-search` start-up must not pay for importing faiss before it searches, so every module
of the package reaches faiss through `faiss_lib()`.
"""

from __future__ import annotations

import contextlib
import os

ENV_THREADS = "SFX_FAISS_THREADS"  # faiss's OpenMP threads; 0 or unset: every core we may use

_threads_set = False


def faiss_lib():
    """The faiss module, with this process's thread settings applied on first use."""
    global _threads_set
    # Busy-waiting OpenMP threads collapse on a machine shared with other work (minutes
    # instead of seconds; docs/benchmarks.md); passive waiting costs microseconds per call.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import faiss

    if not _threads_set:
        n = int(os.environ.get(ENV_THREADS, "0")) or len(os.sched_getaffinity(0))
        faiss.omp_set_num_threads(n)
        _threads_set = True
    return faiss


@contextlib.contextmanager
def omp_threads(n: int):
    """Run faiss on n OpenMP threads meanwhile. The setting is the calling thread's own
    (OpenMP keeps it per thread), so other threads' searches are not touched.

    A flat search of one query is faster on one thread than on two, whatever the wait
    policy (docs/benchmarks.md, "single-query flat search")."""
    faiss = faiss_lib()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)

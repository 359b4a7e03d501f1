"""sfx-index: the write path and the shared core (scan, decode, embed, catalog, vectors).

Nothing in this package imports `search`; the read path builds on this one.
"""

import os

__version__ = "0.1.0"

# OpenMP threads that busy-wait between parallel regions (libgomp's default, used by torch
# and faiss) collapse when the cores are shared: on 2 busy cores a 35 ms text query took
# 0.7-0.9 s, and 37 ms with passive waiting. Sleeping at once costs a wake-up per region
# instead (43-57 ms on a quiet machine), so threads spin briefly first (10 000 rounds,
# ~10-20 us: 25-33 ms). Set before torch or faiss is imported (both read them once); a
# user's own settings win.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
# numpy's OpenBLAS threads spin for ~0.1 s after each call by default: a search's small
# re-ranking product then starved the text tower that ran next (105 ms instead of 55).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # 2**4 cycles, then sleep

"""sfx-index: the write path and the shared core (scan, decode, embed, catalog, vectors).

Nothing in this package imports `search`; the read path builds on this one.
"""

import os

__version__ = "0.1.0"

# OpenMP threads that busy-wait between parallel regions (libgomp's default, used by torch
# and faiss) collapse when the cores are shared: a text query takes many times longer.
# Sleeping at once costs a wake-up per region instead, so threads spin briefly first
# (10 000 rounds, some microseconds; figures in docs/benchmarks.md, "OpenMP waiting").
# Set before torch or faiss is imported (both read them once); a user's own settings win.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
# numpy's OpenBLAS threads spin for a while after each call by default: a search's small
# re-ranking product then starved the text tower that ran next (docs/benchmarks.md).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # 2**4 cycles, then sleep

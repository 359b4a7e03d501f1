"""sfx-index: the write path and the shared core (scan, decode, embed, catalog, vectors).

Nothing in this package imports `search`; the read path builds on this one.
"""

import os

__version__ = "0.1.0"

# OpenMP threads that busy-wait between parallel regions (libgomp's default, used by torch
# and faiss) collapse when the cores are shared: on 2 busy cores a 35 ms text query took
# 0.7-0.9 s, and 37 ms with passive waiting. Set before torch or faiss is imported (both
# read it once); a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

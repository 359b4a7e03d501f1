"""sfx-index: the write path and the shared core (scan, decode, embed, catalog, vectors).

Nothing in this package imports `search`; the read path builds on this one.
"""

__version__ = "0.1.0"

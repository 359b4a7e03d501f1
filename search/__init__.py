"""sfx-search: the read path (query, tagging, audition page) over an sfx-index catalog."""

from indexer import __version__

__all__ = ["__version__"]

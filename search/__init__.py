"""sfx-search: the read path (query, tagging, audition page) over an sfx-index catalog.

    from search import Library
    with Library.open() as lib:
        results = lib.search("metal scraping in stone room", n=20)
"""

from indexer import __version__

__all__ = ["Library", "Result", "Filters", "__version__"]


def __getattr__(name):
    # Lazy, so that `import search` (and the CLI's server hand-off) stays light.
    if name == "Library":
        from .query import Library

        return Library
    if name == "Result":
        from .results import Result

        return Result
    if name == "Filters":
        from .filters import Filters

        return Filters
    raise AttributeError(name)

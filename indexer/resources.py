"""Files the program reads at run time, found wherever the package is installed.

The repository's top-level `data/` folder (UCS taxonomy, prompt templates, example labels)
is installed as the package `indexer.data` (setup.py maps it), so these functions read it
through importlib.resources: from a wheel in a fresh virtual environment, a pipx install or
an editable checkout alike, never by a path relative to the source tree.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+
    from importlib.abc import Traversable

DATA_PACKAGE = "indexer.data"


def data_file(*parts: str) -> "Traversable":
    """The installed data file `parts` (e.g. "taxonomies", "ucs.csv"); open it with `.open()`."""
    node = files(DATA_PACKAGE)
    for part in parts:
        node = node / part
    return node


def read_data_text(*parts: str) -> str:
    return data_file(*parts).read_text(encoding="utf-8")

"""The catalog follows what write-meta, rename-ucs and undo changed, at once and without a model.

A written file keeps its chunks and vectors (its audio is proven unchanged): only its stored
metadata, keyword text, stat and hashes are replaced, so keyword search, hybrid search and
the page show the new values immediately. A renamed file keeps its row under its new name.
Files the catalog does not hold are left to the next `sfx-index build`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..audiohash import audio_hash
from ..metadata import read_metadata
from .atomic import file_hash

log = logging.getLogger(__name__)


def open_catalog_if_any(settings):
    """The index's catalog when there is one, else None (write-back works without an index)."""
    from ..catalog import Catalog, CatalogError

    if not settings.db_url and not (Path(settings.index_dir) / "catalog.sqlite").exists():
        return None
    try:
        return Catalog.open(settings.catalog_url, create=False)
    except CatalogError as e:
        log.debug("no catalog to update: %s", e)
        return None


def sync_written(catalog, paths: list[str]) -> int:
    """Refresh metadata of these files in the catalog; returns how many it holds."""
    n = 0
    for path in paths:
        row = catalog.file_by_path(path)
        if row is None:
            continue
        st = os.stat(path)
        catalog.refresh_metadata(row.id, size=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=file_hash(path),
                                 metadata=read_metadata(path), audio_hash=audio_hash(path))
        n += 1
    return n


def sync_renamed(catalog, moves: list[tuple[str, str]]) -> int:
    """Give catalogued files their new names (same root only); returns how many moved."""
    n = 0
    for old, new in moves:
        row = catalog.file_by_path(old)
        if row is None:
            continue
        try:
            rel = Path(os.path.abspath(new)).relative_to(row.root).as_posix()
        except ValueError:
            continue  # moved out of its root: the next build sees a deletion and a new file
        st = os.stat(new)
        if catalog.rename_file(row.id, rel, size=st.st_size, mtime_ns=st.st_mtime_ns, metadata=read_metadata(new)):
            n += 1
    return n


def sync_undo(catalog, rows: list[dict]) -> None:
    """After an undo: files restored get their old metadata back, renames go back."""
    sync_written(catalog, [r["path"] for r in rows if r.get("status") == "restored"])
    sync_renamed(catalog, [tuple(m) for r in rows if r.get("status") == "renamed back" for m in r.get("moves", [])])

"""Saving and loading an index: the faiss file and its JSON meta sidecar, written atomically.

The sidecar records what the file must be (size, a digest of its ends, dim, count,
generation), so a truncated, damaged or foreign file is refused with IndexCorrupt instead of
being searched; the catalog can always rebuild it (DESIGN invariant 1).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from indexer.config import UserError

from .runtime import faiss_lib

FORMAT_VERSION = 1
DIGEST_SPAN = 1 << 20  # bytes hashed at each end of the file


class IndexCorrupt(UserError):
    """The index file is unreadable or disagrees with its meta sidecar; rebuild it."""


def meta_path(path) -> Path:
    return Path(str(path) + ".meta.json")


def saved_generation(path) -> int | None:
    """The catalog generation recorded beside a saved index, without loading it."""
    try:
        return json.loads(meta_path(path).read_text()).get("generation")
    except (OSError, ValueError):
        return None


def file_digest(path) -> str:
    """Cheap identity of an index file: its size and its first and last MiB."""
    h, size = hashlib.sha256(), os.path.getsize(path)
    with open(path, "rb") as f:
        h.update(f.read(DIGEST_SPAN))
        f.seek(max(0, size - DIGEST_SPAN))
        h.update(f.read(DIGEST_SPAN))
    return h.hexdigest()[:32]


def save(index, meta: dict, path) -> dict:
    """Write the faiss index and its meta atomically (tmp in the same dir, fsync, rename);
    returns the meta as written (with size, digest and save time)."""
    faiss, path = faiss_lib(), Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        # Through Python file I/O: a full disk raises OSError here instead of leaving a
        # short file that would then be renamed into place.
        with open(tmp, "wb") as fh:
            writer = faiss.PyCallbackIOWriter(fh.write)
            faiss.write_index(index, writer)
            del writer
            fh.flush()
            os.fsync(fh.fileno())
        meta = dict(meta, index_bytes=os.path.getsize(tmp), index_digest=file_digest(tmp),
                    faiss_version=faiss.__version__, saved_at=time.time())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    atomic_write(meta_path(path), json.dumps(meta, indent=1).encode())
    fsync_dir(path.parent)
    return meta


def load(path, *, mmap: bool) -> tuple[object, dict, bool]:
    """(faiss index, meta, memory-mapped) of a saved index; IndexCorrupt if it is truncated,
    damaged or not its meta's. `mmap` maps it when its kind allows (mmap(meta) -> bool)."""
    faiss, path = faiss_lib(), Path(path)
    try:
        meta = json.loads(meta_path(path).read_text())
        size, digest = meta["index_bytes"], meta["index_digest"]
    except FileNotFoundError:
        raise IndexCorrupt(f"{path}: index meta missing; rebuild the index") from None
    except (ValueError, KeyError, TypeError) as e:
        raise IndexCorrupt(f"{meta_path(path)}: unreadable meta ({e}); rebuild the index") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise IndexCorrupt(f"{path}: index format {meta.get('format_version')} unknown; rebuild")
    try:
        actual = os.path.getsize(path)
    except FileNotFoundError:
        raise IndexCorrupt(f"{path}: index file missing; rebuild the index") from None
    if actual != size or file_digest(path) != digest:
        raise IndexCorrupt(f"{path}: index file is truncated or does not match its meta "
                           f"({actual} bytes, expected {size}); rebuild the index")
    flags = faiss.IO_FLAG_MMAP_IFC if mmap(meta) else 0
    try:
        index = faiss.read_index(str(path), flags)
    except RuntimeError as e:
        raise IndexCorrupt(f"{path}: faiss cannot read it ({str(e).splitlines()[0]}); "
                           "rebuild the index") from None
    if index.d != meta["dim"] or index.ntotal - len(meta["tombstones"]) != meta["ntotal"]:
        raise IndexCorrupt(f"{path}: index and meta disagree; rebuild the index")
    return index, meta, bool(flags)


def fsync_dir(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""The typed rows the catalog hands out and takes in (plain dataclasses, no SQL)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .encoding import rel_from_db


@dataclass(frozen=True)
class ModelRecord:
    model_id: str
    config_hash: str
    frontend: dict
    dim: int

    @classmethod
    def from_fingerprint(cls, fp: dict, dim: int) -> "ModelRecord":
        return cls(fp["model_id"], fp["config_hash"], fp["frontend"], int(dim))

    def key(self) -> str:
        """The identity of the vector space: checkpoint config + frontend settings."""
        return f"{self.config_hash}:{json.dumps(self.frontend, sort_keys=True)}"


@dataclass(frozen=True)
class Root:
    id: int
    path: str


class FileState(NamedTuple):
    """What the reconcile step needs of a catalogued file: the stat facts and identity.

    A named tuple: `FileState._make(row)` builds one from the driver's row in C, far cheaper
    than a dataclass's __init__ when a rerun reads a million of them."""

    id: int
    rel: str
    size: int
    mtime_ns: int
    content_hash: str | None
    status: str


@dataclass
class FileRow:
    id: int
    root_id: int
    root: str
    rel: str
    size: int
    mtime_ns: int
    content_hash: str | None
    duration_s: float | None
    sample_rate: int | None
    channels: int | None
    subtype: str | None
    container: str | None
    status: str
    error: str | None
    decoder: str | None = None  # libsndfile | ffmpeg
    truncated_at_s: float | None = None  # set when the file breaks part way (indexed up to here)

    @property
    def path(self) -> str:
        return str(Path(self.root) / self.rel)


def file_row(row) -> FileRow:
    """A FileRow from a row of `files.file_select()`, its stored name decoded."""
    r = FileRow(*row)
    r.rel = rel_from_db(r.rel)
    return r


@dataclass(frozen=True)
class ChunkRow:
    id: int
    file_id: int
    idx: int
    start_s: float
    end_s: float


@dataclass
class FileInfo:
    """Facts about a decoded file, written with its chunks."""

    duration_s: float
    sample_rate: int
    channels: int
    subtype: str
    container: str
    decoder: str | None = None
    truncated_at_s: float | None = None


@dataclass(frozen=True)
class TagRow:
    file_id: int
    label: str
    cat_id: str | None
    score: float


@dataclass
class TagSetInfo:
    set_name: str
    source: str
    model: str | None
    labels: int
    files: int
    tags: int
    created_at: float | None


@dataclass
class TaggedFile:
    """One file carrying a label, for review and export (user decisions folded in)."""

    file_id: int
    path: str
    label: str
    cat_id: str | None
    score: float
    set_name: str
    source: str
    decision: str | None = None  # "accepted" | "rejected" | None


@dataclass
class HeadRecord:
    name: str
    model_key: str
    blob: bytes
    info: str | None
    created_at: float | None


@dataclass(frozen=True)
class CollectionInfo:
    id: int
    name: str
    items: int
    created_at: float | None


@dataclass(frozen=True)
class CollectionItem:
    """A file or a moment in a collection, as stored: its bytes' hash and where it was last seen."""

    id: int
    collection_id: int
    position: int
    content_hash: str | None
    path: str
    start_s: float | None
    end_s: float | None

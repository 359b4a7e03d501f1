"""The catalog: SQLAlchemy schema, migrations and the Catalog API. The only package that holds SQL.

The catalog is the source of truth (DESIGN.md invariant 1): roots, files, chunks with their
vectors, metadata, the model record, cached text vectors and tags. The FAISS file is a cache
of the chunk vectors and is rebuilt from here whenever its recorded `generation` differs.

SQLite (WAL) by default; PostgreSQL when the URL says so. Keyword search uses FTS5 on SQLite
and a tsvector GIN index on PostgreSQL.

`Catalog` is composed of one part per concern (docs/catalog.md says where a change goes):

    db.py           open, integrity check, migrate on open, transactions, meta, model record
    schema.py       the current tables            migrations.py  append-only steps that build them
    rows.py         typed rows                    encoding.py    stored names and vector bytes
    batching.py     IN lists in parts, driver rows, the GC pause (hot read paths)
    files.py        roots and files               chunks.py      chunks and vectors
    keywords.py     metadata and keyword search   filters.py     result filters as SQL
    keyword_ranker.py  plain keyword queries ranked in memory (long-running readers)
    textvectors.py  the text-vector cache         tags.py        tags and trained heads
    reports.py      counts and failures           refresh.py     metadata / name changes, vectors kept
    embedders.py    the runtimes and precisions that embedded the vectors
    measurements.py  measured sound, fingerprints
    collections.py  named lists of files or moments
"""

from __future__ import annotations

from ..config import safe_text
from .batching import gc_paused
from .chunks import ChunksMixin
from .collections import CollectionsMixin
from .db import CatalogError, Database, ModelMismatch
from .embedders import EmbeddersMixin, EmbeddingMixMismatch
from .encoding import decode_vectors, encode_vectors, rel_from_db, rel_to_db
from .files import FilesMixin
from .filters import FiltersMixin
from .keywords import KeywordsMixin, fts_words, keyword_text
from .measurements import MEASURE_COLUMNS, MeasurementsMixin
from .migrations import MIGRATIONS, SCHEMA_VERSION
from .refresh import RefreshMixin
from .reports import ReportsMixin
from .rows import (
    ChunkRow,
    CollectionInfo,
    CollectionItem,
    FileInfo,
    FileRow,
    FileState,
    HeadRecord,
    ModelRecord,
    Root,
    TaggedFile,
    TagRow,
    TagSetInfo,
)
from .schema import tables
from .tags import MACHINE_SOURCES, USER_SET, TagsMixin
from .textvectors import TextVectorsMixin


class Catalog(
    CollectionsMixin, TagsMixin, TextVectorsMixin, FiltersMixin, KeywordsMixin, ChunksMixin, FilesMixin, RefreshMixin,
    ReportsMixin, EmbeddersMixin, MeasurementsMixin, Database,
):
    """Typed access to one catalog database. Thread-safe for reads; one writer at a time."""


__all__ = [
    "Catalog", "CatalogError", "ModelMismatch", "EmbeddingMixMismatch", "ModelRecord", "Root", "FileState", "FileRow", "ChunkRow",
    "FileInfo", "CollectionInfo", "CollectionItem", "TagRow", "TagSetInfo", "TaggedFile", "HeadRecord", "MACHINE_SOURCES", "USER_SET",
    "MIGRATIONS", "SCHEMA_VERSION", "tables", "gc_paused", "rel_to_db", "rel_from_db", "encode_vectors",
    "decode_vectors", "fts_words", "keyword_text", "safe_text", "MEASURE_COLUMNS",
]

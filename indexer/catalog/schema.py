"""The catalog's tables as they are now (SQLAlchemy Core): what the queries address.

This describes the current schema; it does not create it. Databases are created and upgraded
only by the append-only steps in `migrations.py`, and a test checks that those steps build
exactly these tables, columns and indexes. A schema change is therefore two edits: the
definition here and a new migration (see docs/catalog.md).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

sa.Table("meta", metadata, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))

sa.Table(
    "roots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("path", sa.Text, nullable=False, unique=True),
    sa.Column("added_at", sa.Float),
)

sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("root_id", sa.Integer, sa.ForeignKey("roots.id"), nullable=False),
    sa.Column("rel", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("content_hash", sa.String(64)),
    sa.Column("duration_s", sa.Float),
    sa.Column("sample_rate", sa.Integer),
    sa.Column("channels", sa.Integer),
    sa.Column("subtype", sa.String(32)),
    sa.Column("container", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),  # ok | failed
    sa.Column("error", sa.Text),
    sa.Column("indexed_at", sa.Float),
    sa.Column("audio_hash", sa.String(32)),  # hash of the coded audio alone (indexer.audiohash)
    # Measured sound (indexer/measure.py, docs/hygiene.md); measured = the analysis version,
    # NULL until measured (a catalog from before migration 3 is measured by the next build).
    sa.Column("loudness_lufs", sa.Float),
    sa.Column("true_peak_dbtp", sa.Float),
    sa.Column("sample_peak_dbfs", sa.Float),
    sa.Column("clipped_samples", sa.Integer),
    sa.Column("dc_offset", sa.Float),
    sa.Column("silence_head_s", sa.Float),
    sa.Column("silence_tail_s", sa.Float),
    sa.Column("loudness_range_lu", sa.Float),
    sa.Column("measured", sa.Integer),
    sa.Column("decoder", sa.String(16)),  # libsndfile | ffmpeg (migration 5)
    sa.Column("truncated_at_s", sa.Float),  # a file cut off part way is indexed up to here
    sa.UniqueConstraint("root_id", "rel", name="uq_files_root_rel"),
    sa.Index("ix_files_hash", "content_hash"),
    sa.Index("ix_files_status", "status"),
)

sa.Table(
    "chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("file_id", sa.Integer, sa.ForeignKey("files.id"), nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("start_s", sa.Float, nullable=False),
    sa.Column("end_s", sa.Float, nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),
    sa.Index("ix_chunks_file", "file_id"),
    # Never reuse a deleted chunk's id: FAISS ids must not come back meaning another sound.
    sqlite_autoincrement=True,
)

# A file's audio fingerprint (indexer/fingerprint.py) for near-duplicates.
sa.Table(
    "fingerprints",
    metadata,
    sa.Column("file_id", sa.Integer, sa.ForeignKey("files.id"), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

sa.Table(
    "file_meta",
    metadata,
    sa.Column("file_id", sa.Integer, sa.ForeignKey("files.id"), primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text),
)

sa.Table(
    "text_vectors",
    metadata,
    sa.Column("model_key", sa.String(512), primary_key=True),
    sa.Column("text", sa.Text, primary_key=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)

sa.Table(
    "tags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("file_id", sa.Integer, sa.ForeignKey("files.id"), nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("cat_id", sa.String(64)),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("set_name", sa.String(128), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # zero-shot | head | user
    sa.Column("model", sa.String(128)),
    sa.Column("created_at", sa.Float),
    sa.Index("ix_tags_file", "file_id"),
    sa.Index("ix_tags_label", "label"),
    sa.Index("ix_tags_set", "set_name"),
)

sa.Table(
    "heads",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("model_key", sa.String(512), nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=False),
    sa.Column("info", sa.Text),
    sa.Column("created_at", sa.Float),
)

# Collections (search/collection.py): items are keyed by content hash, not file id, so that
# they outlive the file rows a rebuild replaces when files move or are renamed.
sa.Table(
    "collections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.Float),
)

sa.Table(
    "collection_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64)),
    sa.Column("path", sa.Text, nullable=False),  # where the file was when last seen
    sa.Column("start_s", sa.Float),  # a moment; NULL for the whole file
    sa.Column("end_s", sa.Float),
    sa.Column("added_at", sa.Float),
    sa.Index("ix_collection_items_collection", "collection_id", "position"),
    sa.Index("ix_collection_items_hash", "content_hash"),
)

# PostgreSQL keyword search table (SQLite uses the FTS5 virtual table files_fts instead).
file_text = sa.Table(
    "file_text",
    sa.MetaData(),
    sa.Column("file_id", sa.Integer, primary_key=True),
    sa.Column("body", sa.Text),  # unused since migration 6
    sa.Column("name", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("folder", sa.Text),
    sa.Column("synonyms", sa.Text),
)


# Let catalog code address every table, the PostgreSQL-only one included, by name.
tables = dict(metadata.tables)
tables["file_text"] = file_text

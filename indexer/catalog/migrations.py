"""The catalog's append-only migrations: the only code that creates or alters tables.

Each step takes a database from version N-1 to N and is frozen once it is on main: it spells
out its own tables and DDL (never `schema.py`, which moves on), so a catalog created at any
version and upgraded step by step ends with the same tables as a new one. The catalog records
its version in `meta.schema_version` and refuses a version newer than `SCHEMA_VERSION`.

To change the schema (docs/catalog.md has the whole recipe):
  1. edit the table in `schema.py` (new columns last);
  2. append a step below, numbered N = the last one + 1, e.g. (with N = 7)

        def m007_files_rating(conn, dialect):
            add_column(conn, "files", sa.Column("rating", sa.Integer))

     and its line `Migration(7, "files rating", m007_files_rating)` at the end of MIGRATIONS;
  3. run tests/test_catalog_migrations.py: it fails until the steps build what schema.py says.
If someone landed the same number first, renumber yours when you rebase; never edit theirs.
"""

from __future__ import annotations

import logging
from typing import Callable, NamedTuple

import sqlalchemy as sa

log = logging.getLogger(__name__)


class Migration(NamedTuple):
    version: int
    name: str
    step: Callable[[sa.Connection, str], None]  # (connection, dialect name "sqlite" | "postgresql")


# ---------------------------------------------------------------------- helpers for new steps


def add_column(conn: sa.Connection, table: str, column: sa.Column) -> None:
    """ALTER TABLE `table` ADD COLUMN, the column spelled as SQLAlchemy would create it.

    SQLite adds only columns that are nullable or have a `server_default`, and no primary
    key or unique ones: give a new column a default, or make a new table."""
    spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
    name = conn.dialect.identifier_preparer.quote(table)
    conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {spec}")


def create_table(conn: sa.Connection, table: sa.Table) -> None:
    """Create a table, with its indexes, defined inside the migration step (a MetaData of its
    own), never one of `schema.py`'s: that definition will change, this step must not."""
    table.create(conn)


def create_index(conn: sa.Connection, name: str, table: str, *columns: str, unique: bool = False) -> None:
    """CREATE INDEX on columns of an existing table."""
    t = sa.Table(table, sa.MetaData(), *(sa.Column(c) for c in columns))  # names only: enough for DDL
    sa.Index(name, *(t.c[c] for c in columns), unique=unique).create(conn)


# ---------------------------------------------------------------------- the steps (frozen)


def m001_initial(conn: sa.Connection, dialect: str) -> None:
    """The first schema: roots, files, chunks, metadata, text vectors, tags, heads and the
    keyword index (FTS5 on SQLite, a tsvector GIN index on PostgreSQL)."""
    md = sa.MetaData()
    sa.Table("meta", md, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))
    sa.Table(
        "roots", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False, unique=True),
        sa.Column("added_at", sa.Float),
    )
    sa.Table(
        "files", md,
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
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("indexed_at", sa.Float),
        sa.UniqueConstraint("root_id", "rel", name="uq_files_root_rel"),
        sa.Index("ix_files_hash", "content_hash"),
        sa.Index("ix_files_status", "status"),
    )
    sa.Table(
        "chunks", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("file_id", sa.Integer, sa.ForeignKey("files.id"), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("start_s", sa.Float, nullable=False),
        sa.Column("end_s", sa.Float, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Index("ix_chunks_file", "file_id"),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "file_meta", md,
        sa.Column("file_id", sa.Integer, sa.ForeignKey("files.id"), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text),
    )
    sa.Table(
        "text_vectors", md,
        sa.Column("model_key", sa.String(512), primary_key=True),
        sa.Column("text", sa.Text, primary_key=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    sa.Table(
        "tags", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("file_id", sa.Integer, sa.ForeignKey("files.id"), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("cat_id", sa.String(64)),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("set_name", sa.String(128), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("model", sa.String(128)),
        sa.Column("created_at", sa.Float),
        sa.Index("ix_tags_file", "file_id"),
        sa.Index("ix_tags_label", "label"),
        sa.Index("ix_tags_set", "set_name"),
    )
    sa.Table(
        "heads", md,
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("model_key", sa.String(512), nullable=False),
        sa.Column("blob", sa.LargeBinary, nullable=False),
        sa.Column("info", sa.Text),
        sa.Column("created_at", sa.Float),
    )
    md.create_all(conn)
    if dialect == "sqlite":
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS files_fts USING fts5(body, tokenize='unicode61 remove_diacritics 2')"
        )
    else:
        file_text = sa.Table(
            "file_text", sa.MetaData(),
            sa.Column("file_id", sa.Integer, primary_key=True),
            sa.Column("body", sa.Text),
        )
        file_text.create(conn, checkfirst=True)
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_file_text_fts ON file_text USING GIN (to_tsvector('simple', body))"
        )


def m002_files_audio_hash(conn: sa.Connection, dialect: str) -> None:
    """files.audio_hash: a metadata edit by any tool leaves it, so the vectors stay (issue 15)."""
    add_column(conn, "files", sa.Column("audio_hash", sa.String(32)))


def m003_measured_sound(conn: sa.Connection, dialect: str) -> None:
    """Measured sound as typed file columns, and a table of audio fingerprints (issue 16)."""
    for name, kind in (
        ("loudness_lufs", sa.Float), ("true_peak_dbtp", sa.Float), ("sample_peak_dbfs", sa.Float),
        ("clipped_samples", sa.Integer), ("dc_offset", sa.Float), ("silence_head_s", sa.Float),
        ("silence_tail_s", sa.Float), ("loudness_range_lu", sa.Float), ("measured", sa.Integer),
    ):
        add_column(conn, "files", sa.Column(name, kind))
    md = sa.MetaData()
    sa.Table("files", md, sa.Column("id", sa.Integer, primary_key=True))  # for the foreign key
    create_table(conn, sa.Table(
        "fingerprints", md,
        sa.Column("file_id", sa.Integer, sa.ForeignKey("files.id"), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    ))
def m004_collections(conn: sa.Connection, dialect: str) -> None:
    """Named collections of files or moments, keyed by content hash (they survive rebuilds,
    moves and renames of their files)."""
    md = sa.MetaData()
    collections = sa.Table(
        "collections", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.Float),
    )
    items = sa.Table(
        "collection_items", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("start_s", sa.Float),
        sa.Column("end_s", sa.Float),
        sa.Column("added_at", sa.Float),
        sa.Index("ix_collection_items_collection", "collection_id", "position"),
        sa.Index("ix_collection_items_hash", "content_hash"),
    )
    create_table(conn, collections)
    create_table(conn, items)


def m005_files_decoder_truncation(conn: sa.Connection, dialect: str) -> None:
    """Which decoder read a file (libsndfile, or ffmpeg for what libsndfile refuses), and where
    a file cut off part way (an interrupted copy) stops: it is indexed up to there."""
    add_column(conn, "files", sa.Column("decoder", sa.String(16)))
    add_column(conn, "files", sa.Column("truncated_at_s", sa.Float))


def m006_keyword_fields(conn: sa.Connection, dialect: str) -> None:
    """The keyword index gets fields (name, description, folder, UCS synonyms) so that a word in
    a name weighs more than one in a folder, and its words are split and stemmed the way SFX
    names are written: the index is rebuilt from the files' names and stored metadata."""
    from .keywords import rebuild_keyword_index  # the tokeniser of this version of the code

    if dialect == "sqlite":
        conn.exec_driver_sql("DROP TABLE IF EXISTS files_fts")
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE files_fts USING fts5(name, description, folder, synonyms, "
            "tokenize='unicode61 remove_diacritics 2')"
        )
    else:
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_file_text_fts")
        for col in ("name", "description", "folder", "synonyms"):
            conn.exec_driver_sql(f"ALTER TABLE file_text ADD COLUMN IF NOT EXISTS {col} TEXT")
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_file_text_fields ON file_text USING GIN (("
            "setweight(to_tsvector('simple', coalesce(name, '')), 'A') || "
            "setweight(to_tsvector('simple', coalesce(description, '')), 'B') || "
            "setweight(to_tsvector('simple', coalesce(folder, '')), 'C') || "
            "setweight(to_tsvector('simple', coalesce(synonyms, '')), 'D')))"
        )
    n = rebuild_keyword_index(conn, dialect)
    log.info("keyword index rebuilt for %d files", n)


# Append new steps here, numbered one after the last; never edit or reorder a step on main.
MIGRATIONS: list[Migration] = [
    Migration(1, "initial", m001_initial),
    Migration(2, "files audio hash", m002_files_audio_hash),
    Migration(3, "measured sound", m003_measured_sound),
    Migration(4, "collections", m004_collections),
    Migration(5, "files decoder and truncation", m005_files_decoder_truncation),
    Migration(6, "keyword fields", m006_keyword_fields),
]
SCHEMA_VERSION = MIGRATIONS[-1].version
if [m.version for m in MIGRATIONS] != list(range(1, len(MIGRATIONS) + 1)):
    raise ValueError("catalog migrations must be numbered 1, 2, 3 ... in order (renumber yours after a rebase)")


def upgrade(conn: sa.Connection, dialect: str, current: int, target: int | None = None) -> None:
    """Apply the steps after version `current` up to `target` (default: the last), recording
    each version as it is reached (all in the caller's transaction)."""
    target = SCHEMA_VERSION if target is None else target
    for m in MIGRATIONS:
        if current < m.version <= target:
            log.debug("applying migration %d %s", m.version, m.name)
            m.step(conn, dialect)
            record_version(conn, m.version)


def record_version(conn: sa.Connection, version: int) -> None:
    # The meta table as every version has it (key, value), not as schema.py may one day say.
    meta = sa.table("meta", sa.column("key"), sa.column("value"))
    row = conn.execute(sa.select(meta.c.key).where(meta.c.key == "schema_version")).first()
    if row:
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(version)))
    else:
        conn.execute(meta.insert().values(key="schema_version", value=str(version)))

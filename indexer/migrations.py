"""The catalog schema and its append-only migrations.

`metadata` describes the current tables (SQLAlchemy Core). `MIGRATIONS` is the ordered list of
named steps from an empty database to the current version; a released step is never edited,
only followed by new ones. The catalog records its version in `meta.schema_version` and
refuses a version newer than `SCHEMA_VERSION`.
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

# PostgreSQL keyword search table (SQLite uses the FTS5 virtual table files_fts instead).
file_text = sa.Table(
    "file_text",
    sa.MetaData(),
    sa.Column("file_id", sa.Integer, primary_key=True),
    sa.Column("body", sa.Text),
)


def _m001_initial(conn: sa.Connection, dialect: str) -> None:
    metadata.create_all(conn)
    if dialect == "sqlite":
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS files_fts USING fts5(body, tokenize='unicode61 remove_diacritics 2')"
        )
    else:
        file_text.create(conn, checkfirst=True)
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_file_text_fts ON file_text USING GIN (to_tsvector('simple', body))"
        )


MIGRATIONS = [
    (1, "initial", _m001_initial),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

# Let catalog code address every table, the PostgreSQL-only one included, by name.
tables = dict(metadata.tables)
tables["file_text"] = file_text

"""File metadata and keyword search: what a file's words are (path, descriptions, UCS fields,
tags), stored in FTS5 on SQLite or a tsvector GIN index on PostgreSQL, and searched by BM25 /
ts_rank."""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import sqlalchemy as sa

from ..config import safe_text
from .batching import rows_in
from .schema import tables as T

# Words of a query that reach the keyword index; the rest are dropped.
MAX_QUERY_WORDS = 32
# Characters of a file's keyword text and of one metadata value that are stored.
MAX_KEYWORD_CHARS = 20_000
MAX_META_VALUE_CHARS = 4000
# Metadata keys whose values are searchable words (descriptions, iXML, INFO, tags, UCS).
KEYWORD_META_PREFIXES = ("bext.description", "ixml.", "info.", "tag.", "ucs.")
KEYWORD_LIMIT = 200


def fts_words(text: str) -> list[str]:
    """Lower-case word tokens safe to put in an FTS query (no operators or quotes survive)."""
    return [w for w in re.findall(r"[^\W_]+", text.lower()) if w][:MAX_QUERY_WORDS]


def keyword_text(rel: str, metadata: dict[str, str]) -> str:
    """What keyword search sees of a file: path words, descriptions, UCS fields and tags."""
    parts = [re.sub(r"[_\-./\\]+", " ", safe_text(rel))]
    for k, v in metadata.items():
        if k.startswith(KEYWORD_META_PREFIXES) and v:
            parts.append(safe_text(str(v)))
    return " ".join(parts)[:MAX_KEYWORD_CHARS]


class KeywordsMixin:
    """File metadata and the keyword index of a Catalog."""

    def write_metadata(self, conn: sa.Connection, fid: int, rel: str, metadata: dict[str, str]) -> None:
        """Store a file's metadata and its keyword text (the file's old ones already deleted)."""
        if metadata:
            conn.execute(
                T["file_meta"].insert(),
                [{"file_id": fid, "key": safe_text(k), "value": safe_text(str(v))[:MAX_META_VALUE_CHARS]}
                 for k, v in metadata.items()],
            )
        self._insert_keywords(conn, fid, keyword_text(rel, metadata))

    def _insert_keywords(self, conn: sa.Connection, fid: int, text: str) -> None:
        if self.dialect == "sqlite":
            conn.exec_driver_sql("INSERT INTO files_fts(rowid, body) VALUES (?, ?)", (fid, text))
        else:
            conn.execute(T["file_text"].insert().values(file_id=fid, body=text))

    def delete_keywords(self, conn: sa.Connection, ids: Sequence[int]) -> None:
        """Drop these files from the keyword index."""
        if not ids:
            return
        if self.dialect == "sqlite":
            marks = ",".join("?" * len(ids))
            conn.exec_driver_sql(f"DELETE FROM files_fts WHERE rowid IN ({marks})", tuple(ids))
        else:
            conn.execute(T["file_text"].delete().where(T["file_text"].c.file_id.in_(list(ids))))

    def metadata_for(self, ids: Iterable[int]) -> dict[int, dict[str, str]]:
        ids = list(ids)
        out: dict[int, dict[str, str]] = {i: {} for i in ids}
        m = T["file_meta"]
        with self.read_connection() as conn:
            for fid, k, v in rows_in(conn, sa.select(m.c.file_id, m.c.key, m.c.value), m.c.file_id, ids):
                out[fid][k] = v
        return out

    def keyword_search(self, query: str, limit: int = KEYWORD_LIMIT) -> list[tuple[int, float]]:
        """Files whose names, folders and descriptions match the words of `query`, best first."""
        words = fts_words(query)
        if not words:
            return []
        with self.read_connection() as conn:
            if self.dialect == "sqlite":
                # Any word may match (OR); bm25 ranks files matching more and rarer words first.
                expr = " OR ".join(f'"{w}"*' for w in words)
                rows = conn.exec_driver_sql(
                    "SELECT rowid, bm25(files_fts) FROM files_fts WHERE files_fts MATCH ? "
                    "ORDER BY bm25(files_fts) LIMIT ?",
                    (expr, limit),
                ).all()
                return [(r[0], -float(r[1])) for r in rows]
            tsq = " | ".join(f"{w}:*" for w in words)
            rows = conn.execute(
                sa.text(
                    "SELECT file_id, ts_rank(to_tsvector('simple', body), to_tsquery('simple', :q)) AS s "
                    "FROM file_text WHERE to_tsvector('simple', body) @@ to_tsquery('simple', :q) "
                    "ORDER BY s DESC LIMIT :n"
                ),
                {"q": tsq, "n": limit},
            ).all()
            return [(r[0], float(r[1])) for r in rows]

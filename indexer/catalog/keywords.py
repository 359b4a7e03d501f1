"""File metadata and keyword search: what a file's words are (name, descriptions, folder, UCS
synonyms), stored in FTS5 on SQLite or tsvector columns on PostgreSQL, and searched by BM25 /
ts_rank with the name and description weighted above the folder.

Words are split and stemmed the way SFX names are written (`words.py`); queries follow the
Soundminer syntax (`keyword_query.py`). Scores: on SQLite the negated BM25 of FTS5 (higher is
better; it grows with how many query words a file has, how rare they are in the library, and
in which field: name x4, description x2.5, folder x1, UCS synonyms x0.5); on PostgreSQL
ts_rank with the same order of fields. A score compares files within one query only.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import PurePosixPath
from typing import Iterable, Sequence

import sqlalchemy as sa

from ..config import safe_text
from .batching import driver_rows, rows_in
from .keyword_query import parse
from .keyword_ranker import KeywordRanker, structure_stamp
from .schema import tables as T
from .words import name_tokens, synonym_tokens, text_tokens

log = logging.getLogger(__name__)

# Words of a query that reach the keyword index; the rest are dropped.
MAX_QUERY_WORDS = 32
# Characters of a file's keyword text and of one metadata value that are stored.
MAX_KEYWORD_CHARS = 20_000
MAX_META_VALUE_CHARS = 4000
# Metadata keys whose values are searchable words (descriptions, iXML, INFO, tags, UCS).
KEYWORD_META_PREFIXES = ("bext.description", "ixml.", "info.", "tag.", "ucs.")
KEYWORD_LIMIT = 200
KEYWORD_FIELDS = ("name", "description", "folder", "synonyms")
# BM25 weights of the fields, in KEYWORD_FIELDS order: a word in the name counts most.
FIELD_WEIGHTS = (4.0, 2.5, 1.0, 0.5)
# ts_rank weights {D, C, B, A} = synonyms, folder, description, name.
PG_WEIGHTS = "{0.1, 0.25, 0.6, 1.0}"
PG_VECTOR = ("setweight(to_tsvector('simple', coalesce(name, '')), 'A') || "
             "setweight(to_tsvector('simple', coalesce(description, '')), 'B') || "
             "setweight(to_tsvector('simple', coalesce(folder, '')), 'C') || "
             "setweight(to_tsvector('simple', coalesce(synonyms, '')), 'D')")


def fts_words(text: str) -> list[str]:
    """Lower-case word tokens safe to put in an FTS query (no operators or quotes survive)."""
    return [w for w in re.findall(r"[^\W_]+", text.lower()) if w][:MAX_QUERY_WORDS]


def keyword_columns(rel: str, metadata: dict[str, str]) -> dict[str, str]:
    """What keyword search sees of a file, field by field, as space-separated stemmed tokens."""
    rel = safe_text(rel)
    p = PurePosixPath(rel)
    described = [safe_text(str(v)) for k, v in metadata.items() if k.startswith(KEYWORD_META_PREFIXES) and v]
    cols = {
        "name": name_tokens(p.stem),
        "description": [t for v in described for t in text_tokens(v)],
        "folder": name_tokens(str(p.parent)) if str(p.parent) != "." else [],
        "synonyms": synonym_tokens([p.stem, metadata.get("ucs.cat_id") or ""]),
    }
    return {k: " ".join(v)[:MAX_KEYWORD_CHARS] for k, v in cols.items()}


def keyword_text(rel: str, metadata: dict[str, str]) -> str:
    """All of a file's keyword tokens in one string (for tools that show or compare them)."""
    return " ".join(v for v in keyword_columns(rel, metadata).values() if v)


def insert_keyword_rows(conn: sa.Connection, dialect: str, rows: Sequence[tuple[int, dict[str, str]]]) -> None:
    """Add (file id, keyword_columns()) rows to the keyword index."""
    if not rows:
        return
    if dialect == "sqlite":
        conn.exec_driver_sql(
            f"INSERT INTO files_fts(rowid, {', '.join(KEYWORD_FIELDS)}) VALUES (?, ?, ?, ?, ?)",
            [(fid, *(c[k] for k in KEYWORD_FIELDS)) for fid, c in rows],
        )
    else:
        conn.execute(T["file_text"].insert(), [{"file_id": fid, **c} for fid, c in rows])


def rebuild_keyword_index(conn: sa.Connection, dialect: str, batch: int = 5000) -> int:
    """Recompute every indexed file's keyword row from its name and stored metadata."""
    f, m = T["files"], T["file_meta"]
    if dialect == "sqlite":
        conn.exec_driver_sql("DELETE FROM files_fts")
    else:
        conn.execute(T["file_text"].delete())
    from .encoding import rel_from_db

    ids_rels = list(driver_rows(conn, sa.select(f.c.id, f.c.rel).where(f.c.status == "ok").order_by(f.c.id)))
    for i in range(0, len(ids_rels), batch):
        part = ids_rels[i:i + batch]
        meta: dict[int, dict[str, str]] = {fid: {} for fid, _ in part}
        for fid, k, v in rows_in(conn, sa.select(m.c.file_id, m.c.key, m.c.value), m.c.file_id, list(meta)):
            meta[fid][k] = v
        insert_keyword_rows(conn, dialect, [(fid, keyword_columns(rel_from_db(rel), meta[fid])) for fid, rel in part])
    return len(ids_rels)


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
        insert_keyword_rows(conn, self.dialect, [(fid, keyword_columns(rel, metadata))])

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

    def keyword_search(self, query: str, limit: int = KEYWORD_LIMIT, *, all_words_first: bool = False
                       ) -> list[tuple[int, float]]:
        """Files whose names, descriptions and folders match `query` (Soundminer syntax, see
        keyword_query.py), best first, as (file id, score). A plain-text query ranks files by
        how well its words match; with `all_words_first` (keyword mode) the files that hold
        every word come first."""
        q = parse(query)
        if q.empty():
            return []
        with self.read_connection() as conn:
            if q.operators:
                expr = q.fts5_boolean() if self.dialect == "sqlite" else q.tsquery_boolean()
                return self._match(conn, expr, limit) if expr else []
            ranker = self._keyword_ranker(conn) if KeywordRanker.serves(q.terms) else None
            if ranker is not None:  # the same ranking as the SQL below, computed in memory
                def match_all(n):
                    return ranker.rank(q.terms, n, all_terms=True)

                def match_any(n):
                    return ranker.rank(q.terms, n)
            else:
                def match_all(n):
                    return self._match(conn, q.fts5_all() if self.dialect == "sqlite" else q.tsquery_all(), n)

                def match_any(n):
                    return self._match(conn, q.fts5_any() if self.dialect == "sqlite" else q.tsquery_any(), n)
            if all_words_first and len(q.terms) > 1:
                first = match_all(limit)
                if len(first) >= limit:
                    return first
                seen = {fid for fid, _ in first}
                rest = match_any(limit)
                # Scores of the second list sit below the first's, so the column reads in rank order.
                floor = min((s for _, s in first), default=0.0)
                top = max((s for _, s in rest), default=0.0)
                shift = (top - floor + 1e-6) if first and top >= floor else 0.0
                return (first + [(fid, s - shift) for fid, s in rest if fid not in seen])[:limit]
            return match_any(limit)

    def keyword_excluded(self, query: str) -> set[int]:
        """Files matching a -word of the query (hybrid mode leaves them out); empty without one."""
        q = parse(query)
        if not q.negated:
            return set()
        expr = q.fts5_negated() if self.dialect == "sqlite" else q.tsquery_negated()
        with self.read_connection() as conn:
            return {fid for fid, _ in self._match(conn, expr, None)}

    def _match(self, conn, expr: str, limit: int | None) -> list[tuple[int, float]]:
        if self.dialect == "sqlite":
            rank = f"bm25(files_fts, {', '.join(str(w) for w in FIELD_WEIGHTS)})"
            sql = f"SELECT rowid, {rank} AS r FROM files_fts WHERE files_fts MATCH ? ORDER BY r, rowid"
            args: tuple = (expr,)
            if limit is not None:
                sql += " LIMIT ?"
                args += (limit,)
            return [(r[0], -float(r[1])) for r in conn.exec_driver_sql(sql, args).all()]
        sql = (f"SELECT file_id, ts_rank('{PG_WEIGHTS}', {PG_VECTOR}, to_tsquery('simple', :q)) AS s "
               f"FROM file_text WHERE {PG_VECTOR} @@ to_tsquery('simple', :q) ORDER BY s DESC, file_id")
        params = {"q": expr}
        if limit is not None:
            sql += " LIMIT :n"
            params["n"] = limit
        return [(r[0], float(r[1])) for r in conn.execute(sa.text(sql), params).all()]

    # ---------------------------------------------------------------- in-memory ranking

    def keep_keywords_in_memory(self, on: bool = True) -> None:
        """For a long-running reader (`sfx-search serve`): rank plain keyword queries in memory
        (keyword_ranker.py) from now on. The copy is built now in the background and again,
        in the background, after each change to the keyword index; meanwhile FTS5 ranks.
        `on=False`: FTS5 ranks every query again (the copy is kept for a later `on`)."""
        if self.dialect != "sqlite":
            return  # PostgreSQL ranks with ts_rank, not bm25()
        self._keywords_in_memory = on
        if not on:
            return
        with self.read_connection() as conn:
            self._keyword_ranker(conn)

    def keyword_ranker_ready(self, wait: float | None = None) -> bool:
        """Whether the in-memory keyword ranking is current (waiting up to `wait` s for a build)."""
        building = self.__dict__.get("_keyword_build")
        if building is not None and wait:
            building.join(wait)
        with self.read_connection() as conn:
            return self._keyword_ranker(conn) is not None

    def _keyword_ranker(self, conn) -> KeywordRanker | None:
        """The in-memory ranker if it is current with the index; else None (and a build starts)."""
        if not self.__dict__.get("_keywords_in_memory") or self.dialect != "sqlite":
            return None
        stamp = structure_stamp(conn)
        ranker = self.__dict__.get("_keyword_ranker_built")
        if ranker is not None and ranker.stamp == stamp:
            return ranker
        lock = self.__dict__.setdefault("_keyword_lock", threading.Lock())
        with lock:
            building = self.__dict__.get("_keyword_build")
            if (building is None or not building.is_alive()) and self.__dict__.get("_keyword_unusable") != stamp:
                building = threading.Thread(target=self._build_keyword_ranker, name="sfx-keyword-ranker", daemon=True)
                self._keyword_build = building
                building.start()
        return None

    def _build_keyword_ranker(self, tries: int = 3) -> None:
        try:
            with self.engine.connect() as conn:
                for _ in range(tries):  # a write that lands while it reads: read again
                    ranker = KeywordRanker.build(conn, KEYWORD_FIELDS, FIELD_WEIGHTS)
                    stamp = structure_stamp(conn)
                    if ranker is None or ranker.stamp == stamp:
                        break
                else:
                    return
        except Exception as exc:  # a reader keeps answering through FTS5
            log.warning("keyword ranking stays in SQL: could not read the keyword index (%s)", exc)
            return
        if ranker is None:
            self._keyword_unusable = stamp  # not again until the index changes
        else:
            self._keyword_ranker_built = ranker

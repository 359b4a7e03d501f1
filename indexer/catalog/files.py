"""Library roots and their files: the reconcile reads of a rerun (file states and stats), and
the writes of a build (embedded, copied, failed, touched, deleted files)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import sqlalchemy as sa

from ..config import UserError, safe_text
from .batching import IN_BATCH, driver_batches, driver_rows, gc_paused, rows_in
from .encoding import FS_PREFIX, FS_PREFIX_END, encode_vectors, rel_from_db, rel_to_db
from .measurements import MEASURE_COLUMNS
from .rows import FileInfo, FileRow, FileState, Root, file_row
from .schema import tables as T

# Characters of a failure reason kept in the files table.
ERROR_CHARS = 500
# The file facts a moved or duplicated file takes from the copy it reuses.
COPIED_FACTS = ("content_hash", "audio_hash", "duration_s", "sample_rate", "channels", "subtype", "container",
                "decoder", "truncated_at_s")


def file_select():
    """SELECT of the FileRow columns, files joined with their roots."""
    f, r = T["files"], T["roots"]
    return (
        sa.select(
            f.c.id, f.c.root_id, r.c.path.label("root"), f.c.rel, f.c.size, f.c.mtime_ns,
            f.c.content_hash, f.c.duration_s, f.c.sample_rate, f.c.channels, f.c.subtype,
            f.c.container, f.c.status, f.c.error, f.c.decoder, f.c.truncated_at_s,
        ).select_from(f.join(r, f.c.root_id == r.c.id))
    )


class FilesMixin:
    """Roots and files of a Catalog."""

    # ---------------------------------------------------------------- roots

    def add_root(self, path: str | Path) -> Root:
        p = str(Path(path).resolve())
        known = self.root_for(p)  # a read: a rerun's known root needs no write transaction
        if known is not None:
            return known
        with self.transaction() as conn:
            r = T["roots"]
            row = conn.execute(sa.select(r.c.id).where(r.c.path == p)).first()
            if row:
                return Root(row[0], p)
            rid = conn.execute(r.insert().values(path=p, added_at=time.time())).inserted_primary_key[0]
        return Root(rid, p)

    def roots(self) -> list[Root]:
        with self.read_connection() as conn:
            rows = conn.execute(sa.select(T["roots"].c.id, T["roots"].c.path).order_by(T["roots"].c.path))
            return [Root(*r) for r in rows]

    def root_for(self, path: str | Path) -> Root | None:
        p = str(Path(path).resolve())
        for root in self.roots():
            if root.path == p:
                return root
        return None

    def relocate_root(self, old: str | Path, new: str | Path) -> Root:
        old_p = str(Path(old).expanduser().absolute())
        root = next((r for r in self.roots() if r.path in (old_p, str(Path(old).resolve()))), None)
        if root is None:
            raise UserError(f"'{old}' is not a root of this index; see 'sfx-index status'")
        new_p = str(Path(new).resolve())
        if new_p == root.path:
            return root
        taken = next((r for r in self.roots() if r.path == new_p), None)
        if taken is not None:
            # Two roots on one folder would index it twice; which copy's entries to keep is the
            # user's call, so say how instead of merging.
            n = self.root_counts().get(taken.id, 0)
            raise UserError(
                f"'{new_p}' is already a root of this index ({n} files); to keep its entries, forget the old "
                f"place with 'sfx-index remove {root.path}'; to keep the old place's entries (its tags and "
                f"reviews) instead, run 'sfx-index remove {new_p}' and then relocate again"
            )
        with self.transaction() as conn:
            conn.execute(T["roots"].update().where(T["roots"].c.id == root.id).values(path=new_p))
        return Root(root.id, new_p)

    def remove_root(self, root: Root) -> list[int]:
        """Forget a root with its files; returns the chunk ids that left."""
        with self.transaction() as conn:
            f = T["files"]
            ids = [r[0] for r in conn.execute(sa.select(f.c.id).where(f.c.root_id == root.id))]
            chunk_ids = self.delete_files(ids)
            conn.execute(T["roots"].delete().where(T["roots"].c.id == root.id))
        return chunk_ids

    # ---------------------------------------------------------------- reading files

    def file_states(self, root_id: int) -> dict[str, FileState]:
        """rel -> FileState of every file of a root (a rerun reads the lighter file_stats).

        The rows come straight from the driver's cursor (SQLAlchemy's Row objects cost more
        than the query at a million files) and only names stored encoded are decoded."""
        f = T["files"]
        q = sa.select(f.c.id, f.c.rel, f.c.size, f.c.mtime_ns, f.c.content_hash, f.c.status).where(
            f.c.root_id == root_id
        )
        make = FileState._make
        with self.read_connection() as conn, gc_paused():
            out = {row[1]: make(row) for row in driver_rows(conn, q)}
            # Names that are not valid UTF-8 are stored encoded (rare): decode those keys.
            for key in [k for k in out if k.startswith(FS_PREFIX)]:
                state = out.pop(key)
                rel = rel_from_db(key)
                out[rel] = state._replace(rel=rel)
        return out

    def file_stats(self, root_id: int) -> set[tuple[str, int, int]]:
        """{(rel, size, mtime_ns)} of every file of a root: the least a rerun compares the walk
        with. A no-op rerun over a million files reads only this, as the driver's own row
        tuples put in a set by C (FileState objects in a dict, and comparing them, cost several
        times more); file_states_for gives the rest for the few that changed."""
        f = T["files"]
        by_root = f.c.root_id
        if self.engine.dialect.name == "sqlite" and len(self.roots()) == 1:
            # One root holds every file: a plain table scan reads them faster than the
            # (root_id, rel) index would, which looks up each row in the table (SQLite has no
            # statistics to know it). "+ 0" keeps the planner off the index.
            by_root = by_root + 0
        q = sa.select(f.c.rel, f.c.size, f.c.mtime_ns).where(by_root == root_id)
        out: set[tuple[str, int, int]] = set()
        with self.read_connection() as conn, gc_paused():
            for rows in driver_batches(conn, q):
                out.update(rows)
            # Names stored encoded (rare; not UTF-8 on disk), found by a range of the index.
            encoded = sa.select(f.c.rel, f.c.size, f.c.mtime_ns).where(
                f.c.root_id == root_id, f.c.rel >= FS_PREFIX, f.c.rel < FS_PREFIX_END
            )
            for rel, size, mtime_ns in list(driver_rows(conn, encoded)):
                out.discard((rel, size, mtime_ns))
                out.add((rel_from_db(rel), size, mtime_ns))
        return out

    def file_states_for(self, root_id: int, rels: Iterable[str]) -> dict[str, FileState]:
        """rel -> FileState of these files of a root (those it holds)."""
        f = T["files"]
        q = sa.select(f.c.id, f.c.rel, f.c.size, f.c.mtime_ns, f.c.content_hash, f.c.status).where(
            f.c.root_id == root_id
        )
        out: dict[str, FileState] = {}
        with self.read_connection() as conn:
            for r in rows_in(conn, q, f.c.rel, [rel_to_db(rel) for rel in rels]):
                rel = rel_from_db(r[1])
                out[rel] = FileState(r[0], rel, *r[2:])
        return out

    def find_embedded_by_hash(self, content_hash: str) -> int | None:
        """An indexed file with these bytes whose chunks can be reused (moves, duplicates)."""
        f = T["files"]
        q = (
            sa.select(f.c.id)
            .where(f.c.content_hash == content_hash, f.c.status == "ok")
            .order_by(f.c.id)
            .limit(1)
        )
        with self.read_connection() as conn:
            row = conn.execute(q).first()
        return row[0] if row else None

    def files_with_hash(self, content_hash: str) -> list[int]:
        """Ids of the files holding these bytes (a file and its byte-identical copies)."""
        f = T["files"]
        with self.read_connection() as conn:
            return [r[0] for r in conn.execute(sa.select(f.c.id).where(f.c.content_hash == content_hash))]

    def files_by_ids(self, ids: Iterable[int]) -> dict[int, FileRow]:
        ids = list(ids)
        out: dict[int, FileRow] = {}
        with self.read_connection() as conn:
            for row in rows_in(conn, file_select(), T["files"].c.id, ids):
                out[row.id] = file_row(row)
        return out

    def file_by_path(self, path: str | Path) -> FileRow | None:
        p = Path(path).expanduser().absolute()
        candidates = {p, p.resolve()}
        for root in self.roots():
            for c in candidates:
                try:
                    rel = c.relative_to(root.path).as_posix()
                except ValueError:
                    continue
                q = file_select().where(T["files"].c.root_id == root.id, T["files"].c.rel == rel_to_db(rel))
                with self.read_connection() as conn:
                    row = conn.execute(q).first()
                if row:
                    return file_row(row)
        return None

    # ---------------------------------------------------------------- writing files

    def _upsert_file(self, conn, root_id: int, rel: str, values: dict) -> tuple[int, list[int]]:
        """Insert or update the file row; drop its old chunks. Returns (file id, old chunk ids)."""
        f, c = T["files"], T["chunks"]
        rel = rel_to_db(rel)
        # New content: earlier measurements no longer hold (the caller stores new ones).
        values = {**{k: None for k in (*MEASURE_COLUMNS, "measured")}, **values}
        row = conn.execute(sa.select(f.c.id).where(f.c.root_id == root_id, f.c.rel == rel)).first()
        if row:
            fid = row[0]
            old = [r[0] for r in conn.execute(sa.select(c.c.id).where(c.c.file_id == fid))]
            if old:
                conn.execute(c.delete().where(c.c.file_id == fid))
            conn.execute(T["file_meta"].delete().where(T["file_meta"].c.file_id == fid))
            self.delete_analysis(conn, [fid])
            self.delete_keywords(conn, [fid])
            conn.execute(f.update().where(f.c.id == fid).values(**values))
            return fid, old
        fid = conn.execute(f.insert().values(root_id=root_id, rel=rel, **values)).inserted_primary_key[0]
        return fid, []

    def write_file(
        self,
        root_id: int,
        rel: str,
        *,
        size: int,
        mtime_ns: int,
        content_hash: str,
        info: FileInfo,
        chunks: Sequence[tuple[int, float, float]],
        vectors: np.ndarray,
        metadata: dict[str, str],
        audio_hash: str | None = None,
    ) -> tuple[int, list[int], list[int]]:
        """Store an embedded file. Returns (file id, new chunk ids, replaced chunk ids)."""
        values = dict(
            size=size, mtime_ns=mtime_ns, content_hash=content_hash, audio_hash=audio_hash, status="ok", error=None,
            indexed_at=time.time(), **info.__dict__,
        )
        with self.transaction() as conn:
            fid, old = self._upsert_file(conn, root_id, rel, values)
            new_ids = self.insert_chunks(conn, fid, chunks, encode_vectors(vectors, self.vector_dtype))
            self.write_metadata(conn, fid, rel, metadata)
        return fid, new_ids, old

    def copy_file(
        self, src_id: int, root_id: int, rel: str, *, size: int, mtime_ns: int
    ) -> tuple[int, list[int], list[int]]:
        """Give a moved or duplicated file the stored chunks of `src_id` (no model call)."""
        f, c, m = T["files"], T["chunks"], T["file_meta"]
        with self.transaction() as conn:
            src = conn.execute(sa.select(f).where(f.c.id == src_id)).mappings().one()
            values = {k: src[k] for k in COPIED_FACTS}
            values.update(size=size, mtime_ns=mtime_ns, status="ok", error=None, indexed_at=time.time())
            fid, old = self._upsert_file(conn, root_id, rel, values)
            rows = conn.execute(
                sa.select(c.c.idx, c.c.start_s, c.c.end_s, c.c.vector).where(c.c.file_id == src_id).order_by(c.c.idx)
            ).all()
            new_ids = self.insert_chunks(conn, fid, [(r[0], r[1], r[2]) for r in rows], [r[3] for r in rows])
            meta = {k: v for k, v in conn.execute(sa.select(m.c.key, m.c.value).where(m.c.file_id == src_id))}
            self.write_metadata(conn, fid, rel, meta)
            self.copy_analysis(conn, src_id, fid)
            self.copy_tags(conn, src_id, fid)
        return fid, new_ids, old

    def mark_failed(
        self, root_id: int, rel: str, reason: str, *, size: int, mtime_ns: int, content_hash: str | None = None
    ) -> list[int]:
        """Record a file that could not be indexed (invariant 4). Returns chunk ids it lost."""
        values = dict(
            size=size, mtime_ns=mtime_ns, content_hash=content_hash, status="failed",
            error=safe_text(reason)[:ERROR_CHARS], indexed_at=time.time(), duration_s=None, sample_rate=None,
            channels=None, subtype=None, container=None, decoder=None, truncated_at_s=None,
        )
        with self.transaction() as conn:
            _fid, old = self._upsert_file(conn, root_id, rel, values)
        return old

    def update_stat(self, file_id: int, *, size: int, mtime_ns: int) -> None:
        """A touched file whose bytes did not change keeps its chunks; only the stat moves."""
        f = T["files"]
        with self.transaction() as conn:
            conn.execute(f.update().where(f.c.id == file_id).values(size=size, mtime_ns=mtime_ns))

    def delete_files(self, ids: Sequence[int]) -> list[int]:
        """Remove files with their chunks, metadata and tags; returns the chunk ids removed."""
        ids = list(ids)
        removed: list[int] = []
        f, c = T["files"], T["chunks"]
        with self.transaction() as conn:
            for i in range(0, len(ids), IN_BATCH):
                part = ids[i : i + IN_BATCH]
                removed += [r[0] for r in conn.execute(sa.select(c.c.id).where(c.c.file_id.in_(part)))]
                conn.execute(c.delete().where(c.c.file_id.in_(part)))
                conn.execute(T["file_meta"].delete().where(T["file_meta"].c.file_id.in_(part)))
                conn.execute(T["tags"].delete().where(T["tags"].c.file_id.in_(part)))
                self.delete_analysis(conn, part)
                self.delete_keywords(conn, part)
                conn.execute(f.delete().where(f.c.id.in_(part)))
        return removed

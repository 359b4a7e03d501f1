"""The catalog: SQLAlchemy schema, migrations and the Catalog API. The only module that holds SQL.

The catalog is the source of truth (DESIGN.md invariant 1): roots, files, chunks with their
vectors, metadata, the model record, cached text vectors and tags. The FAISS file is a cache
of the chunk vectors and is rebuilt from here whenever its recorded `generation` differs.

SQLite (WAL) by default; PostgreSQL when the URL says so. Keyword search uses FTS5 on SQLite
and a tsvector GIN index on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event

from .catalog_tags import TagsMixin
from .config import UserError, safe_text
from .migrations import MIGRATIONS, SCHEMA_VERSION, tables as T

log = logging.getLogger(__name__)


class CatalogError(UserError):
    """The catalog cannot be used as it is (newer schema, corrupt file, other model)."""


class ModelMismatch(CatalogError):
    pass


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

    A named tuple: `FileState._make(row)` builds one from the driver's row in C (a
    dataclass's __init__ was ~0.5 s of reading a million)."""

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

    @property
    def path(self) -> str:
        return str(Path(self.root) / self.rel)


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


def encode_vectors(vecs: np.ndarray, dtype: str) -> list[bytes]:
    arr = np.ascontiguousarray(vecs, dtype=np.float16 if dtype == "float16" else np.float32)
    return [row.tobytes() for row in arr]


def decode_vectors(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), np.float32)
    width = len(blobs[0]) // dim
    dt = np.float16 if width == 2 else np.float32
    return np.frombuffer(b"".join(blobs), dtype=dt).reshape(len(blobs), dim).astype(np.float32)


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Catalog(TagsMixin):
    """Typed access to one catalog database. Thread-safe for reads; one writer at a time."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.dialect = engine.dialect.name
        self._local = threading.local()
        self._model: ModelRecord | None = None
        self.url = str(engine.url)
        self.read_only = False

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, url: str, *, create: bool = True, verify: bool = False) -> "Catalog":
        """Open (and migrate) a catalog. `verify` runs an integrity check first: writers do,
        so that a damaged catalog is reported and never written to."""
        read_only = False
        if url.startswith("sqlite:///"):
            path = Path(url[len("sqlite:///"):])
            if not path.exists():
                if not create:
                    raise CatalogError(f"no index at {path.parent}; run 'sfx-index build LIBRARY' first")
                path.parent.mkdir(parents=True, exist_ok=True)
            read_only = path.exists() and not (os.access(path.parent, os.W_OK) and os.access(path, os.W_OK))
            if read_only:
                # WAL needs to write its -shm file; a read-only folder (a library drive, a
                # snapshot) is opened immutable, for searching only.
                engine = sa.create_engine(
                    f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true", connect_args={"check_same_thread": False}
                )
            else:
                engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
                event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
        cat = cls(engine)
        cat.url = url
        cat.read_only = read_only
        with cat.errors():
            if verify:
                cat.verify()
            if read_only:
                if cat.get_meta("schema_version") is None:
                    raise CatalogError(f"no catalog at {url}")
            else:
                cat._migrate(create)
        return cat

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Database damage as one CatalogError line instead of a driver traceback."""
        try:
            yield
        except sa.exc.DatabaseError as exc:
            msg = str(getattr(exc, "orig", exc))
            if any(s in msg for s in ("not a database", "malformed", "corrupt")):
                raise CatalogError(
                    f"the catalog at {self.url} is corrupt ({msg}); restore it from a backup "
                    "or start a new index with --index DIR"
                ) from None
            if "readonly" in msg or "read-only" in msg:
                raise CatalogError(f"the index at {self.url} is read-only: searching works, writing does not") from None
            raise

    def verify(self) -> None:
        """Raise CatalogError unless the database passes its integrity check (once per process)."""
        if getattr(self, "_verified", False):
            return
        if "_damage" in self.__dict__:
            raise self._damage
        pending = self.__dict__.pop("_verifying", None)
        if pending is not None:
            pending[0].join()
            result = pending[1][0]
        else:
            result = self.integrity_check()
        if result != "ok":
            first = next((ln for ln in result.splitlines() if ln.strip() and not ln.startswith("***")), result)
            self._damage = CatalogError(
                f"the catalog at {self.url} is corrupt (integrity check: {first.strip()[:200]}); restore it "
                "from a backup or start a new index with --index DIR; nothing was written to it"
            )
            raise self._damage
        self._verified = True

    def verify_in_background(self) -> None:
        """Start the integrity check on its own connection and thread; the first write (any
        transaction) waits for it and is refused if it fails, so nothing is ever written into
        a damaged catalog. A build overlaps the check, O(catalog size) (5 s at a million
        files), with its walk; a no-op build calls verify() at the end to report damage."""
        if getattr(self, "_verified", False) or "_verifying" in self.__dict__ or self.dialect != "sqlite":
            return
        box = ["not checked"]

        def check() -> None:
            box[0] = self.integrity_check()

        thread = threading.Thread(target=check, name="sfx-catalog-check", daemon=True)
        self._verifying = (thread, box)
        thread.start()

    def close(self) -> None:
        written = True
        if self.__dict__.get("_pending_text") and "_damage" not in self.__dict__:
            try:
                written = self._flush_text_vectors(wait=0.0)
            except (CatalogError, sa.exc.SQLAlchemyError) as exc:
                log.debug("text vectors not cached: %s", exc)
        pending = self.__dict__.pop("_verifying", None)
        if pending is not None and written:  # else the check is left to die with the process
            pending[0].join()
        self.engine.dispose()

    def _migrate(self, create: bool) -> None:
        with self.engine.begin() as conn:
            insp = sa.inspect(conn)
            if not insp.has_table("meta"):
                current = 0
            else:
                row = conn.execute(
                    sa.select(T["meta"].c.value).where(T["meta"].c.key == "schema_version")
                ).first()
                current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise CatalogError(
                    f"this catalog has schema version {current}, newer than this sfx-index "
                    f"understands ({SCHEMA_VERSION}); upgrade sfx-index"
                )
            if current == SCHEMA_VERSION:
                return
            if current == 0 and not create:
                raise CatalogError("no catalog here; run 'sfx-index build LIBRARY' first")
            if insp.get_table_names():
                self.verify()  # never migrate (write) an existing catalog before it is checked
            for version, name, step in MIGRATIONS:
                if version > current:
                    log.debug("applying migration %d %s", version, name)
                    step(conn, self.dialect)
                    self._set_meta(conn, "schema_version", str(version))

    def integrity_check(self) -> str:
        """'ok' or the first problem SQLite reports (PostgreSQL: always 'ok')."""
        if self.dialect != "sqlite":
            return "ok"
        try:
            with self.engine.connect() as conn:
                return str(conn.exec_driver_sql("PRAGMA quick_check").scalar())
        except sa.exc.DatabaseError as exc:
            return str(getattr(exc, "orig", exc))

    # ---------------------------------------------------------------- transactions

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """Group writes in one commit; nested calls join the outer transaction."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        if "_verifying" in self.__dict__ or "_damage" in self.__dict__:
            self.verify()  # a check started in the background must pass before any write
        with self.engine.begin() as conn:
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        with self.engine.connect() as conn:
            yield conn

    # ---------------------------------------------------------------- meta

    @staticmethod
    def _set_meta(conn, key: str, value: str) -> None:
        m = T["meta"]
        if conn.execute(sa.select(m.c.key).where(m.c.key == key)).first():
            conn.execute(m.update().where(m.c.key == key).values(value=value))
        else:
            conn.execute(m.insert().values(key=key, value=value))

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._read() as conn:
            row = conn.execute(sa.select(T["meta"].c.value).where(T["meta"].c.key == key)).first()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            self._set_meta(conn, key, value)

    @property
    def generation(self) -> int:
        """A counter bumped by every commit that changes the set of vectors."""
        return int(self.get_meta("generation", "0"))

    def bump_generation(self) -> int:
        with self.transaction() as conn:
            m = T["meta"]
            row = conn.execute(sa.select(m.c.value).where(m.c.key == "generation")).first()
            gen = int(row[0]) + 1 if row else 1
            self._set_meta(conn, "generation", str(gen))
        return gen

    # ---------------------------------------------------------------- model

    def get_model(self) -> ModelRecord | None:
        if self._model is None:
            raw = self.get_meta("model")
            if raw:
                d = json.loads(raw)
                self._model = ModelRecord(d["model_id"], d["config_hash"], d["frontend"], d["dim"])
        return self._model

    def ensure_model(self, rec: ModelRecord) -> None:
        """Record the model of a new catalog, or refuse another one (invariant 3)."""
        have = self.get_model()
        if have is None:
            self.set_meta("model", json.dumps(rec.__dict__, sort_keys=True))
            self._model = rec
            return
        if have.key() != rec.key() or have.dim != rec.dim:
            raise ModelMismatch(
                f"this index was built with model '{have.model_id}' (config {have.config_hash[:12]}); "
                f"'{rec.model_id}' (config {rec.config_hash[:12]}) would mix vector spaces. "
                "Use the same --model, or start a new index with --index DIR"
            )

    @property
    def vector_dtype(self) -> str:
        return self.get_meta("vector_dtype", "float32")

    def ensure_vector_dtype(self, dtype: str) -> None:
        """How chunk vectors are stored: float32, or float16 at half the size. Chosen when the
        catalog is new; float16 keeps cosines within ~1e-3 and the exact re-ranking reads it."""
        if dtype not in ("float32", "float16"):
            raise UserError("--vector-dtype must be float32 or float16")
        if dtype == self.vector_dtype:
            return
        if self.chunk_count():
            raise UserError(
                f"this catalog stores {self.vector_dtype} vectors; the storage type is chosen when an "
                "index is created (start a new one with --index DIR)"
            )
        self.set_meta("vector_dtype", dtype)

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
        with self._read() as conn:
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

    # ---------------------------------------------------------------- files

    def file_states(self, root_id: int) -> dict[str, FileState]:
        """rel -> FileState of every file of a root (a rerun reads the lighter file_stats).

        The rows come straight from the driver's cursor (SQLAlchemy's Row objects cost more
        than the query at a million files) and only names stored encoded are decoded."""
        f = T["files"]
        q = sa.select(f.c.id, f.c.rel, f.c.size, f.c.mtime_ns, f.c.content_hash, f.c.status).where(
            f.c.root_id == root_id
        )
        make = FileState._make
        with self._read() as conn, gc_paused():
            out = {row[1]: make(row) for row in _driver_rows(conn, q)}
            # Names that are not valid UTF-8 are stored encoded (rare): decode those keys.
            for key in [k for k in out if k.startswith(_FS_PREFIX)]:
                state = out.pop(key)
                rel = rel_from_db(key)
                out[rel] = state._replace(rel=rel)
        return out

    def file_stats(self, root_id: int) -> set[tuple[str, int, int]]:
        """{(rel, size, mtime_ns)} of every file of a root: the least a rerun compares the walk
        with. A no-op rerun over a million files reads only this, as the driver's own row
        tuples put in a set by C (~1 s at 1M files, where FileState objects in a dict took ~3 s
        and comparing them ~1 s more); file_states_for gives the rest for the few that changed."""
        f = T["files"]
        by_root = f.c.root_id
        if self.engine.dialect.name == "sqlite" and len(self.roots()) == 1:
            # One root holds every file: a plain table scan reads them twice as fast as the
            # (root_id, rel) index would, which looks up each row in the table (SQLite has no
            # statistics to know it). "+ 0" keeps the planner off the index.
            by_root = by_root + 0
        q = sa.select(f.c.rel, f.c.size, f.c.mtime_ns).where(by_root == root_id)
        out: set[tuple[str, int, int]] = set()
        with self._read() as conn, gc_paused():
            for rows in _driver_batches(conn, q):
                out.update(rows)
            # Names stored encoded (rare; not UTF-8 on disk), found by a range of the index:
            # ":fsb64;" is the prefix with its last character incremented.
            encoded = sa.select(f.c.rel, f.c.size, f.c.mtime_ns).where(
                f.c.root_id == root_id, f.c.rel >= _FS_PREFIX, f.c.rel < _FS_PREFIX[:-1] + ";"
            )
            for rel, size, mtime_ns in list(_driver_rows(conn, encoded)):
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
        with self._read() as conn:
            for r in _rows_in(conn, q, f.c.rel, [rel_to_db(rel) for rel in rels]):
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
        with self._read() as conn:
            row = conn.execute(q).first()
        return row[0] if row else None

    def _file_columns(self):
        f, r = T["files"], T["roots"]
        return (
            sa.select(
                f.c.id, f.c.root_id, r.c.path.label("root"), f.c.rel, f.c.size, f.c.mtime_ns,
                f.c.content_hash, f.c.duration_s, f.c.sample_rate, f.c.channels, f.c.subtype,
                f.c.container, f.c.status, f.c.error,
            ).select_from(f.join(r, f.c.root_id == r.c.id))
        )

    def files_by_ids(self, ids: Iterable[int]) -> dict[int, FileRow]:
        ids = list(ids)
        out: dict[int, FileRow] = {}
        with self._read() as conn:
            for row in _rows_in(conn, self._file_columns(), T["files"].c.id, ids):
                out[row.id] = _file_row(row)
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
                q = self._file_columns().where(T["files"].c.root_id == root.id, T["files"].c.rel == rel_to_db(rel))
                with self._read() as conn:
                    row = conn.execute(q).first()
                if row:
                    return _file_row(row)
        return None

    def files_with_hash(self, content_hash: str) -> list[int]:
        f = T["files"]
        with self._read() as conn:
            return [r[0] for r in conn.execute(sa.select(f.c.id).where(f.c.content_hash == content_hash))]

    def _upsert_file(self, conn, root_id: int, rel: str, values: dict) -> tuple[int, list[int]]:
        """Insert or update the file row; drop its old chunks. Returns (file id, old chunk ids)."""
        f, c = T["files"], T["chunks"]
        rel = rel_to_db(rel)
        row = conn.execute(sa.select(f.c.id).where(f.c.root_id == root_id, f.c.rel == rel)).first()
        if row:
            fid = row[0]
            old = [r[0] for r in conn.execute(sa.select(c.c.id).where(c.c.file_id == fid))]
            if old:
                conn.execute(c.delete().where(c.c.file_id == fid))
            conn.execute(T["file_meta"].delete().where(T["file_meta"].c.file_id == fid))
            self._delete_fts(conn, [fid])
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
    ) -> tuple[int, list[int], list[int]]:
        """Store an embedded file. Returns (file id, new chunk ids, replaced chunk ids)."""
        values = dict(
            size=size, mtime_ns=mtime_ns, content_hash=content_hash, status="ok", error=None,
            indexed_at=time.time(), **info.__dict__,
        )
        with self.transaction() as conn:
            fid, old = self._upsert_file(conn, root_id, rel, values)
            new_ids = self._insert_chunks(conn, fid, chunks, encode_vectors(vectors, self.vector_dtype))
            self._write_metadata(conn, fid, rel, metadata)
        return fid, new_ids, old

    def copy_file(
        self, src_id: int, root_id: int, rel: str, *, size: int, mtime_ns: int
    ) -> tuple[int, list[int], list[int]]:
        """Give a moved or duplicated file the stored chunks of `src_id` (no model call)."""
        f, c, m = T["files"], T["chunks"], T["file_meta"]
        with self.transaction() as conn:
            src = conn.execute(sa.select(f).where(f.c.id == src_id)).mappings().one()
            values = {
                k: src[k]
                for k in ("content_hash", "duration_s", "sample_rate", "channels", "subtype", "container")
            }
            values.update(size=size, mtime_ns=mtime_ns, status="ok", error=None, indexed_at=time.time())
            fid, old = self._upsert_file(conn, root_id, rel, values)
            rows = conn.execute(
                sa.select(c.c.idx, c.c.start_s, c.c.end_s, c.c.vector).where(c.c.file_id == src_id).order_by(c.c.idx)
            ).all()
            new_ids = self._insert_chunks(conn, fid, [(r[0], r[1], r[2]) for r in rows], [r[3] for r in rows])
            meta = {k: v for k, v in conn.execute(sa.select(m.c.key, m.c.value).where(m.c.file_id == src_id))}
            self._write_metadata(conn, fid, rel, meta)
        return fid, new_ids, old

    def mark_failed(
        self, root_id: int, rel: str, reason: str, *, size: int, mtime_ns: int, content_hash: str | None = None
    ) -> list[int]:
        """Record a file that could not be indexed (invariant 4). Returns chunk ids it lost."""
        values = dict(
            size=size, mtime_ns=mtime_ns, content_hash=content_hash, status="failed",
            error=safe_text(reason)[:500], indexed_at=time.time(), duration_s=None, sample_rate=None,
            channels=None, subtype=None, container=None,
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
            for i in range(0, len(ids), 900):
                part = ids[i : i + 900]
                removed += [r[0] for r in conn.execute(sa.select(c.c.id).where(c.c.file_id.in_(part)))]
                conn.execute(c.delete().where(c.c.file_id.in_(part)))
                conn.execute(T["file_meta"].delete().where(T["file_meta"].c.file_id.in_(part)))
                conn.execute(T["tags"].delete().where(T["tags"].c.file_id.in_(part)))
                self._delete_fts(conn, part)
                conn.execute(f.delete().where(f.c.id.in_(part)))
        return removed

    def _insert_chunks(self, conn, fid: int, chunks, blobs) -> list[int]:
        c = T["chunks"]
        ids = []
        # One INSERT per chunk keeps the returned ids exact on every backend.
        for (idx, start, end), blob in zip(chunks, blobs):
            ids.append(
                conn.execute(
                    c.insert().values(file_id=fid, idx=idx, start_s=start, end_s=end, vector=blob)
                ).inserted_primary_key[0]
            )
        return ids

    # ---------------------------------------------------------------- metadata and keywords

    def _write_metadata(self, conn, fid: int, rel: str, metadata: dict[str, str]) -> None:
        if metadata:
            conn.execute(
                T["file_meta"].insert(),
                [{"file_id": fid, "key": safe_text(k), "value": safe_text(str(v))[:4000]} for k, v in metadata.items()],
            )
        self._insert_fts(conn, fid, keyword_text(rel, metadata))

    def _insert_fts(self, conn, fid: int, text: str) -> None:
        if self.dialect == "sqlite":
            conn.exec_driver_sql("INSERT INTO files_fts(rowid, body) VALUES (?, ?)", (fid, text))
        else:
            conn.execute(T["file_text"].insert().values(file_id=fid, body=text))

    def _delete_fts(self, conn, ids: Sequence[int]) -> None:
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
        with self._read() as conn:
            for fid, k, v in _rows_in(conn, sa.select(m.c.file_id, m.c.key, m.c.value), m.c.file_id, ids):
                out[fid][k] = v
        return out

    def keyword_search(self, query: str, limit: int = 200) -> list[tuple[int, float]]:
        """Files whose names, folders and descriptions match the words of `query`, best first."""
        words = fts_words(query)
        if not words:
            return []
        with self._read() as conn:
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

    # ---------------------------------------------------------------- chunks and vectors

    def indexed_file_count(self) -> int:
        f = T["files"]
        with self._read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(f).where(f.c.status == "ok")).scalar_one()

    def chunk_count(self) -> int:
        with self._read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(T["chunks"])).scalar_one()

    def iter_vectors(self, batch: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All chunk (ids, vectors) in id order, in batches (for rebuilding FAISS)."""
        model = self.get_model()
        if model is None:
            return
        c = T["chunks"]
        last = 0
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    sa.select(c.c.id, c.c.vector).where(c.c.id > last).order_by(c.c.id).limit(batch)
                ).all()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            yield ids, decode_vectors([r[1] for r in rows], model.dim)
            last = int(ids[-1])

    def all_chunk_ids(self) -> np.ndarray:
        with self._read() as conn:
            return np.fromiter(
                (r[0] for r in conn.execute(sa.select(T["chunks"].c.id).order_by(T["chunks"].c.id))),
                dtype=np.int64,
            )

    def chunks_by_ids(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        ids = [int(i) for i in ids]
        c = T["chunks"]
        out = {}
        with self._read() as conn:
            for r in _rows_in(conn, sa.select(c.c.id, c.c.file_id, c.c.idx, c.c.start_s, c.c.end_s), c.c.id, ids):
                out[r[0]] = ChunkRow(*r)
        return out

    def chunk_files(self, ids: Iterable[int]) -> dict[int, int]:
        """chunk id -> file id for the chunks that exist (a light chunks_by_ids)."""
        ids = [int(i) for i in ids]
        c = T["chunks"]
        out: dict[int, int] = {}
        with self._read() as conn:
            out.update((r[0], r[1]) for r in _rows_in(conn, sa.select(c.c.id, c.c.file_id), c.c.id, ids))
        return out

    def chunk_vectors_for_files(self, file_ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(chunk ids, their file ids, their vectors float32) of every chunk of the files."""
        fids = sorted({int(f) for f in file_ids})
        c = T["chunks"]
        model = self.get_model()
        dim = model.dim if model else 0
        with self._read() as conn:
            rows = list(_rows_in(conn, sa.select(c.c.id, c.c.file_id, c.c.vector), c.c.file_id, fids))
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        owners = np.fromiter((r[1] for r in rows), np.int64, len(rows))
        return ids, owners, decode_vectors([r[2] for r in rows], dim)

    def chunks_for(self, file_id: int) -> tuple[list[ChunkRow], np.ndarray]:
        c = T["chunks"]
        model = self.get_model()
        with self._read() as conn:
            rows = conn.execute(
                sa.select(c.c.id, c.c.file_id, c.c.idx, c.c.start_s, c.c.end_s, c.c.vector)
                .where(c.c.file_id == file_id)
                .order_by(c.c.idx)
            ).all()
        dim = model.dim if model else 0
        return [ChunkRow(*r[:5]) for r in rows], decode_vectors([r[5] for r in rows], dim)

    def vectors_for_chunks(self, ids: Sequence[int], *, missing_ok: bool = False) -> np.ndarray:
        """Vectors in the order of `ids`; with missing_ok, unknown ids give zero vectors."""
        c = T["chunks"]
        ids = [int(i) for i in ids]
        found: dict[int, bytes] = {}
        with self._read() as conn:
            found.update(_rows_in(conn, sa.select(c.c.id, c.c.vector), c.c.id, ids))
        dim = self.get_model().dim
        if missing_ok and len(found) < len(ids):
            zero = np.zeros(dim, np.float32).tobytes() if self.vector_dtype != "float16" else np.zeros(dim, np.float16).tobytes()
            return decode_vectors([found.get(i, zero) for i in ids], dim)
        return decode_vectors([found[i] for i in ids], dim)

    def sample_text_vectors(self, n: int) -> np.ndarray:
        """Up to n cached text vectors of this catalog's model (queries people asked)."""
        model = self.get_model()
        if model is None:
            return np.zeros((0, 0), np.float32)
        t = T["text_vectors"]
        with self._read() as conn:
            rows = conn.execute(sa.select(t.c.vector).where(t.c.model_key == model.key()).limit(n)).all()
        if not rows:
            return np.zeros((0, model.dim), np.float32)
        return np.stack([np.frombuffer(r[0], dtype=np.float32) for r in rows])

    def chunk_ids_for_files(self, file_ids: Iterable[int]) -> np.ndarray:
        """The sorted chunk ids of these files."""
        ids = sorted(int(i) for i in file_ids)
        c = T["chunks"]
        if len(ids) > 20_000 and len(ids) * 8 > self.chunk_count():
            # A filter that keeps much of a big library (--ext wav): one pass over the chunks
            # table (~1 us a chunk) beats thousands of IN lists (~8 us a file).
            with self._read() as conn, gc_paused():
                pairs = np.fromiter(
                    itertools.chain.from_iterable(_driver_rows(conn, sa.select(c.c.id, c.c.file_id))), dtype=np.int64
                ).reshape(-1, 2)
            keep = np.isin(pairs[:, 1], np.asarray(ids, dtype=np.int64), assume_unique=False)
            return np.sort(pairs[keep, 0])
        out: list[int] = []
        with self._read() as conn:
            out += [r[0] for r in _rows_in(conn, sa.select(c.c.id), c.c.file_id, ids)]
        return np.asarray(sorted(out), dtype=np.int64)

    def filter_file_ids(
        self,
        *,
        root: str | None = None,
        under: str | None = None,
        exts: Sequence[str] = (),
        min_duration: float | None = None,
        max_duration: float | None = None,
        sample_rate: int | None = None,
        channels: int | None = None,
        tags: Sequence[str] = (),
    ) -> set[int]:
        """Ids of indexed files that pass every given filter (bound parameters only)."""
        f, r = T["files"], T["roots"]
        q = sa.select(f.c.id).select_from(f.join(r, f.c.root_id == r.c.id)).where(f.c.status == "ok")
        if root:
            q = q.where(r.c.path == root)
        if under:
            conds = []
            for root_row in self.roots():
                base = root_row.path.rstrip("/")
                if under == base or under.startswith(base + "/"):
                    rel = under[len(base) + 1 :]
                    conds.append(
                        sa.and_(r.c.id == root_row.id, sa.true() if not rel else f.c.rel.startswith(rel + "/", autoescape=True))
                    )
            if not conds:
                return set()
            q = q.where(sa.or_(*conds))
        if exts:
            q = q.where(sa.or_(*[sa.func.lower(f.c.rel).endswith("." + e, autoescape=True) for e in exts]))
        if min_duration is not None:
            q = q.where(f.c.duration_s >= min_duration)
        if max_duration is not None:
            q = q.where(f.c.duration_s <= max_duration)
        if sample_rate:
            q = q.where(f.c.sample_rate == sample_rate)
        if channels:
            q = q.where(f.c.channels == channels)
        if tags:
            t = T["tags"]
            q = q.where(f.c.id.in_(self._tagged_query(t, tags)))
        with self._read() as conn, gc_paused():
            return {row[0] for row in _driver_rows(conn, q)}  # may be most of a million files

    @staticmethod
    def _tagged_query(t, labels: Sequence[str]):
        """Files carrying any of `labels`, where a user's rejection overrides machine tags."""
        low = [x.lower() for x in labels]
        label_match = sa.or_(sa.func.lower(t.c.label).in_(low), sa.func.lower(t.c.cat_id).in_(low))
        rejected = sa.select(t.c.file_id).where(label_match, t.c.source == "user", t.c.score <= 0)
        return sa.select(t.c.file_id).where(label_match, t.c.score > 0, t.c.file_id.not_in(rejected))

    def tags_for(self, file_ids: Iterable[int]) -> dict[int, list[str]]:
        ids = list(file_ids)
        t = T["tags"]
        out: dict[int, dict[str, float]] = {}
        rejected: set[tuple[int, str]] = set()
        with self._read() as conn:
            q = sa.select(t.c.file_id, t.c.label, t.c.score, t.c.source)
            for fid, label, score, source in _rows_in(conn, q, t.c.file_id, ids):
                if source == "user" and score <= 0:
                    rejected.add((fid, label))
                else:
                    out.setdefault(fid, {})
                    out[fid][label] = max(score, out[fid].get(label, score))
        return {
            fid: [lab for lab, _ in sorted(d.items(), key=lambda kv: -kv[1]) if (fid, lab) not in rejected]
            for fid, d in out.items()
        }

    # ---------------------------------------------------------------- text vector cache

    def cached_text_vectors(self, model_key: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        t = T["text_vectors"]
        out = {}
        with self._read() as conn:
            q = sa.select(t.c.text, t.c.vector).where(t.c.model_key == model_key)
            for text, blob in _rows_in(conn, q, t.c.text, texts, size=500):
                out[text] = np.frombuffer(blob, dtype=np.float32).copy()
        return out

    def store_text_vectors(self, model_key: str, texts: Sequence[str], vecs: np.ndarray) -> None:
        """Cache text vectors. A reader's first write waits for the catalog's integrity check
        (never write into damage), which is O(catalog size): seconds at a million files. So
        the query does not wait for it: the check runs in the background and the vectors are
        written once it has passed (at a later query, or at close if it is done by then;
        a one-shot query on a huge catalog may leave them unwritten: it is only a cache)."""
        if self.read_only:
            return
        first = "_pending_text" not in self.__dict__
        self.__dict__.setdefault("_pending_text", []).append(
            (model_key, list(texts), np.asarray(vecs, np.float32)))
        # Wait a little, once, where the check is quick (small catalogs: then a one-shot
        # query caches its text as well); never again in this process.
        self._flush_text_vectors(wait=0.2 if first and self._db_bytes() < 256 << 20 else 0.0)

    def _db_bytes(self) -> int:
        database = self.engine.url.database if self.dialect == "sqlite" else None
        try:
            return os.path.getsize(database) if database else 0
        except OSError:
            return 0

    def _flush_text_vectors(self, wait: float) -> bool:
        """Write the pending text vectors if the catalog is verified within `wait` seconds."""
        pending = self.__dict__.get("_pending_text")
        if not pending:
            return True
        if not getattr(self, "_verified", False):
            self.verify_in_background()
            checking = self.__dict__.get("_verifying")
            if checking is not None:
                checking[0].join(wait)
                if checking[0].is_alive():
                    return False
            self.verify()  # raises CatalogError on damage: nothing is written
        t = T["text_vectors"]
        with self.transaction() as conn:
            for model_key, texts, vecs in pending:
                conn.execute(t.delete().where(t.c.model_key == model_key, t.c.text.in_(texts)))
                conn.execute(t.insert(), [{"model_key": model_key, "text": s, "vector": v.tobytes()}
                                          for s, v in zip(texts, vecs)])
        pending.clear()
        return True

    # ---------------------------------------------------------------- reports

    def counts(self) -> dict[str, int]:
        f, c = T["files"], T["chunks"]
        with self._read() as conn:
            by_status = dict(conn.execute(sa.select(f.c.status, sa.func.count()).group_by(f.c.status)).all())
            chunks = conn.execute(sa.select(sa.func.count()).select_from(c)).scalar_one()
            duration = conn.execute(sa.select(sa.func.sum(f.c.duration_s))).scalar() or 0.0
        return {
            "files": sum(by_status.values()),
            "indexed": by_status.get("ok", 0),
            "failed": by_status.get("failed", 0),
            "chunks": chunks,
            "hours": round(duration / 3600.0, 2),
        }

    def root_counts(self) -> dict[int, int]:
        f = T["files"]
        with self._read() as conn:
            return dict(conn.execute(sa.select(f.c.root_id, sa.func.count()).group_by(f.c.root_id)).all())

    def failures(self, limit: int | None = None) -> list[FileRow]:
        q = self._file_columns().where(T["files"].c.status == "failed").order_by(T["files"].c.id)
        if limit:
            q = q.limit(limit)
        with self._read() as conn:
            return [_file_row(r) for r in conn.execute(q)]


_FS_PREFIX = ":fsb64:"


def _rows_in(conn: sa.Connection, select, column, values: Sequence, size: int = 900) -> Iterator:
    """The rows of `select` whose `column` is in `values`, queried in parts that stay under
    SQLite's limit on bound variables."""
    values = list(values)
    for i in range(0, len(values), size):
        yield from conn.execute(select.where(column.in_(values[i : i + size])))


_gc_pause_lock = threading.Lock()
_gc_pause = {"depth": 0, "was": False}


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a million long-lived objects are made: each
    collection would walk all of them again (2 s of a 3 s load at 1M files).

    Nested pauses (the rerun's walk around its catalog read) and pauses on other threads
    count: collection resumes, if it was on, when the last one ends."""
    import gc

    with _gc_pause_lock:
        if _gc_pause["depth"] == 0:
            _gc_pause["was"] = gc.isenabled()
            gc.disable()
        _gc_pause["depth"] += 1
    try:
        yield
    finally:
        with _gc_pause_lock:
            _gc_pause["depth"] -= 1
            if _gc_pause["depth"] == 0 and _gc_pause["was"]:
                gc.enable()


def _driver_rows(conn: sa.Connection, q, batch: int = 10_000) -> Iterator[tuple]:
    """The rows of a SELECT as the driver's plain tuples, on `conn`'s transaction (for reads of
    a million rows, where building a SQLAlchemy Row per row is most of the time)."""
    for rows in _driver_batches(conn, q, batch):
        yield from rows


def _driver_batches(conn: sa.Connection, q, batch: int = 10_000) -> Iterator[list[tuple]]:
    """_driver_rows a list of up to `batch` rows at a time (for consumers that take a list in C)."""
    comp = q.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = comp.construct_params()
    if comp.positional:
        params = tuple(params[k] for k in comp.positiontup)
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cur = conn.connection.dbapi_connection.cursor()
    try:
        cur.execute(str(comp), params)
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                return
            yield rows
    except dbapi_error as exc:  # as SQLAlchemy would raise it (callers report damage from those)
        raise sa.exc.DBAPIError.instance(str(comp), params, exc, dbapi_error) from exc
    finally:
        cur.close()


def rel_to_db(rel: str) -> str:
    """A relative path as stored: itself, or, for names that are not UTF-8 on disk (lone
    surrogates from os.fsdecode), their raw bytes in base64 so the exact name comes back."""
    try:
        rel.encode("utf-8")
        return rel
    except UnicodeEncodeError:
        import base64
        import os

        return _FS_PREFIX + base64.urlsafe_b64encode(os.fsencode(rel)).decode("ascii")


def rel_from_db(stored: str) -> str:
    if stored.startswith(_FS_PREFIX):
        import base64
        import os

        try:
            return os.fsdecode(base64.urlsafe_b64decode(stored[len(_FS_PREFIX):]))
        except ValueError:
            return stored
    return stored


def _file_row(row) -> FileRow:
    r = FileRow(*row)
    r.rel = rel_from_db(r.rel)
    return r


def fts_words(text: str) -> list[str]:
    """Lower-case word tokens safe to put in an FTS query (no operators or quotes survive)."""
    import re

    return [w for w in re.findall(r"[^\W_]+", text.lower()) if w][:32]


def keyword_text(rel: str, metadata: dict[str, str]) -> str:
    """What keyword search sees of a file: path words, descriptions, UCS fields and tags."""
    import re

    parts = [re.sub(r"[_\-./\\]+", " ", safe_text(rel))]
    for k, v in metadata.items():
        if k.startswith(("bext.description", "ixml.", "info.", "tag.", "ucs.")) and v:
            parts.append(safe_text(str(v)))
    return " ".join(parts)[:20000]

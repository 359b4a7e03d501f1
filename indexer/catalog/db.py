"""Opening a catalog database: the engine and its pragmas, the integrity check, migrations on
open, transactions and read connections, the meta table (generation) and the model record.

`Database` is the base of `Catalog`; the other parts of the catalog reach the database only
through `transaction()` (writes, one commit) and `read_connection()` (reads).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event

from ..config import UserError
from . import migrations
from .rows import ModelRecord
from .schema import tables as T

log = logging.getLogger(__name__)

SQLITE_PREFIX = "sqlite:///"
# Seconds a connection waits for another writer's lock before giving up.
BUSY_TIMEOUT_S = 30
# Characters of an integrity-check report kept in the one-line error.
DAMAGE_REPORT_CHARS = 200


class CatalogError(UserError):
    """The catalog cannot be used as it is (newer schema, corrupt file, other model)."""


class ModelMismatch(CatalogError):
    pass


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cur.close()


def write_meta(conn: sa.Connection, key: str, value: str) -> None:
    """Set one meta value on `conn`'s transaction."""
    m = T["meta"]
    if conn.execute(sa.select(m.c.key).where(m.c.key == key)).first():
        conn.execute(m.update().where(m.c.key == key).values(value=value))
    else:
        conn.execute(m.insert().values(key=key, value=value))


class Database:
    """One catalog database. Thread-safe for reads; one writer at a time."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.dialect = engine.dialect.name
        self._local = threading.local()
        self._model: ModelRecord | None = None
        self.url = str(engine.url)
        self.read_only = False

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, url: str, *, create: bool = True, verify: bool = False):
        """Open (and migrate) a catalog. `verify` runs an integrity check first: writers do,
        so that a damaged catalog is reported and never written to."""
        read_only = False
        if url.startswith(SQLITE_PREFIX):
            path = Path(url[len(SQLITE_PREFIX):])
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
                engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S})
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
                cat.migrate(create)
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
                f"the catalog at {self.url} is corrupt (integrity check: {first.strip()[:DAMAGE_REPORT_CHARS]}); "
                "restore it from a backup or start a new index with --index DIR; nothing was written to it"
            )
            raise self._damage
        self._verified = True

    @property
    def damage(self) -> "CatalogError | None":
        """The integrity failure verify() found, if any: a caller that tolerates a failed write
        (a read-only index still answers queries) re-raises this one instead of hiding it."""
        return self.__dict__.get("_damage")

    def verify_in_background(self) -> None:
        """Start the integrity check on its own connection and thread; the first write (any
        transaction) waits for it and is refused if it fails, so nothing is ever written into
        a damaged catalog. The check is O(catalog size), so a build overlaps it with its walk;
        a no-op build calls verify() at the end to report damage."""
        if getattr(self, "_verified", False) or "_verifying" in self.__dict__ or self.dialect != "sqlite":
            return
        box = ["not checked"]

        def check() -> None:
            box[0] = self.integrity_check()

        thread = threading.Thread(target=check, name="sfx-catalog-check", daemon=True)
        self._verifying = (thread, box)
        thread.start()

    def verified_within(self, wait: float) -> bool:
        """True once the integrity check has passed, starting it in the background if need be
        and waiting at most `wait` seconds; False while it still runs. Raises CatalogError on
        damage."""
        if getattr(self, "_verified", False):
            return True
        self.verify_in_background()
        checking = self.__dict__.get("_verifying")
        if checking is not None:
            checking[0].join(wait)
            if checking[0].is_alive():
                return False
        self.verify()
        return True

    @property
    def damaged(self) -> bool:
        """The integrity check has failed in this process."""
        return "_damage" in self.__dict__

    def close(self, *, wait_for_check: bool = True) -> None:
        """Release the connections. A background check still running is waited for unless
        `wait_for_check` is False (then it is left to die with the process)."""
        pending = self.__dict__.pop("_verifying", None)
        if pending is not None and wait_for_check:
            pending[0].join()
        self.engine.dispose()

    def migrate(self, create: bool) -> None:
        """Bring the schema to this code's version, or refuse a newer one."""
        with self.engine.begin() as conn:
            insp = sa.inspect(conn)
            if not insp.has_table("meta"):
                current = 0
            else:
                row = conn.execute(
                    sa.select(T["meta"].c.value).where(T["meta"].c.key == "schema_version")
                ).first()
                current = int(row[0]) if row else 0
            if current > migrations.SCHEMA_VERSION:
                raise CatalogError(
                    f"this catalog has schema version {current}, newer than this sfx-index "
                    f"understands ({migrations.SCHEMA_VERSION}); upgrade sfx-index"
                )
            if current == migrations.SCHEMA_VERSION:
                return
            if current == 0 and not create:
                raise CatalogError("no catalog here; run 'sfx-index build LIBRARY' first")
            if insp.get_table_names():
                self.verify()  # never migrate (write) an existing catalog before it is checked
            migrations.upgrade(conn, self.dialect, current)

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
    def read_connection(self) -> Iterator[sa.Connection]:
        """A connection to read on: this thread's open transaction if there is one (so reads
        see its writes), else a fresh one."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        with self.engine.connect() as conn:
            yield conn

    # ---------------------------------------------------------------- meta

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self.read_connection() as conn:
            row = conn.execute(sa.select(T["meta"].c.value).where(T["meta"].c.key == key)).first()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            write_meta(conn, key, value)

    @property
    def generation(self) -> int:
        """A counter bumped by every commit that changes the set of vectors."""
        return int(self.get_meta("generation", "0"))

    def bump_generation(self) -> int:
        with self.transaction() as conn:
            m = T["meta"]
            row = conn.execute(sa.select(m.c.value).where(m.c.key == "generation")).first()
            gen = int(row[0]) + 1 if row else 1
            write_meta(conn, "generation", str(gen))
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

"""Reading many rows fast: IN lists in parts, the driver's own row tuples, and a pause of the
cyclic garbage collector while a million long-lived objects are made.

These are the hot paths of a rerun over a large library and of broad filters; keep their
logic as it is unless a benchmark (scripts/bench_catalog.py, bench_noop.py) says otherwise.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator, Sequence

import sqlalchemy as sa

# Values per IN list: under SQLite's default limit of 999 bound variables per statement.
IN_BATCH = 900
# Rows fetched from a driver cursor at a time.
DRIVER_BATCH = 10_000


def rows_in(conn: sa.Connection, select, column, values: Sequence, size: int = IN_BATCH) -> Iterator:
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
    collection would walk all of them again (most of the time of a large catalog read).

    Nested pauses (the rerun's walk around its catalog read) and pauses on other threads
    count: collection resumes, if it was on, when the last one ends."""
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


def driver_rows(conn: sa.Connection, q, batch: int = DRIVER_BATCH) -> Iterator[tuple]:
    """The rows of a SELECT as the driver's plain tuples, on `conn`'s transaction (for reads of
    a million rows, where building a SQLAlchemy Row per row is most of the time)."""
    for rows in driver_batches(conn, q, batch):
        yield from rows


def driver_batches(conn: sa.Connection, q, batch: int = DRIVER_BATCH) -> Iterator[list[tuple]]:
    """driver_rows a list of up to `batch` rows at a time (for consumers that take a list in C)."""
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

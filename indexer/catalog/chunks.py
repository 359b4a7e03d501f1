"""Chunks and their vectors: how vectors are stored (float32 or float16), writing a file's
chunks, and every read of them (FAISS rebuilds, re-ranking, find-similar, tagging)."""

from __future__ import annotations

import itertools
from typing import Iterable, Iterator, Sequence

import numpy as np
import sqlalchemy as sa

from ..config import UserError
from .batching import driver_rows, gc_paused, rows_in
from .encoding import decode_vectors
from .rows import ChunkRow
from .schema import tables as T

VECTOR_DTYPES = ("float32", "float16")
# Chunks per batch when every vector is read (FAISS rebuilds, tagging).
VECTOR_BATCH = 65536
# chunk_ids_for_files reads the whole (id, file_id) column instead of IN lists when asked for
# more than this many files that are also more than 1/BROAD_SHARE of the chunk count.
BROAD_FILES = 20_000
BROAD_SHARE = 8


class ChunksMixin:
    """Chunks and vectors of a Catalog."""

    @property
    def vector_dtype(self) -> str:
        return self.get_meta("vector_dtype", "float32")

    def ensure_vector_dtype(self, dtype: str) -> None:
        """How chunk vectors are stored: float32, or float16 at half the size. Chosen when the
        catalog is new; float16 keeps cosines within ~1e-3 and the exact re-ranking reads it."""
        if dtype not in VECTOR_DTYPES:
            raise UserError("--vector-dtype must be float32 or float16")
        if dtype == self.vector_dtype:
            return
        if self.chunk_count():
            raise UserError(
                f"this catalog stores {self.vector_dtype} vectors; the storage type is chosen when an "
                "index is created (start a new one with --index DIR)"
            )
        self.set_meta("vector_dtype", dtype)

    def insert_chunks(self, conn: sa.Connection, fid: int, chunks, blobs) -> list[int]:
        """Insert a file's chunks (idx, start_s, end_s) with their vector bytes; returns their ids."""
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

    def indexed_file_count(self) -> int:
        f = T["files"]
        with self.read_connection() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(f).where(f.c.status == "ok")).scalar_one()

    def chunk_count(self) -> int:
        with self.read_connection() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(T["chunks"])).scalar_one()

    def iter_vectors(self, batch: int = VECTOR_BATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All chunk (ids, vectors) in id order, in batches (for rebuilding FAISS)."""
        model = self.get_model()
        if model is None:
            return
        c = T["chunks"]
        last = 0
        while True:
            with self.read_connection() as conn:
                rows = conn.execute(
                    sa.select(c.c.id, c.c.vector).where(c.c.id > last).order_by(c.c.id).limit(batch)
                ).all()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            yield ids, decode_vectors([r[1] for r in rows], model.dim)
            last = int(ids[-1])

    def iter_chunk_files(self, batch: int = VECTOR_BATCH) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """All chunks of indexed files as (chunk ids, file ids, vectors) batches ordered by (file, chunk id).

        The file id rides along in the same query so that tagging needs no second pass.
        """
        model = self.get_model()
        if model is None:
            return
        c = T["chunks"]
        last = (0, 0)
        while True:
            # Keyset pagination on (file_id, id): ix_chunks_file serves the order, and a
            # file's chunks come out together whatever order they were inserted in.
            q = (
                sa.select(c.c.id, c.c.file_id, c.c.vector)
                .where(sa.tuple_(c.c.file_id, c.c.id) > sa.tuple_(sa.literal(last[0]), sa.literal(last[1])))
                .order_by(c.c.file_id, c.c.id)
                .limit(batch)
            )
            with self.read_connection() as conn:
                rows = conn.execute(q).all()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            fids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
            yield ids, fids, decode_vectors([r[2] for r in rows], model.dim)
            last = (int(fids[-1]), int(ids[-1]))

    def all_chunk_ids(self) -> np.ndarray:
        with self.read_connection() as conn:
            return np.fromiter(
                (r[0] for r in conn.execute(sa.select(T["chunks"].c.id).order_by(T["chunks"].c.id))),
                dtype=np.int64,
            )

    def chunks_by_ids(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        ids = [int(i) for i in ids]
        c = T["chunks"]
        out = {}
        with self.read_connection() as conn:
            for r in rows_in(conn, sa.select(c.c.id, c.c.file_id, c.c.idx, c.c.start_s, c.c.end_s), c.c.id, ids):
                out[r[0]] = ChunkRow(*r)
        return out

    def chunk_files(self, ids: Iterable[int]) -> dict[int, int]:
        """chunk id -> file id for the chunks that exist (a light chunks_by_ids)."""
        ids = [int(i) for i in ids]
        c = T["chunks"]
        out: dict[int, int] = {}
        with self.read_connection() as conn:
            out.update((r[0], r[1]) for r in rows_in(conn, sa.select(c.c.id, c.c.file_id), c.c.id, ids))
        return out

    def chunk_vectors_for_files(self, file_ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(chunk ids, their file ids, their vectors float32) of every chunk of the files."""
        fids = sorted({int(f) for f in file_ids})
        c = T["chunks"]
        model = self.get_model()
        dim = model.dim if model else 0
        with self.read_connection() as conn:
            rows = list(rows_in(conn, sa.select(c.c.id, c.c.file_id, c.c.vector), c.c.file_id, fids))
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        owners = np.fromiter((r[1] for r in rows), np.int64, len(rows))
        return ids, owners, decode_vectors([r[2] for r in rows], dim)

    def chunks_for(self, file_id: int) -> tuple[list[ChunkRow], np.ndarray]:
        c = T["chunks"]
        model = self.get_model()
        with self.read_connection() as conn:
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
        with self.read_connection() as conn:
            found.update(rows_in(conn, sa.select(c.c.id, c.c.vector), c.c.id, ids))
        dim = self.get_model().dim
        if missing_ok and len(found) < len(ids):
            zero = np.zeros(dim, np.float32).tobytes() if self.vector_dtype != "float16" else np.zeros(dim, np.float16).tobytes()
            return decode_vectors([found.get(i, zero) for i in ids], dim)
        return decode_vectors([found[i] for i in ids], dim)

    def chunk_ids_for_files(self, file_ids: Iterable[int]) -> np.ndarray:
        """The sorted chunk ids of these files."""
        ids = sorted(int(i) for i in file_ids)
        c = T["chunks"]
        if len(ids) > BROAD_FILES and len(ids) * BROAD_SHARE > self.chunk_count():
            # A filter that keeps much of a big library (--ext wav): one pass over the chunks
            # table beats thousands of IN lists (docs/benchmarks.md, bench_catalog).
            with self.read_connection() as conn, gc_paused():
                pairs = np.fromiter(
                    itertools.chain.from_iterable(driver_rows(conn, sa.select(c.c.id, c.c.file_id))), dtype=np.int64
                ).reshape(-1, 2)
            keep = np.isin(pairs[:, 1], np.asarray(ids, dtype=np.int64), assume_unique=False)
            return np.sort(pairs[keep, 0])
        out: list[int] = []
        with self.read_connection() as conn:
            out += [r[0] for r in rows_in(conn, sa.select(c.c.id), c.c.file_id, ids)]
        return np.asarray(sorted(out), dtype=np.int64)

"""The text-vector cache: query texts already embedded by this catalog's model, so a repeated
query needs no text model. Writes wait for the catalog's integrity check, off the query path."""

from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np
import sqlalchemy as sa

from .batching import rows_in
from .db import CatalogError
from .schema import tables as T

log = logging.getLogger(__name__)

# Texts per IN list when reading cached vectors (long texts: smaller parts than IN_BATCH).
TEXT_BATCH = 500
# A first store waits this long for the integrity check where the catalog is small enough
# for the check to finish in that time; elsewhere the vectors are written later.
FIRST_STORE_WAIT_S = 0.2
QUICK_CHECK_MAX_BYTES = 256 << 20


class TextVectorsMixin:
    """The text-vector cache of a Catalog."""

    def cached_text_vectors(self, model_key: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        t = T["text_vectors"]
        out = {}
        with self.read_connection() as conn:
            q = sa.select(t.c.text, t.c.vector).where(t.c.model_key == model_key)
            for text, blob in rows_in(conn, q, t.c.text, texts, size=TEXT_BATCH):
                out[text] = np.frombuffer(blob, dtype=np.float32).copy()
        return out

    def store_text_vectors(self, model_key: str, texts: Sequence[str], vecs: np.ndarray) -> None:
        """Cache text vectors. A reader's first write waits for the catalog's integrity check
        (never write into damage), which is O(catalog size). So the query does not wait for
        it: the check runs in the background and the vectors are written once it has passed
        (at a later query, or at close if it is done by then; a one-shot query on a huge
        catalog may leave them unwritten: it is only a cache)."""
        if self.read_only:
            return
        first = "_pending_text" not in self.__dict__
        self.__dict__.setdefault("_pending_text", []).append(
            (model_key, list(texts), np.asarray(vecs, np.float32)))
        # Wait a little, once, where the check is quick (small catalogs: then a one-shot
        # query caches its text as well); never again in this process.
        quick = first and self._db_bytes() < QUICK_CHECK_MAX_BYTES
        self._flush_text_vectors(wait=FIRST_STORE_WAIT_S if quick else 0.0)

    def expect_text_vectors(self) -> None:
        """A query is about to embed texts it will store: where the first store would wait
        for the integrity check (a small catalog), start the check now, so that it runs while
        the texts are embedded. A large catalog's check is still left to the store: it takes
        seconds of a core, which the text tower's load needs more."""
        if self.read_only or "_pending_text" in self.__dict__:
            return
        if self._db_bytes() < QUICK_CHECK_MAX_BYTES:
            self.verify_in_background()

    def sample_text_vectors(self, n: int) -> np.ndarray:
        """Up to n cached text vectors of this catalog's model (queries people asked)."""
        model = self.get_model()
        if model is None:
            return np.zeros((0, 0), np.float32)
        t = T["text_vectors"]
        with self.read_connection() as conn:
            rows = conn.execute(sa.select(t.c.vector).where(t.c.model_key == model.key()).limit(n)).all()
        if not rows:
            return np.zeros((0, model.dim), np.float32)
        return np.stack([np.frombuffer(r[0], dtype=np.float32) for r in rows])

    def close(self, *, wait_for_check: bool = True) -> None:
        """Write the pending text vectors if the check has passed, then close the database
        (not waiting for a check that is still running: it dies with the process)."""
        written = True
        if self.__dict__.get("_pending_text") and not self.damaged:
            try:
                written = self._flush_text_vectors(wait=0.0)
            except (CatalogError, sa.exc.SQLAlchemyError) as exc:
                log.debug("text vectors not cached: %s", exc)
        super().close(wait_for_check=wait_for_check and written)

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
        if not self.verified_within(wait):
            return False
        t = T["text_vectors"]
        with self.transaction() as conn:
            for model_key, texts, vecs in pending:
                conn.execute(t.delete().where(t.c.model_key == model_key, t.c.text.in_(texts)))
                conn.execute(t.insert(), [{"model_key": model_key, "text": s, "vector": v.tobytes()}
                                          for s, v in zip(texts, vecs)])
        pending.clear()
        return True

"""Text vectors shared by every index of one model on this machine (label sets embedded once).

Each catalog caches the text vectors of its own queries and labels, so a second index of the
same model used to embed a whole label set again (the 752 UCS CatIDs x the prompt templates:
minutes on a CPU). This cache sits beside the exported text towers, in $SFX_CACHE_DIR, else
the platform cache dir (~/.cache/sfx-index), one SQLite file per vector space:

    <cache>/text-vectors/<sha256(model key)[:24]>.sqlite     text -> float32 vector

The model key is the catalog's (checkpoint config hash + frontend settings), so vectors of
another checkpoint never mix in. It is a cache: unreadable or unwritable, it is skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

ENV_CACHE_DIR = "SFX_CACHE_DIR"


def cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser() / "text-vectors"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sfx-index", appauthor=False)) / "text-vectors"


class SharedTextVectors:
    """get/put text vectors of one model key; every failure is logged and ignored."""

    def __init__(self, model_key: str, root: Path | None = None):
        digest = hashlib.sha256(model_key.encode("utf-8", "surrogatepass")).hexdigest()[:24]
        self.path = (root or cache_dir()) / f"{digest}.sqlite"
        self.model_key = model_key

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        conn.execute("CREATE TABLE IF NOT EXISTS vectors (text TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('model_key', ?)", (self.model_key,))
        return conn

    def get(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        if not texts or not self.path.exists():
            return {}
        out: dict[str, np.ndarray] = {}
        try:
            conn = self._connect()
            try:
                uniq = list(dict.fromkeys(texts))
                for i in range(0, len(uniq), 500):
                    part = uniq[i:i + 500]
                    q = f"SELECT text, vector FROM vectors WHERE text IN ({','.join('?' * len(part))})"
                    for text, blob in conn.execute(q, part):
                        out[text] = np.frombuffer(blob, dtype=np.float32).copy()
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            log.debug("shared text-vector cache %s unreadable: %s", self.path, exc)
        return out

    def put(self, texts: Sequence[str], vecs: np.ndarray) -> None:
        try:
            conn = self._connect()
            try:
                with conn:
                    conn.executemany(
                        "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                        [(t, np.asarray(v, np.float32).tobytes()) for t, v in zip(texts, vecs)],
                    )
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            log.debug("shared text-vector cache %s not written: %s", self.path, exc)

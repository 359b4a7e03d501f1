"""How values are stored in catalog columns: relative paths whose names are not UTF-8, and
chunk vectors as float32 or float16 bytes. Pure functions, no SQL."""

from __future__ import annotations

import base64
import os
from typing import Sequence

import numpy as np

# Marks a stored rel that holds the raw bytes of a name in base64 (the name is not UTF-8).
FS_PREFIX = ":fsb64:"
# The first string after every FS_PREFIX one in sort order (its last character incremented):
# `FS_PREFIX <= rel < FS_PREFIX_END` finds the encoded names by a range of the index.
FS_PREFIX_END = FS_PREFIX[:-1] + ";"


def rel_to_db(rel: str) -> str:
    """A relative path as stored: itself, or, for names that are not UTF-8 on disk (lone
    surrogates from os.fsdecode), their raw bytes in base64 so the exact name comes back."""
    try:
        rel.encode("utf-8")
        return rel
    except UnicodeEncodeError:
        return FS_PREFIX + base64.urlsafe_b64encode(os.fsencode(rel)).decode("ascii")


def rel_from_db(stored: str) -> str:
    if stored.startswith(FS_PREFIX):
        try:
            return os.fsdecode(base64.urlsafe_b64decode(stored[len(FS_PREFIX):]))
        except ValueError:
            return stored
    return stored


def encode_vectors(vecs: np.ndarray, dtype: str) -> list[bytes]:
    arr = np.ascontiguousarray(vecs, dtype=np.float16 if dtype == "float16" else np.float32)
    return [row.tobytes() for row in arr]


def decode_vectors(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), np.float32)
    width = len(blobs[0]) // dim
    dt = np.float16 if width == 2 else np.float32
    return np.frombuffer(b"".join(blobs), dtype=dt).reshape(len(blobs), dim).astype(np.float32)

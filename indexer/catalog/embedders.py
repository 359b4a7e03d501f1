"""Which runtimes and precisions embedded a catalog's vectors, and the rule for mixing them.

Stored in the meta table as `embedders`: {"family": "float" | "int8", "runs": [{"runtime",
"precision", "version", "first_at"}, ...]}, one entry per combination that ever embedded a
window here. The rule (docs/runtime.md):

- float vectors from any runtime and float precision mix: each runtime is checked within
  cosine 0.9999 of the transformers fp32 path (an OpenVINO export before it is used, torch
  bf16 by the tests), so a window's vectors from two of them agree as closely as bf16 and
  fp32 do; the runs list says which ones made an index;
- int8 vectors and float vectors never mix: an index is int8 from its first build or never,
  and a build in the other family is refused with a message saying how to proceed.

A catalog that holds vectors from before this record was kept counts as float (torch).
"""

from __future__ import annotations

import json
import time

import sqlalchemy as sa

from .db import CatalogError
from .schema import tables as T

META_KEY = "embedders"


class EmbeddingMixMismatch(CatalogError):
    """int8 and float vectors would mix in one index."""


def family(precision: str) -> str:
    return "int8" if precision == "int8" else "float"


class EmbeddersMixin:
    """The record of what embedded a Catalog's vectors."""

    def embedders(self) -> dict | None:
        raw = self.get_meta(META_KEY)
        if raw:
            return json.loads(raw)
        with self.read_connection() as conn:
            any_chunk = conn.execute(sa.select(T["chunks"].c.id).limit(1)).first()
        if any_chunk is None:
            return None
        return {"family": "float", "runs": [{"runtime": "torch", "precision": "unrecorded", "version": None,
                                             "first_at": None}]}

    def check_embedder(self, precision: str) -> None:
        """Refuse (EmbeddingMixMismatch) a build whose vectors would mix int8 and float."""
        have = self.embedders()
        if have is None or have["family"] == family(precision):
            return
        if have["family"] == "int8":
            raise EmbeddingMixMismatch(
                "this index holds int8 vectors and int8 and float vectors never mix: build it with "
                "--precision int8, or start a float index with --index DIR")
        raise EmbeddingMixMismatch(
            "this index holds float vectors and int8 and float vectors never mix: build without "
            "--precision int8, or start an int8 index with --index DIR")

    def record_embedder(self, runtime: str, precision: str, version: str | None = None) -> dict:
        """Add (runtime, precision) to the record before its first vectors are committed."""
        self.check_embedder(precision)
        have = self.embedders() or {"family": family(precision), "runs": []}
        if not any(r["runtime"] == runtime and r["precision"] == precision and r.get("version") == version
                   for r in have["runs"]):
            have["runs"].append({"runtime": runtime, "precision": precision, "version": version,
                                 "first_at": time.time()})
            self.set_meta(META_KEY, json.dumps(have, sort_keys=True))
        return have

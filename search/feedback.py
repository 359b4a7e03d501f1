"""Relevance feedback: re-rank the whole library from a description and marked examples.

Rocchio over the stored vectors (docs/feedback.md):

    q' = ALPHA * text  +  BETA * mean(liked windows)  -  GAMMA * mean(disliked windows)

then normalised, and every indexed chunk scored against it through the vector index (the
best chunk ranks its file, as in any search). An example is a library file (the mean of its
stored chunk vectors), a moment of one (the window covering that time), or a file outside
the library (decoded and embedded on the fly). Library examples and a description the
catalog has seen cost no model call, so refining in the page is only a vector search.

    from search import Library
    from search.feedback import refine, parse_example
    with Library.open() as lib:
        rows = refine(lib, "rain", like=[parse_example("a.wav"), parse_example("b.wav@12.5")],
                      unlike=[parse_example("c.wav")])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from indexer.config import UserError

ALPHA = 1.0
BETA = 0.75
GAMMA = 0.25
MAX_EXAMPLES = 200


@dataclass(frozen=True)
class Example:
    """A file (by path or catalog id), or the moment at `start_s` in it."""

    path: str | None = None
    file_id: int | None = None
    start_s: float | None = None

    def describe(self) -> str:
        name = self.path if self.path is not None else f"file {self.file_id}"
        return name if self.start_s is None else f"{name}@{self.start_s:g}"


def parse_example(spec: str) -> Example:
    """'PATH' or 'PATH@SECONDS' (a path that exists with its '@' in it stays whole)."""
    spec = str(spec)
    head, sep, tail = spec.rpartition("@")
    if sep and head and not Path(spec).exists():
        try:
            at = float(tail)
        except ValueError:
            raise UserError(f"'{spec}': the part after @ must be seconds, e.g. door.wav@12.5") from None
        if not np.isfinite(at) or at < 0:
            raise UserError(f"'{spec}': the moment must be a time of 0 seconds or more")
        return Example(path=head, start_s=at)
    return Example(path=spec)


def example_vectors(lib, examples: Sequence[Example]) -> np.ndarray:
    """(k, d) unit vectors: a moment's window, else the file's mean window direction."""
    if not examples:
        return np.zeros((0, lib.dim), np.float32)
    if len(examples) > MAX_EXAMPLES:
        raise UserError(f"{len(examples)} examples; give at most {MAX_EXAMPLES}")
    return np.stack([
        np.asarray(lib.file_vector(e.path, file_id=e.file_id, start_s=e.start_s), np.float32) for e in examples
    ])


def rocchio(
    query: np.ndarray | None, liked: np.ndarray, disliked: np.ndarray, *,
    alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA,
) -> np.ndarray:
    """The feedback query, unit length. `query` may be None (examples only)."""
    parts = []
    if query is not None:
        parts.append(alpha * np.asarray(query, np.float32))
    if len(liked):
        parts.append(beta * np.asarray(liked, np.float32).mean(axis=0))
    if len(disliked):
        parts.append(-gamma * np.asarray(disliked, np.float32).mean(axis=0))
    if query is None and not len(liked):
        raise UserError("give a description or at least one liked example (--like FILE); "
                        "'not this' marks alone say nothing about what to find")
    q = np.sum(parts, axis=0).astype(np.float32)
    norm = float(np.linalg.norm(q))
    if norm < 1e-12:
        raise UserError("the liked and disliked examples cancel out; mark fewer of them as 'not this'")
    return q / norm


def feedback_vector(
    lib, text: str | None = None, *, like: Sequence[Example] = (), unlike: Sequence[Example] = (),
    not_text: str | None = None,
) -> np.ndarray:
    """The Rocchio query for a description (cached text vector) and examples."""
    from .query import NEGATIVE_WEIGHT

    text = (text or "").strip() or None
    q = None
    if text is not None:
        q = lib.text_vectors([text])[0]
        if not_text:
            q = q - NEGATIVE_WEIGHT * lib.text_vectors([not_text])[0]
    return rocchio(q, example_vectors(lib, like), example_vectors(lib, unlike))


def refine(
    lib, text: str | None = None, n: int = 20, *, like: Sequence[Example] = (), unlike: Sequence[Example] = (),
    not_text: str | None = None, filters=None,
) -> list:
    """Files ranked by their best chunk against the feedback query (search.Result rows).

    The ranking is by sound alone: the keyword half of a hybrid search cannot learn from marks.
    """
    if text is not None:
        from .query import MAX_QUERY_CHARS

        if len(text) > MAX_QUERY_CHARS:
            raise UserError(f"the description is {len(text)} characters long; keep it under {MAX_QUERY_CHARS}")
    q = feedback_vector(lib, text, like=like, unlike=unlike, not_text=not_text)
    return lib.search_vector(q, n, filters=filters)

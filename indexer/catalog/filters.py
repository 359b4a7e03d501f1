"""Result filters as SQL: the condition of each filter declared in `indexer.filterspec`, and
the ids of indexed files that pass every given filter.

A new filter is its `FilterSpec` (name, option, parameter, type, help, page control) plus one
`@condition("name")` function here; nothing else (docs/catalog.md).
"""

from __future__ import annotations

from typing import Callable, Sequence

import sqlalchemy as sa

from ..filterspec import FILTERS
from .batching import driver_rows, gc_paused
from .schema import tables as T

# A condition gets (catalog, files table, roots table, the filter's value) and returns a
# WHERE clause, or None when no file can match (the whole filter answers no files).
Condition = Callable[..., "sa.ColumnElement | None"]
CONDITIONS: dict[str, Condition] = {}

# Names the filter_file_ids keywords had before the declaration (callers still use them).
LEGACY_ARGUMENTS = {"exts": "ext", "tags": "tag"}


def condition(name: str) -> Callable[[Condition], Condition]:
    """Register the SQL condition of the declared filter `name`."""

    def register(fn: Condition) -> Condition:
        CONDITIONS[name] = fn
        return fn

    return register


@condition("root")
def _root(cat, f, r, root: str):
    return r.c.path == root


@condition("under")
def _under(cat, f, r, under: str):
    conds = []
    for root_row in cat.roots():
        base = root_row.path.rstrip("/")
        if under == base or under.startswith(base + "/"):
            rel = under[len(base) + 1 :]
            conds.append(
                sa.and_(r.c.id == root_row.id, sa.true() if not rel else f.c.rel.startswith(rel + "/", autoescape=True))
            )
    return sa.or_(*conds) if conds else None


@condition("ext")
def _ext(cat, f, r, exts: Sequence[str]):
    return sa.or_(*[sa.func.lower(f.c.rel).endswith("." + e, autoescape=True) for e in exts])


@condition("min_duration")
def _min_duration(cat, f, r, seconds: float):
    return f.c.duration_s >= seconds


@condition("max_duration")
def _max_duration(cat, f, r, seconds: float):
    return f.c.duration_s <= seconds


@condition("sample_rate")
def _sample_rate(cat, f, r, hz: int):
    return f.c.sample_rate == hz


@condition("channels")
def _channels(cat, f, r, n: int):
    return f.c.channels == n


@condition("tag")
def _tag(cat, f, r, labels: Sequence[str]):
    return f.c.id.in_(tagged_query(T["tags"], labels))


@condition("min_loudness")
def _min_loudness(cat, f, r, lufs: float):
    return f.c.loudness_lufs >= lufs


@condition("max_loudness")
def _max_loudness(cat, f, r, lufs: float):
    return f.c.loudness_lufs <= lufs


@condition("max_true_peak")
def _max_true_peak(cat, f, r, dbtp: float):
    return f.c.true_peak_dbtp <= dbtp


@condition("no_clipping")
def _no_clipping(cat, f, r, on: bool):
    return f.c.clipped_samples == 0


@condition("max_head_silence")
def _max_head_silence(cat, f, r, seconds: float):
    return f.c.silence_head_s <= seconds


def tagged_query(t, labels: Sequence[str]):
    """Files carrying any of `labels`, where a user's rejection overrides machine tags."""
    low = [x.lower() for x in labels]
    label_match = sa.or_(sa.func.lower(t.c.label).in_(low), sa.func.lower(t.c.cat_id).in_(low))
    rejected = sa.select(t.c.file_id).where(label_match, t.c.source == "user", t.c.score <= 0)
    # A machine tag is a tag whatever its score (a top-k label may have a cosine <= 0); a
    # user's row is a decision: score 1 accepted, 0 rejected.
    kept = sa.or_(t.c.source != "user", t.c.score > 0)
    return sa.select(t.c.file_id).where(label_match, kept, t.c.file_id.not_in(rejected))


_missing = [spec.name for spec in FILTERS if spec.name not in CONDITIONS]
if _missing:
    raise ImportError(f"filters declared in indexer/filterspec.py without a SQL condition here: {_missing}")


class FiltersMixin:
    """Result filters of a Catalog."""

    def filter_file_ids(self, **values) -> set[int]:
        """Ids of indexed files that pass every given filter (bound parameters only).

        Keywords are the declared filter names (`indexer.filterspec.FILTERS`) with the
        catalog's values (`FilterSpec.to_catalog`); `exts` and `tags` are accepted for `ext`
        and `tag`. A value that is not set (None, empty) does not filter."""
        for old, new in LEGACY_ARGUMENTS.items():
            if old in values:
                values[new] = values.pop(old)
        unknown = set(values) - set(CONDITIONS)
        if unknown:
            raise TypeError(f"filter_file_ids() got unknown filters {sorted(unknown)}")
        f, r = T["files"], T["roots"]
        q = sa.select(f.c.id).select_from(f.join(r, f.c.root_id == r.c.id)).where(f.c.status == "ok")
        for spec in FILTERS:
            value = values.get(spec.name)
            if not spec.is_set(value):
                continue
            cond = CONDITIONS[spec.name](self, f, r, value)
            if cond is None:
                return set()
            q = q.where(cond)
        with self.read_connection() as conn, gc_paused():
            return {row[0] for row in driver_rows(conn, q)}  # may be most of a million files

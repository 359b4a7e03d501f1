"""Result filters as SQL: the ids of indexed files that pass every given filter."""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa

from .batching import driver_rows, gc_paused
from .schema import tables as T


def tagged_query(t, labels: Sequence[str]):
    """Files carrying any of `labels`, where a user's rejection overrides machine tags."""
    low = [x.lower() for x in labels]
    label_match = sa.or_(sa.func.lower(t.c.label).in_(low), sa.func.lower(t.c.cat_id).in_(low))
    rejected = sa.select(t.c.file_id).where(label_match, t.c.source == "user", t.c.score <= 0)
    return sa.select(t.c.file_id).where(label_match, t.c.score > 0, t.c.file_id.not_in(rejected))


class FiltersMixin:
    """Result filters of a Catalog."""

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
            q = q.where(f.c.id.in_(tagged_query(t, tags)))
        with self.read_connection() as conn, gc_paused():
            return {row[0] for row in driver_rows(conn, q)}  # may be most of a million files

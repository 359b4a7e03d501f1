"""Counts and failures for `sfx-index status` and the page."""

from __future__ import annotations

import sqlalchemy as sa

from .files import file_select
from .rows import FileRow, file_row
from .schema import tables as T

SECONDS_PER_HOUR = 3600.0


class ReportsMixin:
    """Reports of a Catalog."""

    def counts(self) -> dict[str, int]:
        f, c = T["files"], T["chunks"]
        with self.read_connection() as conn:
            by_status = dict(conn.execute(sa.select(f.c.status, sa.func.count()).group_by(f.c.status)).all())
            chunks = conn.execute(sa.select(sa.func.count()).select_from(c)).scalar_one()
            duration = conn.execute(sa.select(sa.func.sum(f.c.duration_s))).scalar() or 0.0
        return {
            "files": sum(by_status.values()),
            "indexed": by_status.get("ok", 0),
            "failed": by_status.get("failed", 0),
            "chunks": chunks,
            "hours": round(duration / SECONDS_PER_HOUR, 2),
        }

    def root_counts(self) -> dict[int, int]:
        f = T["files"]
        with self.read_connection() as conn:
            return dict(conn.execute(sa.select(f.c.root_id, sa.func.count()).group_by(f.c.root_id)).all())

    def failures(self, limit: int | None = None) -> list[FileRow]:
        q = file_select().where(T["files"].c.status == "failed").order_by(T["files"].c.id)
        if limit:
            q = q.limit(limit)
        with self.read_connection() as conn:
            return [file_row(r) for r in conn.execute(q)]

    def truncated(self, limit: int | None = None) -> tuple[int, list[FileRow]]:
        """Indexed files cut off part way (indexed up to `truncated_at_s`): how many, and the first."""
        f = T["files"]
        where = sa.and_(f.c.status == "ok", f.c.truncated_at_s.is_not(None))
        q = file_select().where(where).order_by(f.c.id)
        if limit:
            q = q.limit(limit)
        with self.read_connection() as conn:
            n = conn.execute(sa.select(sa.func.count()).select_from(f).where(where)).scalar_one()
            return int(n), [file_row(r) for r in conn.execute(q)]

"""Measured sound and audio fingerprints of files (issue 16, docs/hygiene.md): stored by a
build, read by --json rows, filters, `sfx-search qc`, `duplicates` and `sfx-index status`."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import sqlalchemy as sa

from .batching import IN_BATCH, driver_rows, rows_in
from .encoding import rel_from_db
from .schema import tables as T

MEASURE_COLUMNS = ("loudness_lufs", "true_peak_dbtp", "sample_peak_dbfs", "clipped_samples", "dc_offset",
                   "silence_head_s", "silence_tail_s", "loudness_range_lu")
VERY_QUIET_LUFS = -50.0


class MeasurementsMixin:
    """Measurements and fingerprints of a Catalog."""

    def store_analysis(self, file_id: int, measurements: dict, fingerprint: bytes | None, version: int) -> None:
        """Write a file's measurements (the MEASURE_COLUMNS keys) and fingerprint."""
        f, fp = T["files"], T["fingerprints"]
        values = {k: measurements.get(k) for k in MEASURE_COLUMNS}
        with self.transaction() as conn:
            conn.execute(f.update().where(f.c.id == file_id).values(measured=version, **values))
            conn.execute(fp.delete().where(fp.c.file_id == file_id))
            if fingerprint:
                conn.execute(fp.insert().values(file_id=file_id, data=fingerprint))

    def copy_analysis(self, conn, src_id: int, dst_id: int) -> None:
        """A moved or duplicated file takes the measurements and fingerprint of its source."""
        f, fp = T["files"], T["fingerprints"]
        row = conn.execute(sa.select(*(f.c[k] for k in (*MEASURE_COLUMNS, "measured"))).where(f.c.id == src_id)).first()
        if row is not None:
            conn.execute(f.update().where(f.c.id == dst_id).values(dict(zip((*MEASURE_COLUMNS, "measured"), row))))
        conn.execute(fp.delete().where(fp.c.file_id == dst_id))
        data = conn.execute(sa.select(fp.c.data).where(fp.c.file_id == src_id)).scalar()
        if data is not None:
            conn.execute(fp.insert().values(file_id=dst_id, data=data))

    def delete_analysis(self, conn, file_ids: list[int]) -> None:
        fp = T["fingerprints"]
        conn.execute(fp.delete().where(fp.c.file_id.in_(file_ids)))

    def unmeasured_files(self, version: int) -> list[tuple[int, str]]:
        """(id, absolute path) of indexed files not measured at this analysis version."""
        f, r = T["files"], T["roots"]
        q = (
            sa.select(f.c.id, r.c.path, f.c.rel).select_from(f.join(r, f.c.root_id == r.c.id))
            .where(f.c.status == "ok", sa.or_(f.c.measured.is_(None), f.c.measured < version))
            .order_by(f.c.id)
        )
        with self.read_connection() as conn:
            return [(i, str(Path(root) / rel_from_db(rel))) for i, root, rel in conn.execute(q)]

    def measurements_for(self, ids: Iterable[int]) -> dict[int, dict]:
        """file id -> {key: value} for measured files among ids (unmeasured files are left out)."""
        f = T["files"]
        cols = [f.c.id, *(f.c[k] for k in MEASURE_COLUMNS)]
        out: dict[int, dict] = {}
        with self.read_connection() as conn:
            for row in rows_in(conn, sa.select(*cols).where(f.c.measured.is_not(None)), f.c.id, list(ids)):
                out[row[0]] = dict(zip(MEASURE_COLUMNS, row[1:]))
        return out

    def measured_rows(self) -> Iterator[tuple]:
        """(id, path, duration_s, *MEASURE_COLUMNS) of every measured indexed file, by path."""
        f, r = T["files"], T["roots"]
        q = (
            sa.select(f.c.id, r.c.path, f.c.rel, f.c.duration_s, *(f.c[k] for k in MEASURE_COLUMNS))
            .select_from(f.join(r, f.c.root_id == r.c.id))
            .where(f.c.status == "ok", f.c.measured.is_not(None))
            .order_by(r.c.path, f.c.rel)
        )
        with self.read_connection() as conn:
            for row in driver_rows(conn, q):
                yield (row[0], str(Path(row[1]) / rel_from_db(row[2])), *row[3:])

    def fingerprint_rows(self, file_ids: set[int] | None = None) -> Iterator[tuple]:
        """(id, path, size, mtime_ns, duration_s, sample_rate, channels, subtype, container,
        metadata fields, fingerprint bytes) of indexed files that have a fingerprint."""
        f, r, fp, m = T["files"], T["roots"], T["fingerprints"], T["file_meta"]
        meta = sa.select(m.c.file_id, sa.func.count().label("n")).group_by(m.c.file_id).subquery()
        q = (
            sa.select(f.c.id, r.c.path, f.c.rel, f.c.size, f.c.mtime_ns, f.c.duration_s, f.c.sample_rate,
                      f.c.channels, f.c.subtype, f.c.container, sa.func.coalesce(meta.c.n, 0), fp.c.data)
            .select_from(f.join(r, f.c.root_id == r.c.id).join(fp, fp.c.file_id == f.c.id)
                         .outerjoin(meta, meta.c.file_id == f.c.id))
            .where(f.c.status == "ok")
            .order_by(f.c.id)
        )
        with self.read_connection() as conn:
            if file_ids is None:
                rows = driver_rows(conn, q)
            else:
                ids = sorted(file_ids)
                rows = (row for i in range(0, len(ids), IN_BATCH)
                        for row in conn.execute(q.where(f.c.id.in_(ids[i:i + IN_BATCH]))))
            for row in rows:
                yield (row[0], str(Path(row[1]) / rel_from_db(row[2])), *row[3:])

    def measurement_summary(self) -> dict[str, int]:
        """Counts for `sfx-index status`: measured, clipped, silent, very quiet files."""
        f = T["files"]
        ok = f.c.status == "ok"
        with self.read_connection() as conn:
            def count(*where):
                return conn.execute(sa.select(sa.func.count()).select_from(f).where(ok, *where)).scalar_one()

            return {
                "measured": count(f.c.measured.is_not(None)),
                "clipped": count(f.c.clipped_samples > 0),
                "silent": count(f.c.measured.is_not(None), f.c.sample_peak_dbfs.is_(None)),
                "very_quiet": count(f.c.loudness_lufs < VERY_QUIET_LUFS),
            }

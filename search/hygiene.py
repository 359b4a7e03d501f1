"""Library hygiene on an open catalog: near-duplicate groups, problem files, collapsing copies.

The logic behind `sfx-search duplicates`, `sfx-search qc`, the page's duplicates view and the
"+N copies" of search results (search/duplicates.py decides what a copy is; docs/hygiene.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from indexer.fingerprint import Fingerprint

from .duplicates import DupFile, Group, find_groups

# QC thresholds (docs/hygiene.md).
DC_OFFSET_SHOWN = 0.01  # 1 % of full scale (-40 dBFS)
LONG_TAIL_S = 1.0
LONG_TAIL_SHARE = 0.2  # and at least this share of the file


def dup_files(catalog, file_ids: set[int] | None = None) -> list[DupFile]:
    """The catalog's fingerprinted files (those in file_ids, if given) as DupFile rows."""
    out = []
    for fid, path, size, mtime, dur, rate, ch, subtype, container, n_meta, data in catalog.fingerprint_rows(file_ids):
        fp = Fingerprint.from_bytes(data)
        if fp is None:
            continue
        out.append(DupFile(fid, path, fp, sample_rate=rate, channels=ch, subtype=subtype, container=container,
                           size=size, mtime_ns=mtime, metadata_fields=int(n_meta or 0), duration_s=dur))
    return out


def duplicate_groups(catalog, file_ids: set[int] | None = None,
                     progress: Callable[[Iterable], Iterable] | None = None,
                     stage: Callable[[str], None] | None = None) -> list[Group]:
    """find_groups over the catalog's fingerprints; `stage` hears each step as it starts."""
    if stage:
        stage("reading fingerprints from the catalog")
    return find_groups(dup_files(catalog, file_ids), progress=progress, stage=stage)


@dataclass
class Problem:
    file_id: int
    path: str
    problems: list[str]
    measurements: dict

    def as_json(self) -> dict:
        return {"file_id": self.file_id, "path": self.path, "problems": self.problems, **self.measurements}


def problems_of(duration: float | None, m: dict) -> list[str]:
    """What a sound person would fix in a file, from its measurements (one phrase each)."""
    out = []
    if m.get("clipped_samples"):
        out.append(f"clipped ({m['clipped_samples']} samples)")
    dc = m.get("dc_offset")
    if dc is not None and abs(dc) >= DC_OFFSET_SHOWN:
        out.append(f"DC offset {dc:+.3f}")
    if m.get("sample_peak_dbfs") is None:
        out.append("digital silence")
    elif duration and (m.get("silence_head_s") or 0) >= duration - 1e-3:
        out.append("silent (nothing above -60 dBFS)")
    else:
        tail = m.get("silence_tail_s") or 0.0
        if tail >= LONG_TAIL_S and duration and tail >= LONG_TAIL_SHARE * duration:
            out.append(f"long silent tail ({tail:.1f} s)")
    return out


def qc_problems(catalog, file_ids: set[int] | None = None) -> list[Problem]:
    from indexer.catalog import MEASURE_COLUMNS

    out = []
    for row in catalog.measured_rows():
        fid, path, duration = row[0], row[1], row[2]
        if file_ids is not None and fid not in file_ids:
            continue
        m = dict(zip(MEASURE_COLUMNS, row[3:]))
        found = problems_of(duration, m)
        if found:
            out.append(Problem(fid, path, found, m))
    return out


def collapse_copies(catalog, results: list) -> list:
    """Fold near-duplicate rows of a result list into the best-ranked copy's `copies`.

    Only files of this list are compared (a handful of pairs), so it costs a query little.
    """
    by_id = {r.file_id: r for r in results}
    files = dup_files(catalog, set(by_id))
    if len(files) < 2:
        return results
    rank = {r.file_id: i for i, r in enumerate(results)}
    folded: set[int] = set()
    for g in find_groups(files):
        members = sorted([g.keeper.file_id, *(c.file.file_id for c in g.copies)], key=rank.__getitem__)
        head = by_id[members[0]]
        for fid in members[1:]:
            head.copies.append(by_id[fid].path)
            folded.add(fid)
    kept = [r for r in results if r.file_id not in folded]
    for i, r in enumerate(kept, 1):
        r.rank = i
    return kept

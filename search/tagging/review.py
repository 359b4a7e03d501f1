"""Review: the files tagged LABEL by score, and the user's accept / reject decisions.

Decisions are `user` tags (score 1 accepted, 0 rejected). They survive reruns of a set and
win over machine tags: a rejected file no longer matches `sfx-search --tag LABEL`, an
accepted one matches even when no machine set tagged it.
"""

from __future__ import annotations

from typing import Sequence

from indexer.catalog import TaggedFile
from indexer.config import UserError


def review_list(catalog, label: str, *, set_name: str | None = None, limit: int | None = None) -> list[TaggedFile]:
    rows = catalog.tagged_files(label, set_name=set_name)
    # One row per file: its best machine score, with the user's decision.
    best: dict[int, TaggedFile] = {}
    for r in rows:
        if r.file_id not in best or (best[r.file_id].source == "user" and r.source != "user"):
            best[r.file_id] = r
    out = sorted(best.values(), key=lambda r: (-r.score, r.path))
    return out[:limit] if limit else out


def decide(catalog, label: str, targets: Sequence[str], *, accept: bool, listing: Sequence[TaggedFile] = ()) -> list[str]:
    """Record decisions for targets given as paths or as ranks (1-based) in `listing`; returns paths."""
    done = []
    for t in targets:
        row = None
        if t.isdigit() and listing:
            i = int(t)
            if not 1 <= i <= len(listing):
                raise UserError(f"rank {t} is not in the review list (1..{len(listing)})")
            row = listing[i - 1]
            fid, path, cat = row.file_id, row.path, row.cat_id
        else:
            f = catalog.file_by_path(t)
            if f is None:
                raise UserError(f"'{t}' is not an indexed file")
            fid, path = f.id, f.path
            cat = next((r.cat_id for r in listing if r.file_id == fid), None)
        name = row.label if row is not None else next((r.label for r in listing if r.file_id == fid), label)
        catalog.record_decision(fid, name, accept=accept, cat_id=cat)
        done.append(path)
    return done

"""The second half of a query: fusing the semantic and keyword rankings, and the result rows.

`fuse` is reciprocal rank fusion of the two file rankings (hybrid mode). `finish` turns a
ranking (file id, score, best chunk) into `Result` rows: the first n distinct contents
(byte-identical copies folded under the best-ranked one), their best chunk, metadata, tags
and measurements, read from the catalog for the rows shown only. search/query.py ranks;
this module reads and shapes what it ranked.
"""

from __future__ import annotations

import numpy as np

from indexer.catalog import FileRow
from indexer.vectors import matmul

from .results import Result

RRF_K = 60

# (file id, score, best chunk id or None) best first: what the rankings hand to finish().
Scored = list[tuple[int, float | None, int | None]]


def fuse(semantic, keyword) -> tuple[Scored, dict]:
    """Reciprocal rank fusion of the semantic and keyword file rankings.

    Returns (file id, fused score, best chunk) best first, the fused score scaled so that a
    file ranked first by both halves scores 1 (the score column then reads in rank order),
    and per file which half found it with both halves' scores. A keyword-only hit has no
    best chunk nor cosine yet: the fused order does not depend on them, so they are looked
    up for the rows shown only (result_rows).
    """
    fused: dict[int, float] = {}
    for rank, (fid, _s, _c) in enumerate(semantic):
        fused[fid] = fused.get(fid, 0.0) + 1.0 / (RRF_K + rank + 1)
    for rank, (fid, _s) in enumerate(keyword):
        fused[fid] = fused.get(fid, 0.0) + 1.0 / (RRF_K + rank + 1)
    sem = {fid: (s, c) for fid, s, c in semantic}
    kw = dict(keyword)
    order = sorted(fused, key=lambda f: (-fused[f], f))
    top = 2.0 / (RRF_K + 1)
    out, found = [], {}
    for fid in order:
        cos, cid = sem.get(fid, (None, None))
        out.append((fid, fused[fid] / top, cid))
        by = "both" if fid in kw and fid in sem else ("keyword" if fid in kw else "sound")
        found[fid] = (by, cos, kw.get(fid))
    return out, found


def best_chunks(catalog, q: np.ndarray, file_ids) -> dict[int, tuple[float, int]]:
    """Each file's best chunk and its score against q (one catalog read for all files)."""
    chunk_ids, owners, vecs = catalog.chunk_vectors_for_files(file_ids)
    out: dict[int, tuple[float, int]] = {}
    if not len(chunk_ids):
        return out
    scores = matmul(np.asarray(vecs, np.float32), np.asarray(q, np.float32).reshape(-1, 1)).ravel()
    order = np.lexsort((chunk_ids, -scores))  # best first; ties to the earlier chunk
    for i in order.tolist():
        fid = int(owners[i])
        if fid not in out:
            out[fid] = (float(scores[i]), int(chunk_ids[i]))
    return out


def finish(catalog, scored: Scored, n: int, collapse_copies: bool, found: dict | None = None,
           best_for: np.ndarray | None = None) -> list[Result]:
    """Result rows with their measurements; near-duplicates folded first when asked.
    `best_for`: the query vector whose best chunk and cosine keyword-only rows get."""
    from .hygiene import collapse_copies as fold

    rows = result_rows(catalog, scored, len(scored) if collapse_copies else n, found=found, best_for=best_for)
    if collapse_copies:
        rows = fold(catalog, rows)[:n]
    measured = catalog.measurements_for([r.file_id for r in rows])
    for r in rows:
        for k, v in measured.get(r.file_id, {}).items():
            setattr(r, k, v)
    return rows


def result_rows(catalog, scored: Scored, n: int, found: dict | None = None,
                best_for: np.ndarray | None = None) -> list[Result]:
    """The first n distinct contents of `scored` as Result rows (a later copy of one of them
    only adds its path). Chunks, metadata and tags are read for those alone, not for every
    candidate."""
    fids = [fid for fid, _, _ in scored]
    files = catalog.files_by_ids(fids)
    shown, hashes = [], set()
    for fid, _score, _cid in scored:
        f = files.get(fid)
        if f is None or (f.content_hash and f.content_hash in hashes) or len(shown) >= n:
            continue
        shown.append(fid)
        if f.content_hash:
            hashes.add(f.content_hash)
    cids = {fid: cid for fid, _, cid in scored}
    need = [fid for fid in shown if cids[fid] is None and found is not None and fid in found]
    if need and best_for is not None:  # keyword-only hits: their best chunk against the query
        best = best_chunks(catalog, best_for, need)
        for fid in need:
            cos, cids[fid] = best.get(fid, (None, None))
            by, _cos, kws = found[fid]
            found[fid] = (by, cos, kws)
    chunk_rows = catalog.chunks_by_ids([cids[fid] for fid in shown if cids[fid] is not None])
    meta = catalog.metadata_for(shown)
    tags = catalog.tags_for(shown) if hasattr(catalog, "tags_for") else {}
    out: list[Result] = []
    by_hash: dict[str, Result] = {}
    for fid, score, _cid in scored:
        cid = cids[fid]
        f: FileRow | None = files.get(fid)
        if f is None:
            continue
        if f.content_hash and f.content_hash in by_hash:
            by_hash[f.content_hash].duplicates.append(f.path)
            continue
        if len(out) >= n:
            continue
        ch = chunk_rows.get(cid) if cid is not None else None
        m = meta.get(fid, {})
        r = Result(
            rank=len(out) + 1, path=f.path, score=round(float(score or 0.0), 6),
            offset_s=ch.start_s if ch else 0.0, end_s=ch.end_s if ch else (f.duration_s or 0.0),
            duration_s=f.duration_s, file_id=fid, chunk_id=cid, sample_rate=f.sample_rate,
            channels=f.channels, subtype=f.subtype, container=f.container,
            description=(m.get("bext.description") or m.get("ixml.note") or m.get("info.ICMT")
                         or m.get("tag.title") or "").strip() or None,
            ucs=m.get("ucs.fx_name") and f"{m.get('ucs.cat_id')} {m.get('ucs.fx_name')}",
            tags=list(tags.get(fid, [])),
        )
        r.truncated_at_s = f.truncated_at_s
        if found is not None and fid in found:
            by, cos, kws = found[fid]
            r.found_by = by
            r.sound_score = None if cos is None else round(float(cos), 6)
            r.keyword_score = None if kws is None else round(float(kws), 6)
        out.append(r)
        if f.content_hash:
            by_hash[f.content_hash] = r
    return out

"""Index upkeep behind `sfx-index status` and `sfx-index remove`: reports and root removal."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import Settings, UserError
from .index import Index
from .locking import BuildLock


def index_status(settings: Settings, *, n_failures: int = 20) -> dict:
    # Status is where damage should show first: the integrity check (O(catalog size)) runs
    # beside the counts and is waited for before anything is reported.
    index = Index.open(settings)
    try:
        cat = index.catalog
        cat.verify_in_background()
        model = cat.get_model()
        per_root = cat.root_counts()
        path = settings.faiss_path
        vectors = {"kind": "none", "ntotal": 0, "bytes": 0, "current": False}
        if path.exists():
            from .vectors import IndexCorrupt, VectorIndex

            try:
                vi = VectorIndex.load(path)
                vectors = {
                    "kind": vi.meta.get("factory", "Flat"),
                    "ntotal": int(vi.ntotal),
                    "bytes": path.stat().st_size,
                    "current": int(vi.meta.get("generation", -1)) == cat.generation,
                    "recall_at_10": vi.meta.get("recall_at_10"),
                    "params": vi.meta.get("params"),
                    "memory_budget": cat.get_meta("index_memory", "2G"),
                    "tuned_on": vi.meta.get("tuned_on"),
                }
            except IndexCorrupt as exc:
                vectors["kind"] = f"corrupt ({exc})"
        n_truncated, truncated = cat.truncated(n_failures or None)
        report = {
            "index_dir": str(settings.index_dir),
            "catalog": settings.catalog_url if settings.db_url else str(settings.index_dir / "catalog.sqlite"),
            "model": dict(model.__dict__) if model else None,
            "counts": cat.counts(),
            "sound": cat.measurement_summary(),  # measured, clipped, silent, very quiet (docs/hygiene.md)
            "vectors": vectors,
            # Which runtimes and precisions embedded the vectors (docs/runtime.md, mixing them).
            "embedders": cat.embedders(),
            # A root whose folder is gone (an unmounted drive) keeps its entries; say so.
            "roots": [{"path": r.path, "files": per_root.get(r.id, 0), "missing": not Path(r.path).is_dir()}
                      for r in cat.roots()],
            "failures": [{"path": f.path, "reason": f.error} for f in cat.failures(n_failures or None)],
            "truncated": [{"path": f.path, "indexed_to_s": f.truncated_at_s, "decoder": f.decoder}
                          for f in truncated],
            "truncated_count": n_truncated,
            "skipped": scan_problems(cat),
        }
        cat.verify()
        return report
    finally:
        index.close()


def scan_problems(cat) -> list[dict]:
    """What the last build's walk of each root could not follow (broken or looping symlinks,
    unreadable folders), as {path, reason}."""
    import json

    from .builder import scan_problems_key

    out: list[dict] = []
    for r in cat.roots():
        try:
            out += json.loads(cat.get_meta(scan_problems_key(r.id)) or "[]")
        except ValueError:
            continue
    return out


def remove_root(settings: Settings, root: str | Path) -> int:
    index = Index.open(settings, verify=True)
    try:
        with BuildLock(settings.index_dir):
            cat = index.catalog
            r = cat.root_for(root) or next((x for x in cat.roots() if x.path == str(root)), None)
            if r is None:
                raise UserError(f"'{root}' is not a root of this index; see 'sfx-index status'")
            vectors = index.vectors()
            removed = cat.remove_root(r)
            cat.bump_generation()
            vectors.remove(np.asarray(removed, dtype=np.int64))
            index.save_vectors(vectors)
            return len(removed)
    finally:
        index.close()


def reindex(settings: Settings, *, memory: str | None = None, kind: str | None = None,
            retune: bool = False) -> dict:
    """Rebuild the vector index from the catalog under a memory budget (or, with `retune`, only
    tune its search settings again); report the choice."""
    index = Index.open(settings, verify=True)
    try:
        with BuildLock(settings.index_dir):
            if retune:
                vi = index.retune_vectors(save=True)
            else:
                vi = index.rebuild_vectors(save=True, memory=memory, kind=kind)
            m = vi.meta
            return {
                "factory": m.get("factory"), "kind": m.get("kind"), "ntotal": int(vi.ntotal),
                "recall_at_10": m.get("recall_at_10"), "params": m.get("params"),
                "tuned_on": m.get("tuned_on"), "retuned": retune,
                "memory_budget": index.catalog.get_meta("index_memory", "2G"),
                "bytes": settings.faiss_path.stat().st_size, "build_s": m.get("build_s"),
            }
    finally:
        index.close()

"""Measure the indexed files that have no measurements yet, without the model.

A catalog indexed before measurements existed (or by an engine that does not measure, such
as the Ray one) has files whose `measured` column is NULL or older than
`indexer.analysis.VERSION`. A build calls `measure_unmeasured` after its own files: each of
those is decoded once for its measurements and fingerprint (no windows, no model, no
re-embedding), in a few processes. A file that cannot be decoded any more is left as it is
(the next build's reconcile sees that it changed or went away).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor

from .analysis import VERSION, FileAnalysis, analyse_file

log = logging.getLogger(__name__)

COMMIT_EVERY = 64  # files measured per catalog transaction


def _analyse(path: str) -> FileAnalysis | None:
    try:
        return analyse_file(path)
    except Exception as exc:  # a file gone or damaged since it was indexed: not this pass's job
        log.debug("cannot measure %s: %s", path, exc)
        return None


def measure_unmeasured(catalog, *, workers: int = 1, progress: bool = False) -> int:
    """Measure every indexed file not measured at this analysis version; returns how many."""
    todo = catalog.unmeasured_files(VERSION)
    if not todo:
        return 0
    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc="measuring", unit="file", disable=not progress, leave=False)
    done = 0
    workers = max(1, min(workers, len(todo), os.cpu_count() or 1))
    with ProcessPoolExecutor(workers) if workers > 1 else _Inline() as pool:
        for start in range(0, len(todo), COMMIT_EVERY):
            part = todo[start:start + COMMIT_EVERY]
            results = list(pool.map(_analyse, [p for _, p in part]))
            with catalog.transaction():
                for (fid, _path), a in zip(part, results):
                    if a is not None:
                        catalog.store_analysis(fid, a.measurements, a.fingerprint, a.version)
                        done += 1
            bar.update(len(part))
    bar.close()
    return done


class _Inline:
    """map() in this process (one worker: no process start-up)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items):
        return map(fn, items)

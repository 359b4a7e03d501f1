"""Fill in what older catalogs lack, without the model: measurements and audio hashes.

A catalog indexed before measurements existed (or by an engine that does not measure, such
as the Ray one) has files whose `measured` column is NULL or older than
`indexer.analysis.VERSION`. A build calls `measure_unmeasured` after its own files: each of
those is decoded once for its measurements and fingerprint (no windows, no model, no
re-embedding), in a few processes. A file that cannot be decoded any more is left as it is
(the next build's reconcile sees that it changed or went away).

A catalog indexed before files.audio_hash existed would re-embed a file on its first metadata
edit (nothing to compare the new audio hash with). `hash_unhashed` records the audio hash of
each such file, but only while its bytes are provably still those that were embedded: the
content hash is read before and after and must equal the catalog's. Formats without an audio
hash get NO_AUDIO_HASH so that they are not read again by every build.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor

from .analysis import VERSION, FileAnalysis, analyse_file
from .audiohash import audio_hash
from .scan import content_hash

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


NO_AUDIO_HASH = ""  # a format indexer.audiohash does not know: compared with nothing, never re-read


def hash_unhashed(catalog, *, progress: bool = False) -> int:
    """Record the audio hash of indexed files that have none; returns how many were recorded."""
    todo = catalog.files_without_audio_hash()
    if not todo:
        return 0
    from tqdm import tqdm

    done = 0
    for fid, path, stored in tqdm(todo, desc="hashing audio", unit="file", disable=not progress, leave=False):
        try:
            if content_hash(path) != stored:
                continue  # changed since it was embedded: the build re-embeds it anyway
            ah = audio_hash(path)
            if content_hash(path) != stored:
                continue  # changed while being read
        except OSError as exc:
            log.debug("cannot hash %s: %s", path, exc)
            continue
        done += catalog.store_audio_hash(fid, ah if ah is not None else NO_AUDIO_HASH, stored)
    return done


class _Inline:
    """map() in this process (one worker: no process start-up)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items):
        return map(fn, items)

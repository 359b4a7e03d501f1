"""Load the OpenVINO text tower on a thread while a cold `sfx-search` opens its catalog.

A cold query spends its time importing (numpy, SQLAlchemy, FAISS, OpenVINO) and reading the
compiled text tower; most of OpenVINO's part is native code that releases the GIL. Started
as soon as the command knows it will search locally, the tower loads beside the catalog's
imports instead of after them. `ov_text.load` takes the prefetched tower when it is for the
same checkpoint and precision. Nothing is prefetched where the query would not run the
OpenVINO text tower (another runtime, a GPU machine, no export made yet).

The caller's thread only reads settings and the environment: importing OpenVINO (and
the cache lookup, whose key holds OpenVINO's version) happens on the thread. When the command
knows its text, the thread embeds that text (`OvTextTower.prime`): the first request of a
token length is the dear one (OpenVINO makes that shape's kernels), and the query's own
request then finds its vector made instead of paying for a warm-up text and then its own.

A query whose text vector is cached never uses the tower; the thread is still joined at exit
(a native call left running while the interpreter shuts down is not safe).
"""

from __future__ import annotations

import atexit
import logging
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_jobs: dict[tuple[str, str], dict] = {}
_lock = threading.Lock()


def start_text_tower(model: str, device: str = "auto", precision: str = "auto",
                     texts: tuple[str, ...] = ()) -> bool:
    """Begin loading the text tower of `model` on a thread (and embedding `texts`, the ones the
    query will ask for); False when the query will not run the OpenVINO text tower."""
    from . import cuda_possible, mps_possible, openvino_installed, requested, resolve

    try:
        if device not in ("auto", "cpu") or (device == "auto" and (cuda_possible() or mps_possible())):
            return False  # deciding would import torch: leave it to the encoder
        if requested(None) == "torch" or resolve(None, "cpu") != "openvino" or not openvino_installed():
            return False
        from ..clap import resolve_checkpoint, resolve_precision

        ckpt = resolve_checkpoint(model)
        prec = resolve_precision(precision, "cpu")
    except Exception as exc:  # a bad model or setting is reported by the query itself
        log.debug("no text tower prefetch: %s", exc)
        return False
    key = (str(Path(ckpt).resolve()), prec)
    with _lock:
        if key in _jobs:
            return True
        job = _jobs[key] = {"tower": None, "error": None, "imported": threading.Event()}

    def run():
        try:
            try:
                from .openvino_common import core

                core()  # the import of OpenVINO: Python work, under the GIL
            finally:
                job["imported"].set()
            from .ov_text import load, usable_precision

            # None when no export was made yet: the first query exports it, in the foreground.
            tower = load(ckpt, usable_precision(ckpt, prec), use_prefetch=False)
            if tower is not None:
                # OpenVINO makes a dynamic-shape model's kernels on its first request of a
                # length: the query's own texts here (else one of a typical query's length).
                tower.prime(list(texts) or ["metal scraping in a stone room"])
            job["tower"] = tower
        except Exception as exc:  # the foreground load will meet it again and report it
            job["error"] = exc

    job["thread"] = threading.Thread(target=run, name="sfx-text-tower", daemon=True)
    job["thread"].start()
    atexit.register(job["thread"].join)
    return True


def wait_for_imports(timeout: float) -> None:
    """Return once the started threads have imported OpenVINO (or after `timeout` s).

    Two threads importing at once take turns on one GIL and both finish late. A cold query
    lets the tower's thread import alone; its compile and first request then run in native
    code (no GIL) while the caller imports and opens the catalog."""
    with _lock:
        events = [job["imported"] for job in _jobs.values()]
    for event in events:
        event.wait(timeout)


def take_text_tower(ckpt: Path, precision: str):
    """The prefetched tower for (ckpt, precision) once loaded, or None (none started, or failed)."""
    with _lock:
        job = _jobs.pop((str(Path(ckpt).resolve()), precision), None)
    if job is None:
        return None
    job["thread"].join()
    return job["tower"]

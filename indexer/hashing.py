"""The build's hashing stage: the content hash and the audio hash of every file to embed, in
the order of the scan, on a few threads.

A build hashes each new or changed file before it decodes it (known bytes are copied, not
embedded), and reads it twice to do so (the whole file, then its coded audio). On one thread
that is slower than a model on a GPU takes files (docs/benchmarks.md, section GPU):
blake2b releases the GIL, so a few threads hash as many files at once.
"""

from __future__ import annotations

import errno
import os
import queue
import stat
import threading
from collections import deque

from .audiohash import audio_hash
from .scan import content_hash

HASH_THREADS = 4  # past this, storage rather than the CPU sets the pace
POLL_S = 0.5      # how often a waiting thread looks at the stop event


def hash_regular_file(path) -> str:
    """content_hash, refusing what stopped being a regular file since the scan: open() on a
    FIFO (or a device) put in place of a file would block the build forever."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "not a regular file any more (replaced since the scan?)")
    return content_hash(path)


def hash_one(item, state) -> tuple:
    """(item, state, content hash, audio hash, None), or (item, state, None, None, reason)."""
    try:
        h = hash_regular_file(item.path)
        # The coded audio alone: a metadata edit by any tool leaves it (issue 15).
        ah = audio_hash(item.path)
    except OSError as exc:
        return item, state, None, None, f"cannot read: {exc.strerror or exc}"
    except Exception as exc:  # noqa: BLE001 - one file, never the run
        return item, state, None, None, f"cannot read: {type(exc).__name__}: {exc}"[:300]
    return item, state, h, ah, None


class _Slot:
    """One file's answer, filled by whichever hashing thread took it."""

    def __init__(self, item, state):
        self.item, self.state = item, state
        self.done = threading.Event()
        self.answer: tuple | None = None


def hash_in_order(todo, out: queue.Queue, stop: threading.Event, threads: int | None = None) -> None:
    """Put hash_one's answer for each (item, state) of `todo` on `out`, in order, then None.

    Always ends with None: a feeder that died silently would leave the build waiting for files
    forever. At most 2 x `threads` files are hashed ahead of `out`, so memory stays bounded for
    any library. The hashing threads are daemons and every wait here looks at `stop`: a build
    that stops (Ctrl-C, an error) is never held by a read that does not return (a stalled
    network share), where an executor's threads would be joined at exit."""
    threads = max(1, threads or HASH_THREADS)
    jobs: queue.Queue = queue.Queue()
    finished = threading.Event()

    def work() -> None:
        while not (finished.is_set() or stop.is_set()):
            try:
                slot = jobs.get(timeout=POLL_S)
            except queue.Empty:
                continue
            slot.answer = hash_one(slot.item, slot.state)
            slot.done.set()

    for i in range(threads):
        threading.Thread(target=work, daemon=True, name=f"sfx-hash-{i}").start()
    ahead: deque[_Slot] = deque()

    def hand_on() -> bool:
        """The oldest file's answer onto `out`; False once the build stopped."""
        slot = ahead.popleft()
        while not slot.done.wait(POLL_S):
            if stop.is_set():
                return False
        return _put(out, slot.answer, stop)

    try:
        for item, state in todo:
            if stop.is_set():
                return
            ahead.append(_Slot(item, state))
            jobs.put(ahead[-1])
            if len(ahead) >= 2 * threads and not hand_on():
                return
        while ahead:
            if not hand_on():
                return
    finally:
        finished.set()
        _put(out, None, stop)


def _put(out: queue.Queue, x, stop: threading.Event) -> bool:
    """out.put(x) unless the build stops first (nobody may read `out` any more)."""
    while True:
        try:
            out.put(x, timeout=POLL_S)
            return True
        except queue.Full:
            if stop.is_set():
                return False

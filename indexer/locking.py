"""One writer per index: an exclusive lock held for the whole of a build.

A second `sfx-index build` on the same index stops at once with a message saying who holds
the lock (or waits, when asked to). Readers never take it: SQLite WAL and PostgreSQL MVCC let
a search see the last committed state while a build writes.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from .config import UserError


class IndexBusy(UserError):
    pass


class BuildLock:
    def __init__(self, index_dir: Path, *, wait: bool = False, timeout_s: float | None = None):
        self.path = Path(index_dir) / "build.lock"
        self.wait = wait
        self.timeout_s = timeout_s
        self._fd: int | None = None

    def __enter__(self) -> "BuildLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            import errno

            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise UserError(
                    f"the index folder {self.path.parent} is read-only ({exc.strerror}); searching works, "
                    "building needs a writable --index"
                ) from None
            raise
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not self.wait or (deadline is not None and time.monotonic() > deadline):
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise IndexBusy(
                        f"another build is running on {self.path.parent} (pid {holder}); "
                        "wait for it to finish, or pass --wait"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

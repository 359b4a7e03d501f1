"""Replace a user's file atomically, or leave it exactly as it was.

The new content is written to a temporary file in the same folder (same filesystem, so the
rename is atomic), flushed and fsynced, given the original's permissions (and owner, where we
may), then renamed over the original; the folder is fsynced so the rename survives power loss.
Kill -9 or a full disk at any moment leaves the old file or the new one; at worst a
`.<name>.<random>.sfxtmp` file remains beside it (no audio extension, so never indexed).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from .errors import CannotWrite

TMP_SUFFIX = ".sfxtmp"
HASH_BLOCK = 1 << 20
_IMMUTABLE = getattr(stat, "UF_IMMUTABLE", 0) | getattr(stat, "SF_IMMUTABLE", 0)


def file_hash(path: str | os.PathLike) -> str:
    """blake2b-128 of a whole file, hex (the same digest as indexer.scan.content_hash)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb", buffering=0) as f:
        while block := f.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def region_hash(f, offset: int, length: int) -> str:
    h = hashlib.blake2b(digest_size=16)
    f.seek(offset)
    left = length
    while left > 0:
        block = f.read(min(HASH_BLOCK, left))
        if not block:
            break
        h.update(block)
        left -= len(block)
    return h.hexdigest()


def check_writable(path: str) -> os.stat_result:
    """stat of a file we may replace, or CannotWrite saying why not.

    The write-permission bits are read as the user's intent even when running as root (who
    could write anyway): a file marked read-only is left alone.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CannotWrite("file not found") from None
    except OSError as e:
        raise CannotWrite(f"cannot stat: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CannotWrite("not a regular file")
    if not st.st_mode & 0o222 or (os.geteuid() != 0 and not os.access(path, os.W_OK)):
        raise CannotWrite("read-only file")
    if getattr(st, "st_flags", 0) & _IMMUTABLE:
        raise CannotWrite("locked (immutable flag set)")
    folder = os.path.dirname(path) or "."
    if os.geteuid() != 0 and not os.access(folder, os.W_OK | os.X_OK):
        raise CannotWrite("folder is read-only (the temporary file must go beside the original)")
    return st


def open_locked(path: str):
    """The file opened for reading with an exclusive advisory lock held until it is closed;
    CannotWrite if another program holds a lock on it."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise CannotWrite(f"cannot open: {e.strerror}") from None
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise CannotWrite("locked by another program") from None
    return f


def fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (SMB, FAT via FUSE) refuse fsync on a folder
    finally:
        os.close(fd)


@dataclass
class Staged:
    """A complete, fsynced new version of `path` waiting beside it as `tmp`."""

    path: str
    tmp: str
    before: os.stat_result


def _failed(e: OSError) -> CannotWrite:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return CannotWrite("disk full: no room for the temporary copy; the file is unchanged")
    return CannotWrite(f"write failed ({e.strerror or e}); the file is unchanged")


def stage(path: str, fill: Callable[[str], None], before: os.stat_result) -> Staged:
    """Write the new version through fill(tmp_path) to a temporary file beside path, fsynced,
    with the original's permissions. Nothing visible changes until `commit`."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)[:80]}.", suffix=TMP_SUFFIX, dir=folder)
    os.close(fd)
    try:
        fill(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(before.st_mode))
        if os.geteuid() == 0:
            with contextlib.suppress(OSError):
                os.chown(tmp, before.st_uid, before.st_gid)
    except BaseException as e:
        discard(Staged(path, tmp, before))
        if isinstance(e, OSError):
            raise _failed(e) from None
        raise
    return Staged(path, tmp, before)


def discard(staged: Staged) -> None:
    with contextlib.suppress(OSError):
        os.unlink(staged.tmp)


def commit(staged: Staged, *, sync_dir: bool = True) -> None:
    """Rename the staged file over the original, unless the original changed since it was read.

    With sync_dir=False the caller fsyncs the folder later (once for many files): the rename
    is atomic either way, the folder's fsync only makes it durable.
    """
    try:
        now = os.stat(staged.path)
        b = staged.before
        if (now.st_size, now.st_mtime_ns, now.st_ino) != (b.st_size, b.st_mtime_ns, b.st_ino):
            raise CannotWrite("the file changed while we were writing it; run the command again")
        os.replace(staged.tmp, staged.path)
    except OSError as e:
        discard(staged)
        raise _failed(e) from None
    except BaseException:
        discard(staged)
        raise
    if sync_dir:
        fsync_dir(os.path.dirname(staged.path) or ".")


def replace_file(path: str, fill: Callable[[str], None], before: os.stat_result, *, sync_dir: bool = True) -> None:
    """stage + commit: a new version of path through fill(tmp_path), renamed over path.

    `before` is the stat taken when the old content was read: if the file changed since
    (another program wrote it), nothing is replaced.
    """
    commit(stage(path, fill, before), sync_dir=sync_dir)


def rename_no_replace(src: str, dst: str) -> None:
    """Rename src to dst, refusing to overwrite an existing dst (link + unlink where possible)."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise CannotWrite(f"{os.path.basename(dst)} already exists") from None
    except OSError:
        if os.path.lexists(dst):
            raise CannotWrite(f"{os.path.basename(dst)} already exists") from None
        os.rename(src, dst)  # filesystems without hard links (FAT, SMB)
    else:
        os.unlink(src)
    fsync_dir(os.path.dirname(dst) or ".")

"""Walk library roots: which files are audio, their size and mtime; no decoding, no database.

Skip rules: hidden files and folders (a leading dot, which covers macOS AppleDouble `._*`
files), excluded folders (the index's own folder), and anything that is not a regular
file or a folder. Symlinks are followed, without looping and without indexing a file twice:

- a symlink whose target lies inside the same root, where the walk reaches it anyway, is
  skipped, so a file keeps its real relative path (stable across runs);
- a symlink leading outside the root is followed; folders are remembered by
  (st_dev, st_ino) so a loop is entered once, and files reached through several links
  (or hard links) are yielded once, under the first path in sorted walk order.

Entries are visited in sorted order so that the same tree always gives the same paths.
Problems (a broken symlink, an unreadable folder) never stop the walk: each is handed to
`on_problem` as a ScanProblem (and logged at debug) so that the pipeline can report it.
"""

from __future__ import annotations

import hashlib
import logging
import operator
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .config import UserError

log = logging.getLogger(__name__)

# wv and m4a are not decodable by libsndfile; they are listed so that the pipeline reports
# them as failed with a reason instead of silently ignoring part of a library.
AUDIO_EXTENSIONS = frozenset(
    {"wav", "bwf", "rf64", "w64", "aif", "aiff", "aifc", "flac", "ogg", "oga", "opus",
     "mp3", "caf", "au", "snd", "wv", "m4a", "mka", "aac"}
)

HASH_BLOCK = 1 << 20


class ScanError(UserError):
    """A library root that cannot be walked at all (missing, not a folder)."""


class ScannedFile:
    """A file found by the walk: `path` absolute (through the walked path, symlinks not
    resolved), `rel` the posix path relative to the root, `size`, `mtime_ns`.

    `path` becomes a Path on first use only: a no-op rerun over a million files never needs
    it, and building one per entry was a third of the walk's time.
    """

    __slots__ = ("_path", "rel", "size", "mtime_ns")

    def __init__(self, path: str | os.PathLike, rel: str, size: int, mtime_ns: int):
        self._path, self.rel, self.size, self.mtime_ns = path, rel, size, mtime_ns

    @property
    def path(self) -> Path:
        if not isinstance(self._path, Path):
            self._path = Path(self._path)
        return self._path

    def _key(self) -> tuple:
        return (os.fspath(self._path), self.rel, self.size, self.mtime_ns)

    def __eq__(self, other) -> bool:
        return isinstance(other, ScannedFile) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"ScannedFile(path={self.path!r}, rel={self.rel!r}, size={self.size}, mtime_ns={self.mtime_ns})"


@dataclass(frozen=True)
class ScanProblem:
    path: Path
    rel: str
    reason: str  # one line: "broken symlink", "cannot read folder: Permission denied", ...


def is_audio_name(name: str) -> bool:
    dot = name.rfind(".")
    return dot > 0 and name[dot + 1 :].lower() in AUDIO_EXTENSIONS


_by_name = operator.attrgetter("name")
_SCANDIR_FD = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")

# Only Windows stat results carry attributes (the hidden flag); elsewhere a name is enough.
_HAS_ATTRS = hasattr(os.stat_result, "st_file_attributes")


def _is_hidden(name: str, st: os.stat_result | None = None) -> bool:
    if name.startswith("."):  # includes AppleDouble "._name"
        return True
    if not _HAS_ATTRS or st is None:
        return False
    return bool(getattr(st, "st_file_attributes", 0) & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def scan(
    root: str | os.PathLike,
    *,
    exclude: Iterable[str | os.PathLike] = (),
    on_problem: Callable[[ScanProblem], None] | None = None,
) -> Iterator[ScannedFile]:
    """Yield the audio files under `root` (see module docstring for the rules)."""
    root_path = Path(os.path.abspath(os.fspath(root)))
    try:
        root_st = os.stat(root_path)
    except OSError as e:
        raise ScanError(f"library folder not found: {root_path} ({e.strerror})") from e
    if not stat.S_ISDIR(root_st.st_mode):
        raise ScanError(f"library root is not a folder: {root_path}")
    root_real = os.path.realpath(root_path)

    excluded_ids: set[tuple[int, int]] = set()
    excluded_real: list[str] = []
    for ex in exclude:
        try:
            st = os.stat(ex)
            excluded_ids.add((st.st_dev, st.st_ino))
            excluded_real.append(os.path.realpath(ex))
        except OSError:
            pass

    def problem(path: str, rel: str, reason: str) -> None:
        log.debug("scan: skipping %s: %s", path, reason)
        if on_problem is not None:
            on_problem(ScanProblem(Path(path), rel, reason))

    def walk_reaches(real: str) -> bool:
        """Would the plain walk (no symlinks) reach this real path under the root?"""
        if not _inside(real, root_real) or any(_inside(real, ex) for ex in excluded_real):
            return False
        rel = os.path.relpath(real, root_real)
        return not any(part.startswith(".") for part in Path(rel).parts)

    visited_dirs: set[tuple[int, int]] = {(root_st.st_dev, root_st.st_ino)}
    # Files whose identity must be remembered: reached through a link, or hard-linked.
    seen_files: set[tuple[int, int]] = set()
    def seen_before(st: os.stat_result, rel: str) -> bool:
        """Was this file (by device and inode) yielded already, under another link? Remembers it."""
        key = (st.st_dev, st.st_ino)
        if key in seen_files:
            log.debug("scan: %s is a second link to a file already yielded", rel)
            return True
        seen_files.add(key)
        return False

    # (folder path, its rel, reached through a symlink somewhere above)
    stack: list[tuple[str, str, bool]] = [(str(root_path), "", False)]

    while stack:
        dir_path, dir_rel, via_link = stack.pop()
        try:
            fd, entries = _listing(dir_path)
        except OSError as e:
            problem(dir_path, dir_rel, f"cannot read folder: {e.strerror or e}")
            continue
        subdirs: list[tuple[str, str, bool]] = []
        prefix = f"{dir_rel}/" if dir_rel else ""
        base = dir_path.rstrip(os.sep) + os.sep
        try:
            for entry in entries:
                name = entry.name
                if name.startswith("."):  # hidden, including AppleDouble "._name"
                    continue
                rel = prefix + name
                # The common case first, in few steps (a million of them on a no-op rerun): a
                # regular file that is no symlink. Its type comes with the folder listing.
                try:
                    plain = entry.is_file(follow_symlinks=False)
                except OSError:
                    plain = False
                if plain:
                    dot = name.rfind(".")
                    if dot <= 0 or name[dot + 1 :].lower() not in AUDIO_EXTENSIONS:
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError as e:
                        problem(base + name, rel, f"cannot stat: {e.strerror or e}")
                        continue
                    if _HAS_ATTRS and _is_hidden(name, st):
                        continue
                    if (via_link or st.st_nlink > 1) and seen_before(st, rel):
                        continue
                    yield ScannedFile(base + name, rel, st.st_size, st.st_mtime_ns)
                    continue
                try:
                    is_link = entry.is_symlink()
                    is_dir = entry.is_dir()  # follows symlinks
                    is_file = not is_dir and entry.is_file()
                except OSError as e:
                    try:
                        linked = entry.is_symlink()
                    except OSError:
                        linked = False
                    what = "symlink cannot be followed" if linked else "cannot stat"
                    problem(base + name, rel, f"{what}: {e.strerror or e}")
                    continue
                if is_link and not (is_dir or is_file):
                    try:
                        os.stat(base + name)
                        reason = "symlink to something that is neither a file nor a folder"
                    except OSError as e:
                        reason = "broken symlink" if e.errno == 2 else f"symlink cannot be followed: {e.strerror or e}"
                    if is_dir or is_audio_name(name) or "." not in name:
                        problem(base + name, rel, reason)
                    continue
                if is_dir:
                    try:
                        st = entry.stat()
                    except OSError as e:
                        problem(base + name, rel, f"cannot stat folder: {e.strerror or e}")
                        continue
                    key = (st.st_dev, st.st_ino)
                    if key in excluded_ids or _is_hidden(name, st):
                        continue
                    if is_link and walk_reaches(os.path.realpath(base + name)):
                        real = os.path.realpath(base + name)
                        if os.path.realpath(base).startswith(real.rstrip(os.sep) + os.sep) or \
                                os.path.realpath(base) == real:
                            # A link back to a folder above it: a loop a person should hear about.
                            problem(base + name, rel, f"symlink loop: points back to {real}, which holds it (not followed)")
                        else:
                            log.debug("scan: %s links inside the root; walked at its real path", rel)
                        continue
                    if key in visited_dirs:
                        log.debug("scan: %s already walked (symlink loop or second link)", rel)
                        continue
                    visited_dirs.add(key)
                    subdirs.append((base + name, rel, via_link or is_link))
                    continue
                if not is_file or not is_audio_name(name):
                    continue
                try:
                    st = entry.stat()
                except OSError as e:
                    problem(base + name, rel, f"cannot stat: {e.strerror or e}")
                    continue
                if _HAS_ATTRS and _is_hidden(name, st):
                    continue
                if is_link or via_link or st.st_nlink > 1:
                    if is_link and walk_reaches(os.path.realpath(base + name)):
                        continue
                    if seen_before(st, rel):
                        continue
                yield ScannedFile(base + name, rel, st.st_size, st.st_mtime_ns)
        finally:
            if fd is not None:
                os.close(fd)
        # Depth-first in sorted order: push in reverse so the first name is walked first.
        stack.extend(reversed(subdirs))


def _listing(dir_path: str) -> tuple[int | None, list[os.DirEntry]]:
    """A folder's entries in name order, and the open folder descriptor they were listed
    from (None where os.scandir takes no descriptor): the caller closes it when done.

    Listed from a descriptor, an entry's stat() is an fstatat() relative to its folder, not a
    stat() of its whole path: the kernel skips the path walk (docs/benchmarks.md, "no-op rerun")."""
    if not _SCANDIR_FD:
        with os.scandir(dir_path) as it:
            return None, sorted(it, key=_by_name)
    fd = os.open(dir_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with os.scandir(fd) as it:
            return fd, sorted(it, key=_by_name)
    except BaseException:
        os.close(fd)
        raise


def content_hash(path: str | os.PathLike) -> str:
    """blake2b-128 of the whole file, streamed in 1 MiB blocks; hex."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(HASH_BLOCK)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()

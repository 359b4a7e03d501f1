"""Walking library roots (indexer.scan): skip rules, symlinks, problems, content hash."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from indexer.config import UserError
from indexer.scan import AUDIO_EXTENSIONS, ScanError, ScannedFile, ScanProblem, content_hash, scan


def touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def rels(root, **kw) -> list[str]:
    return [f.rel for f in scan(root, **kw)]


def test_extensions_cover_the_formats_and_the_failures():
    for ext in ("wav", "bwf", "rf64", "w64", "aif", "aiff", "aifc", "flac", "ogg", "oga", "opus", "mp3",
                "caf", "au", "snd", "wv", "m4a"):
        assert ext in AUDIO_EXTENSIONS


def test_skip_rules_and_fields(tmp_path):
    root = tmp_path / "lib"
    touch(root / "a.wav", b"12345")
    touch(root / "B.WAV")
    touch(root / "sub" / "c.flac")
    touch(root / "sub" / "deep" / "d.Mp3")
    touch(root / "sub" / "e.wv")
    touch(root / "sub" / "f.m4a")
    touch(root / "notes.txt")
    touch(root / "cover.png")
    touch(root / "noext")
    touch(root / ".hidden.wav")
    touch(root / "._a.wav")  # AppleDouble
    touch(root / "sub" / "._c.flac")
    touch(root / ".Trash" / "x.wav")
    touch(root / "sub" / ".git" / "y.wav")
    touch(root / "index" / "z.wav")  # the index's own folder
    (root / "dir.wav").mkdir()  # a folder with an audio extension is not a file
    files = list(scan(root, exclude=[root / "index"]))
    # Depth first, sorted: a folder's files, then its subfolders.
    assert [f.rel for f in files] == ["B.WAV", "a.wav", "sub/c.flac", "sub/e.wv", "sub/f.m4a", "sub/deep/d.Mp3"]
    a = files[1]
    st = os.stat(root / "a.wav")
    assert a == ScannedFile(root / "a.wav", "a.wav", 5, st.st_mtime_ns)
    assert a.path.is_absolute()


def test_relative_root_gives_absolute_paths(tmp_path, monkeypatch):
    touch(tmp_path / "lib" / "x.wav")
    monkeypatch.chdir(tmp_path)
    (f,) = scan("lib")
    assert f.path == tmp_path / "lib" / "x.wav" and f.rel == "x.wav"


def test_symlink_loop_is_walked_once(tmp_path):
    root = tmp_path / "lib"
    touch(root / "a" / "x.wav")
    os.symlink("..", root / "a" / "up")  # a -> root: a loop
    os.symlink(root / "a", root / "a" / "self")
    assert rels(root) == ["a/x.wav"]


def test_symlinks_outside_root_followed_once(tmp_path):
    root, ext = tmp_path / "lib", tmp_path / "external"
    touch(ext / "s1.wav")
    touch(ext / "deeper" / "s2.wav")
    touch(tmp_path / "lone.wav")
    touch(root / "own.wav")
    os.symlink(ext, root / "link1")
    os.symlink(ext, root / "link2")  # the same folder reached twice
    os.symlink(ext / "deeper", root / "link3")  # a subfolder of it
    os.symlink(tmp_path / "lone.wav", root / "f1.wav")
    os.symlink(tmp_path / "lone.wav", root / "f2.wav")  # the same file reached twice
    os.symlink(ext / "s1.wav", root / "s1-again.wav")  # a file also reached through link1
    got = rels(root)
    # Each file once, under the first path in walk order (a folder's files before its subfolders).
    assert sorted(got) == ["f1.wav", "link3/s2.wav", "own.wav", "s1-again.wav"]
    assert got == rels(root)  # the same choice every run


def test_symlink_inside_root_keeps_real_path(tmp_path):
    root = tmp_path / "lib"
    touch(root / "real" / "x.wav")
    touch(root / "real" / "y.wav")
    os.symlink(root / "real", root / "aaa-link")  # sorts before "real"
    os.symlink(root / "real" / "y.wav", root / "alias.wav")
    assert rels(root) == ["real/x.wav", "real/y.wav"]


def test_symlink_into_hidden_folder_is_followed(tmp_path):
    root = tmp_path / "lib"
    touch(root / ".stash" / "x.wav")
    os.symlink(root / ".stash", root / "visible")
    assert rels(root) == ["visible/x.wav"]


def test_hard_links_yield_once(tmp_path):
    root = tmp_path / "lib"
    touch(root / "a.wav")
    os.link(root / "a.wav", root / "b.wav")
    assert rels(root) == ["a.wav"]


def test_broken_symlinks_reported(tmp_path):
    root = tmp_path / "lib"
    touch(root / "ok.wav")
    os.symlink(tmp_path / "gone.wav", root / "broken.wav")
    os.symlink(tmp_path / "gone-dir", root / "broken-dir")
    os.symlink(root / "selfloop.wav", root / "selfloop.wav")
    os.symlink(tmp_path / "gone.txt", root / "ignored.txt")
    problems: list[ScanProblem] = []
    assert rels(root, on_problem=problems.append) == ["ok.wav"]
    by_rel = {p.rel: p.reason for p in problems}
    assert by_rel["broken.wav"] == "broken symlink"
    assert by_rel["broken-dir"] == "broken symlink"
    assert "symlink cannot be followed" in by_rel["selfloop.wav"]
    assert "ignored.txt" not in by_rel
    assert all(p.path.is_absolute() for p in problems)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_unreadable_folder_reported(tmp_path):
    root = tmp_path / "lib"
    touch(root / "ok.wav")
    touch(root / "locked" / "x.wav")
    (root / "locked").chmod(0)
    problems = []
    try:
        assert rels(root, on_problem=problems.append) == ["ok.wav"]
    finally:
        (root / "locked").chmod(0o755)
    assert problems[0].rel == "locked" and "cannot read folder" in problems[0].reason


def test_unreadable_folder_reported_via_scandir_error(tmp_path, monkeypatch):
    """Same rule as above, made testable as root: scandir of one folder fails."""
    root = tmp_path / "lib"
    touch(root / "ok.wav")
    touch(root / "locked" / "x.wav")
    real_scandir, real_open = os.scandir, os.open

    def scandir(p):
        if str(p).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(p))
        return real_scandir(p)

    def open_(p, *a, **k):  # folders are listed from a descriptor where the platform can
        if str(p).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, *a, **k)

    monkeypatch.setattr("indexer.scan.os.scandir", scandir)
    monkeypatch.setattr("indexer.scan.os.open", open_)
    problems = []
    assert rels(root, on_problem=problems.append) == ["ok.wav"]
    assert (problems[0].rel, problems[0].reason) == ("locked", "cannot read folder: Permission denied")


def test_odd_names(tmp_path):
    root = tmp_path / "lib"
    touch(root / "new\nline.wav")
    touch(root / "ünïcode ✓.flac")
    bad = os.fsencode(str(root)) + b"/latin1-\xe9.wav"
    with open(bad, "wb") as f:
        f.write(b"x")
    got = rels(root)
    assert "new\nline.wav" in got and "ünïcode ✓.flac" in got
    assert os.fsencode(next(r for r in got if r.startswith("latin1"))) == b"latin1-\xe9.wav"


def test_bad_roots(tmp_path):
    with pytest.raises(ScanError, match="not found"):
        list(scan(tmp_path / "nope"))
    touch(tmp_path / "file.wav")
    with pytest.raises(ScanError, match="not a folder"):
        list(scan(tmp_path / "file.wav"))
    assert issubclass(ScanError, UserError)


def test_excluded_dir_by_identity(tmp_path):
    root = tmp_path / "lib"
    touch(root / "idx" / "cache.wav")
    touch(root / "a.wav")
    os.symlink(root / "idx", tmp_path / "idx-alias")
    assert rels(root, exclude=[tmp_path / "idx-alias", tmp_path / "missing"]) == ["a.wav"]


def test_content_hash(tmp_path):
    data = os.urandom(3 * (1 << 20) + 123)
    p = touch(tmp_path / "h.wav", data)
    assert content_hash(p) == hashlib.blake2b(data, digest_size=16).hexdigest()
    assert len(content_hash(p)) == 32
    assert content_hash(touch(tmp_path / "e.wav", b"")) == hashlib.blake2b(b"", digest_size=16).hexdigest()
    p.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # the last byte changed (a 0 byte was 1 in 256)
    assert content_hash(p) != hashlib.blake2b(data, digest_size=16).hexdigest()


def test_many_files_rescan(tmp_path):
    root = tmp_path / "lib"
    for i in range(40):
        for j in range(25):
            touch(root / f"d{i:02d}" / f"f{j:02d}.wav")
    first = list(scan(root))
    assert len(first) == 1000 and first == list(scan(root))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_folder_descriptors_are_closed_even_when_the_walk_is_abandoned(tmp_path):
    """Folders are listed from an open descriptor (stat relative to it): none may leak,
    whether the walk runs to its end or its consumer stops early."""
    root = tmp_path / "lib"
    for i in range(30):
        touch(root / f"d{i:02d}" / "sub" / "a.wav")
        touch(root / f"d{i:02d}" / "b.WAV")

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    found = list(scan(root))
    assert len(found) == 60 and open_fds() == before
    assert [f.rel for f in found][:3] == ["d00/b.WAV", "d00/sub/a.wav", "d01/b.WAV"]
    assert all(f.size == 1 and f.path == root / f.rel for f in found)
    walk = scan(root)
    next(walk)
    assert open_fds() == before + 1  # the folder being listed
    walk.close()
    assert open_fds() == before

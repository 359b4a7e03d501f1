"""Writes into a user's files leave the old file or the new one, never half a file (issue 15):
real kill -9 during writes, a full filesystem, read-only and locked files left untouched."""

from __future__ import annotations

import fcntl
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

import audiogen
from indexer.writeback import Journal, plan_file, write_files
from indexer.writeback.atomic import file_hash

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys
from indexer.writeback import Journal, plan_file, write_files
path, journal = sys.argv[1], Journal(sys.argv[2])
print("ready", flush=True)
i = 0
while True:
    v = "AB"[i % 2]
    write_files([plan_file(path, {"description": v * 40, "keywords": v, "notes": v * 3})], journal)
    i += 1
"""


def _values(v: str) -> dict:
    return {"description": v * 40, "keywords": v, "notes": v * 3}


def test_kill_9_during_writes_leaves_old_or_new_file_and_undo_still_restores(tmp_path):
    src = audiogen.write_audio(tmp_path / "src.wav", kind="noise", duration=12.0, channels=2, sr=48000)
    path = tmp_path / "lib" / "take.wav"
    path.parent.mkdir()
    # The states a write can leave: the original, A applied, B applied (A again equals A).
    states = []
    probe = tmp_path / "probe" / "take.wav"
    probe.parent.mkdir()
    probe.write_bytes(src.read_bytes())
    states.append(file_hash(probe))
    pj = Journal(tmp_path / "probe-journal")
    for v in "ABA":
        write_files([plan_file(probe, _values(v))], pj)
        states.append(file_hash(probe))
    assert states[3] == states[1] and len(set(states[:3])) == 3
    allowed = set(states[:3])

    path.write_bytes(src.read_bytes())
    journal = Journal(tmp_path / "journal")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(15)
    for _trial in range(5):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(journal.folder)], env=env,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        child.kill()  # SIGKILL: no cleanup, no finally blocks
        child.wait()
        child.stdout.close()
        assert file_hash(path) in allowed
        leftovers = [p.name for p in path.parent.iterdir() if p != path]
        assert all(n.endswith(".sfxtmp") for n in leftovers), leftovers
    written = sum(len(c.entries) for c in journal.changes())
    assert written >= 2, "the kills landed before any write; the test proved nothing"
    # Undo every change, newest first: the original bytes come back.
    while True:
        try:
            change = journal.get(None)
        except Exception:
            break
        rows = journal.undo(change)
        assert all(r["status"] != "failed" for r in rows), rows
    assert file_hash(path) == states[0]


@pytest.fixture
def tiny_fs(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_filesystem_leaves_the_file_as_it_was(tiny_fs, tmp_path):
    path = audiogen.write_audio(tiny_fs / "big.wav", kind="noise", duration=7.0, sr=48000)  # ~670 kB of 1 MB
    before = file_hash(path)
    plan = plan_file(path, {"description": "does not fit"})
    change, rows = write_files([plan], Journal(tmp_path / "journal"))
    assert rows[0]["status"] == "skipped" and "disk full" in rows[0]["reason"]
    assert file_hash(path) == before
    assert [p.name for p in tiny_fs.iterdir()] == ["big.wav"]  # the partial temporary copy is gone


def test_read_only_and_locked_files_are_reported_and_untouched(tmp_path):
    ro = audiogen.write_audio(tmp_path / "ro.wav", duration=0.3)
    locked = audiogen.write_audio(tmp_path / "locked.flac", duration=0.3)
    os.chmod(ro, 0o444)
    hashes = {p: file_hash(p) for p in (ro, locked)}
    assert plan_file(ro, {"description": "x"}).skipped == "read-only file"
    plan = plan_file(locked, {"description": "x"})
    assert plan.skipped is None
    with open(locked, "rb") as holder:  # another program holds a lock on it
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        change, rows = write_files([plan], Journal(tmp_path / "j"))
    assert rows[0]["status"] == "skipped" and rows[0]["reason"] == "locked by another program"
    assert {p: file_hash(p) for p in hashes} == hashes

"""The build's hashing stage (indexer.hashing): several threads, answers in the scan's order."""

from __future__ import annotations

import queue
import threading
import time
from types import SimpleNamespace

from indexer import hashing
from indexer.scan import content_hash


def _drain(out: queue.Queue) -> list:
    got = []
    while (x := out.get(timeout=30)) is not None:
        got.append(x)
    return got


def test_files_come_out_in_order_hashed_on_several_threads(tmp_path, monkeypatch):
    files = []
    for i in range(40):
        p = tmp_path / f"f{i:02d}.bin"
        p.write_bytes(bytes([i]) * (1000 + 997 * (39 - i)))  # later files hash sooner
        files.append((SimpleNamespace(path=p), None))
    (tmp_path / "f07.bin").unlink()  # gone since the scan: a reason, not a crash
    names = set()
    real = hashing.content_hash

    def slow_hash(path):
        names.add(threading.current_thread().name)
        time.sleep(0.01 * (int(path.stem[1:]) % 3))  # finish out of order
        return real(path)

    monkeypatch.setattr(hashing, "content_hash", slow_hash)
    out: queue.Queue = queue.Queue()
    hashing.hash_in_order(files, out, threading.Event(), threads=4)
    got = _drain(out)
    assert [g[0].path.name for g in got] == [f"f{i:02d}.bin" for i in range(40)]
    for item, _, h, ah, err in got:
        if item.path.name == "f07.bin":
            assert h is None and err.startswith("cannot read")
        else:
            assert err is None and h == content_hash(item.path) and ah is None  # not audio
    assert len(names) > 1


def test_a_stop_ends_it_with_none(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"x" * 100)
    stop = threading.Event()
    stop.set()
    out: queue.Queue = queue.Queue()
    hashing.hash_in_order([(SimpleNamespace(path=p), None)] * 100, out, stop)
    assert _drain(out) == [] and out.empty()


def test_a_read_that_never_returns_does_not_hold_a_stopped_build(tmp_path, monkeypatch):
    """A stalled network share: the build stops (Ctrl-C), and the hashing thread and the
    process may end although one hash never returns (its threads are daemons)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import queue, threading, time\n"
        "from types import SimpleNamespace\n"
        "from indexer import hashing\n"
        "hashing.content_hash = lambda path: time.sleep(3600)\n"
        "out, stop = queue.Queue(maxsize=1), threading.Event()\n"
        "items = [(SimpleNamespace(path=hashing.__file__), None)] * 50\n"
        "t = threading.Thread(target=hashing.hash_in_order, args=(items, out, stop), daemon=True)\n"
        "t.start(); time.sleep(0.5); stop.set(); t.join(5)\n"
        "print('joined' if not t.is_alive() else 'stuck')\n"
    )
    root = Path(__file__).resolve().parent.parent
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=root, env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "joined" and time.monotonic() - t0 < 30

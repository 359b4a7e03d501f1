"""A team on one catalog: PostgreSQL, the FAISS file on shared storage, two servers, one builder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

import audiogen
from indexer import pipeline

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        return json.loads(r.read())


def _wait_ready(proc, port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read()}")
        try:
            _get(port, "/api/search?q=x&n=1")
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("server did not start")


def test_two_servers_follow_one_builder_on_postgres(settings, library, postgres_url, tmp_path):
    root, files = library
    settings.db_url = postgres_url
    pipeline.build(settings, [str(root)], workers=1, progress=False)
    env = dict(os.environ, SFX_INDEX_DIR=str(settings.index_dir), SFX_DATABASE_URL=postgres_url,
               SFX_MODEL=str(settings.model))
    ports = [_free_port(), _free_port()]
    procs = [
        subprocess.Popen([sys.executable, "-m", "search.cli", "serve", "--port", str(p)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for p in ports
    ]
    try:
        for proc, port in zip(procs, ports):
            _wait_ready(proc, port)
        n_before = len(files)
        for port in ports:
            rows = _get(port, "/api/search?q=anything&n=50&mode=semantic")["results"]
            assert len(rows) == n_before
        assert not (settings.index_dir / "server.json").exists()

        # The one builder adds a file and renames a new FAISS file into place.
        new = audiogen.write_audio(root / "late" / "late_arrival.wav", audiogen.sine(48000, 1.5, freq=777), 48000)
        mtime_before = settings.faiss_path.stat().st_mtime_ns
        pipeline.build(settings, [str(root)], workers=1, progress=False)
        assert settings.faiss_path.stat().st_mtime_ns != mtime_before
        for port in ports:
            rows = _get(port, "/api/search?q=anything&n=50&mode=semantic")["results"]
            assert len(rows) == n_before + 1
            assert str(new) in [r["path"] for r in rows]
            fid = next(r["file_id"] for r in rows if r["path"] == str(new))
            like = _get(port, f"/api/similar?file_id={fid}&n=1")["results"]
            assert like[0]["path"] == str(new)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)

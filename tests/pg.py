"""A real PostgreSQL server for the catalog tests, started on loopback from Debian's binaries.

`scripts/install_system_deps.sh` (run by `make test`) installs the server; this fixture makes a
throw-away cluster in a temp dir (as the `postgres` user when running as root, since initdb
refuses root), and gives each test a fresh database URL. Where no server binaries exist the
tests that need it are skipped with that reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self):
        bindir = _bin_dir()
        if bindir is None:
            pytest.skip("PostgreSQL server binaries not found (make test installs them with apt-get)")
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="sfx-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run([str(bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        self._run([
            str(bindir / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.dir / "log"), "start",
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
        ])
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, cmd):
        subprocess.run(self.as_user + cmd, check=True, capture_output=True, timeout=120)

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self):
        try:
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def _pg_server():
    server = PgServer()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(_pg_server) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return _pg_server.new_database()

"""Running the audition app: the listening socket, uvicorn, and `server.json` in the index folder.

`server.json` ({host, port, pid, index}) tells `sfx-search "..."` that a warm server answers
for this index (search/remote.py); it exists exactly while the server accepts requests.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import tempfile
import threading
from pathlib import Path

from indexer.config import UserError

from ..remote import SERVER_FILE, server_info


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free one), or a UserError saying what to change."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); try another --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class ServerFile:
    def __init__(self, index_dir: str | Path, host: str, port: int):
        self.path = Path(index_dir) / SERVER_FILE
        self.info = {"host": host, "port": port, "pid": os.getpid(), "index": str(index_dir)}

    def check_free(self) -> None:
        other = server_info(self.path.parent)
        if other is not None and other.get("pid") != os.getpid():
            raise UserError(
                f"a server already runs on this index at http://{other['host']}:{other['port']} "
                f"(pid {other['pid']}); open that one or stop it first"
            )

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".server-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.info, fh)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        try:
            if json.loads(self.path.read_text()).get("pid") == os.getpid():
                self.path.unlink()
        except (OSError, ValueError):
            pass


def url_for(host: str, port: int) -> str:
    h = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{h}:{port}"


def make_server(app, sock: socket.socket):
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=3)
    return uvicorn.Server(config)


class ThreadedServer:
    """uvicorn in a background thread (tests, benchmarks): `with ThreadedServer(app, sock) as url:`."""

    def __init__(self, app, sock: socket.socket):
        self.sock = sock
        self.server = make_server(app, sock)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread stopped during start-up")
            self.thread.join(0.02)
        host, port = self.sock.getsockname()[:2]
        return url_for(host, port)

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

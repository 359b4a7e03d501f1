"""Hand a query to a running `sfx-search serve` on the same index (warm model, no torch import).

The server writes `server.json` (host, port, pid, index) into the index folder while it runs.
Only the standard library is imported here: this path must stay fast.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

SERVER_FILE = "server.json"


def server_info(index_dir: Path) -> dict | None:
    try:
        info = json.loads((Path(index_dir) / SERVER_FILE).read_text())
        os.kill(int(info["pid"]), 0)  # still alive?
        return info
    except (OSError, ValueError, KeyError, TypeError):
        return None


def try_remote_search(settings, params: dict):
    """Results from the server, or None to search locally (no server, other model, any error)."""
    if os.environ.get("SFX_NO_SERVER") or settings.db_url:
        return None
    info = server_info(settings.index_dir)
    if info is None:
        return None
    f = params["filters"]
    body = {
        "q": params["text"], "n": params["n"], "mode": params["mode"], "not": params["not_text"],
        "collapse_copies": bool(params.get("collapse_copies")),
        "filters": {k: (list(v) if isinstance(v, tuple) else v) for k, v in f.__dict__.items()},
    }
    req = urllib.request.Request(
        f"http://{info['host']}:{info['port']}/api/search", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            payload = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code in (400, 404, 422):
            from indexer.config import UserError

            try:
                msg = json.loads(exc.read()).get("error")
            except Exception:
                msg = None
            if msg:
                raise UserError(msg) from None
        return None
    except (OSError, ValueError):
        return None
    from .results import NoMatches, Result

    if not payload.get("results") and payload.get("note"):
        raise NoMatches(payload["note"])
    fields = Result.__dataclass_fields__
    return [Result(**{k: v for k, v in row.items() if k in fields}) for row in payload["results"]]

"""The page's write-back API: current metadata, suggestions, accept / reject, preview, confirmed apply, undo.

    GET  /api/writeback/session            {"token", "write": bool, "why"}: the page's token
    GET  /api/writeback/files/{id}         current values in the file + suggestions with scores
    POST /api/writeback/decision           {file_id, label, cat_id, accept}: a review decision
    POST /api/writeback/preview            {items: [{file_id, values: {field: value}}]}
                                           -> rows (file, field, old, new) and a preview id
    POST /api/writeback/apply              {items, preview_id}: writes what that preview showed
    GET  /api/writeback/changes            the journal;  POST /api/writeback/undo {change}

Every POST refuses requests from other origins: a page on another site can make a browser POST
to 127.0.0.1. It needs the token the page got from /session (a header other origins cannot set
without a CORS preflight we never answer), a same-origin `Origin` and `Sec-Fetch-Site` when the
browser sends them. Writing into files is off when the server listens beyond loopback unless
`sfx-search serve --allow-write`. Apply writes only a preview the server made for the same
items (the page's confirm step), through indexer.writeback: atomic, journaled, undoable.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from indexer.config import UserError
from indexer.writeback import FIELDS, Journal, normalise, plan_file, write_files
from indexer.writeback.catalog_sync import sync_undo, sync_written
from indexer.writeback.errors import CannotWrite

MAX_ITEMS = 500  # the app caps a request body at 64 kB anyway
MAX_BODY = 64 * 1024
FILE_KEYS = {"cat_id": ("ixml.user.catid", "tag.catid", "ucs.cat_id"),
             "category": ("ixml.user.category", "tag.category", "ucs.category"),
             "subcategory": ("ixml.user.subcategory", "tag.subcategory", "ucs.subcategory"),
             "fx_name": ("ixml.user.fxname", "info.INAM", "tag.title", "ucs.fx_name"),
             "description": ("ixml.user.description", "bext.description", "info.ICMT", "tag.description", "tag.comment"),
             "keywords": ("ixml.user.keywords", "info.IKEY", "tag.keywords"),
             "notes": ("ixml.user.notes", "tag.notes")}


def _deny(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def current_values(path: str) -> dict[str, str]:
    """What the file holds for each field (read from the file itself, not the catalog)."""
    from indexer.metadata import read_metadata

    meta = read_metadata(path)
    return {f: next((meta[k] for k in keys if meta.get(k)), "") for f, keys in FILE_KEYS.items()}


def suggestions(catalog, file_id: int, limit: int = 8) -> dict:
    """Tags of one file best first (score, CatID, decision) and the values they suggest."""
    rows = catalog.tagged_files(file_ids=[file_id])
    tags = [{"label": r.label, "cat_id": r.cat_id, "score": round(float(r.score), 4), "set": r.set_name,
             "source": r.source, "decision": r.decision} for r in rows[: 4 * limit]]
    live = [t for t in tags if t["decision"] != "rejected"]
    top = next((t for t in live if t["cat_id"]), None)
    values = {}
    if top is not None:
        values["cat_id"] = top["cat_id"]
    labels = []
    for t in live:
        if t["label"] not in labels:
            labels.append(t["label"])
    if labels:
        values["keywords"] = ", ".join(labels[:limit])
        values["description"] = labels[0]
    return {"tags": tags[:limit * 2], "values": values, "ucs_score": top["score"] if top else None}


def routes(library, files, *, index_dir: str | Path, loopback: bool, allow_write: bool = False,
           lock: threading.Lock | None = None) -> list[Route]:
    """The write-back routes for create_app (files: its FileService; lock: its library lock)."""
    token = secrets.token_urlsafe(32)
    journal = Journal(Path(index_dir) / "writeback")
    lock = lock or threading.Lock()
    can_write = loopback or allow_write
    why = "" if can_write else "writing is off: the server listens beyond this machine (serve --allow-write)"
    previews: dict[str, str] = {}  # preview id -> digest of the items it showed

    def locked(fn, *args):
        with lock:
            return fn(*args)

    def refuse(request: Request) -> JSONResponse | None:
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return _deny(403, "write requests are only accepted from the page itself")
        origin = request.headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
            return _deny(403, "write requests are only accepted from the page itself")
        if not secrets.compare_digest(request.headers.get("x-sfx-token", ""), token):
            return _deny(403, "missing or wrong page token (reload the page)")
        return None

    async def body(request: Request) -> dict:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise UserError("request body too large")
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise UserError("the body must be JSON") from None
        if not isinstance(data, dict):
            raise UserError("the body must be a JSON object")
        return data

    def items_of(data: dict) -> list[tuple[str, dict]]:
        items = data.get("items")
        if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
            raise UserError(f"items must be a list of 1 to {MAX_ITEMS} files")
        out = []
        for it in items:
            if not isinstance(it, dict) or not isinstance(it.get("values"), dict):
                raise UserError("each item needs file_id and values")
            values = {str(k): str(v) for k, v in it["values"].items()}
            if any(k not in FIELDS for k in values):
                raise UserError(f"fields are {', '.join(FIELDS)}")
            row = files.on_disk(int(it.get("file_id", 0)))  # paths only ever come from the catalog
            out.append((row.path, normalise(values)))
        return out

    def digest(items) -> str:
        return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()

    async def guarded(request: Request, fn) -> Response:
        bad = refuse(request)
        if bad is not None:
            return bad
        try:
            return JSONResponse(await fn(await body(request)))
        except (UserError, CannotWrite) as e:
            return _deny(400, str(e))

    async def session(request: Request) -> Response:
        return JSONResponse({"token": token, "write": can_write, "why": why},
                            headers={"Cache-Control": "no-store"})

    async def file_values(request: Request) -> Response:
        fid = request.path_params["file_id"]
        row = await run_in_threadpool(files.on_disk, fid)
        current = await run_in_threadpool(current_values, row.path)
        sugg = await run_in_threadpool(locked, suggestions, library.catalog, fid)
        return JSONResponse({"file_id": fid, "path": row.path, "current": current, **sugg, "fields": list(FIELDS)})

    async def decision(request: Request) -> Response:
        async def run(data):
            fid, label = int(data.get("file_id", 0)), str(data.get("label") or "")
            if not label:
                raise UserError("label is required")
            files.row(fid)
            await run_in_threadpool(locked, lambda: library.catalog.record_decision(
                fid, label, accept=bool(data.get("accept")), cat_id=data.get("cat_id") or None))
            return {"file_id": fid, "label": label, "accepted": bool(data.get("accept"))}
        return await guarded(request, run)

    async def preview(request: Request) -> Response:
        async def run(data):
            items = await run_in_threadpool(items_of, data)
            plans = await run_in_threadpool(lambda: [plan_file(p, v) for p, v in items])
            pid = secrets.token_urlsafe(12)
            previews[pid] = digest(items)
            while len(previews) > 64:
                previews.pop(next(iter(previews)))
            return {"preview_id": pid, "write": can_write, "rows": [r for p in plans for r in p.rows()]}
        return await guarded(request, run)

    async def apply(request: Request) -> Response:
        async def run(data):
            if not can_write:
                raise UserError(why)
            items = await run_in_threadpool(items_of, data)
            if previews.get(str(data.get("preview_id"))) != digest(items):
                raise UserError("apply needs the preview of these same values first (confirm step)")
            previews.pop(str(data.get("preview_id")))

            def write():
                plans = [plan_file(p, v) for p, v in items]
                change, rows = write_files(plans, journal)
                # Search and the page show the new values at once (vectors untouched).
                locked(sync_written, library.catalog, [r["path"] for r in rows if r.get("status") == "written"])
                return change, rows

            change, rows = await run_in_threadpool(write)
            return {"change": change, "rows": rows}
        return await guarded(request, run)

    async def changes(request: Request) -> Response:
        data = [{"change": c.id, "kind": c.kind, "time": c.time, "files": len(c.entries), "undone": c.undone}
                for c in await run_in_threadpool(journal.changes) if c.entries]
        return JSONResponse({"changes": data})

    async def undo(request: Request) -> Response:
        async def run(data):
            if not can_write:
                raise UserError(why)
            change = journal.get(data.get("change") or None)
            rows = await run_in_threadpool(journal.undo, change)
            await run_in_threadpool(locked, sync_undo, library.catalog, rows)
            return {"change": change.id, "rows": rows}
        return await guarded(request, run)

    return [
        Route("/api/writeback/session", session),
        Route("/api/writeback/files/{file_id:int}", file_values),
        Route("/api/writeback/decision", decision, methods=["POST"]),
        Route("/api/writeback/preview", preview, methods=["POST"]),
        Route("/api/writeback/apply", apply, methods=["POST"]),
        Route("/api/writeback/changes", changes),
        Route("/api/writeback/undo", undo, methods=["POST"]),
    ]

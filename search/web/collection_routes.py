"""The page's collections (search/collection.py, docs/collections.md):

    GET  /api/collections                              names and item counts
    GET  /api/collections/items?name=                  the items, where their files are now
    POST /api/collections/add     {name, items: [{file_id, start?, end?}]}
    POST /api/collections/move    {name, position, to}
    POST /api/collections/remove  {name, positions?}   (no positions: the whole collection)
    POST /api/collections/rename  {name, new_name}
    GET  /api/collections/export?name=&format=m3u|csv  a download
    POST /api/collections/export-wav {name, dir}       region WAVs into a folder (loopback only)

Files are named by catalog id on the way in; paths come only from the catalog.
"""

from __future__ import annotations

import math

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from indexer.config import UserError

from .. import collection as C

MAX_ITEMS = 500


def collection_routes(library, files, locked, loopback: bool) -> list[Route]:
    from .app import BadRequest, error, request_params

    def text(p: dict, key: str, limit: int = 4096) -> str:
        v = p.get(key)
        if not isinstance(v, str) or not v.strip() or len(v) > limit:
            raise BadRequest(f"{key} must be a non-empty string")
        return v

    def integer(p: dict, key: str) -> int:
        v = p.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v < 2**31:
            raise BadRequest(f"{key} must be a positive integer")
        return v

    def seconds(v, key: str) -> float | None:
        if v is None:
            return None
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not 0 <= v < 1e9:
            raise BadRequest(f"{key} must be a number of seconds (0 or more)")
        return float(v)

    async def call(fn, *args):
        try:
            return await run_in_threadpool(locked, fn, library.catalog, *args)
        except UserError as exc:
            raise BadRequest(str(exc)) from None

    def items_json(catalog, name):
        return {"name": name, "items": [e.as_json() for e in C.entries(catalog, name)]}

    async def list_route(request: Request) -> Response:
        rows = await call(lambda cat: cat.collections())
        return JSONResponse({"collections": [{"name": c.name, "items": c.items} for c in rows]})

    async def items_route(request: Request) -> Response:
        name = text(dict(request.query_params), "name", C.MAX_NAME)
        return JSONResponse(await call(items_json, name))

    async def add_route(request: Request) -> Response:
        p = await request_params(request)
        name = text(p, "name", C.MAX_NAME)
        raw = p.get("items")
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ITEMS:
            raise BadRequest(f"items must be a list of 1 to {MAX_ITEMS} {{file_id, start, end}} objects")
        items = []
        for it in raw:
            if not isinstance(it, dict):
                raise BadRequest("each item must be an object {file_id, start, end}")
            fid = integer(it, "file_id")
            await run_in_threadpool(files.row, fid)  # 404 for unknown ids
            items.append((fid, seconds(it.get("start"), "start"), seconds(it.get("end"), "end")))
        added = await call(C.add_ids, name, items)
        return JSONResponse({"added": added, **(await call(items_json, name))})

    async def move_route(request: Request) -> Response:
        p = await request_params(request)
        name = text(p, "name", C.MAX_NAME)
        await call(C.move, name, integer(p, "position"), integer(p, "to"))
        return JSONResponse(await call(items_json, name))

    async def remove_route(request: Request) -> Response:
        p = await request_params(request)
        name = text(p, "name", C.MAX_NAME)
        positions = p.get("positions") or []
        if not isinstance(positions, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in positions):
            raise BadRequest("positions must be a list of item positions (1-based)")
        removed = await call(C.remove, name, positions)
        return JSONResponse({"removed": removed})

    async def rename_route(request: Request) -> Response:
        p = await request_params(request)
        await call(C.rename, text(p, "name", C.MAX_NAME), text(p, "new_name", C.MAX_NAME))
        return JSONResponse({"name": p["new_name"].strip()})

    async def export_route(request: Request) -> Response:
        qp = dict(request.query_params)
        name = text(qp, "name", C.MAX_NAME)
        fmt = qp.get("format")
        if fmt not in ("m3u", "csv"):
            raise BadRequest("format must be m3u or csv")
        rows = await call(C.entries, name)
        body = C.m3u_text(rows) if fmt == "m3u" else C.csv_text(rows)
        safe = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in name).strip() or "collection"
        mime = "audio/x-mpegurl" if fmt == "m3u" else "text/csv"
        return Response(body.encode("utf-8", "surrogateescape"), media_type=mime,
                        headers={"Content-Disposition": f'attachment; filename="{safe}.{fmt}"'})

    async def export_wav_route(request: Request) -> Response:
        if not loopback:
            return error(403, "region WAVs are written only when the server listens on 127.0.0.1; "
                              "use 'sfx-search collection export NAME --wav-dir DIR'")
        p = await request_params(request)
        name, folder = text(p, "name", C.MAX_NAME), text(p, "dir")
        written = await call(lambda cat: C.export_wav_dir(cat, C.entries(cat, name), folder))
        return JSONResponse({"dir": folder, "files": [str(w) for w in written]})

    return [
        Route("/api/collections", list_route),
        Route("/api/collections/items", items_route),
        Route("/api/collections/add", add_route, methods=["POST"]),
        Route("/api/collections/move", move_route, methods=["POST"]),
        Route("/api/collections/remove", remove_route, methods=["POST"]),
        Route("/api/collections/rename", rename_route, methods=["POST"]),
        Route("/api/collections/export", export_route),
        Route("/api/collections/export-wav", export_wav_route, methods=["POST"]),
    ]

"""The page's hygiene routes: near-duplicate groups and problem files (issue 16).

    GET /api/duplicates                 every group: keep, why, copies with their difference
    GET /api/files/{id}/duplicates      the group of one file ({"group": null} when it has none)
    GET /api/qc                         problem files: path, problems, measurements

Registered by search/web/app.py with one line. The duplicates pass reads every fingerprint,
so its groups are kept until the catalog's generation moves (a build, a removal).
"""

from __future__ import annotations

import threading

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def hygiene_routes(library, locked) -> list[Route]:
    """Routes over `library` (a search.Library); `locked(fn, ...)` runs fn under the app's lock."""
    cache: dict = {}
    cache_lock = threading.Lock()

    def groups():
        from search.hygiene import duplicate_groups

        gen = library.catalog.generation
        with cache_lock:
            if cache.get("generation") != gen:
                cache["groups"] = duplicate_groups(library.catalog)
                cache["generation"] = gen
            return cache["groups"]

    async def all_groups(request: Request) -> JSONResponse:
        found = await run_in_threadpool(locked, groups)
        return JSONResponse({"groups": [g.as_json() for g in found]})

    async def file_group(request: Request) -> JSONResponse:
        fid = request.path_params["file_id"]
        found = await run_in_threadpool(locked, groups)
        for g in found:
            if fid == g.keeper.file_id or any(c.file.file_id == fid for c in g.copies):
                return JSONResponse({"group": g.as_json()})
        return JSONResponse({"group": None})

    async def qc(request: Request) -> JSONResponse:
        from search.hygiene import qc_problems

        found = await run_in_threadpool(locked, qc_problems, library.catalog)
        return JSONResponse({"files": [p.as_json() for p in found]})

    return [
        Route("/api/duplicates", all_groups),
        Route("/api/files/{file_id:int}/duplicates", file_group),
        Route("/api/qc", qc),
    ]

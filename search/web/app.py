"""The audition server: a Starlette app over one open `search.Library`.

Routes (the page uses nothing else; README "JSON API"):

    GET  /                               the page
    GET  /api/search?q=...  POST /api/search {q, n, mode, not, filters}
    GET  /api/similar?file_id=&start=    (POST with the same fields as JSON)
    GET  /api/files/{id}                 facts, metadata, chunks, tags
    GET  /api/files/{id}/audio           original bytes (Range) or a WAV made on the fly
    GET  /api/files/{id}/waveform        PNG of the whole file, ?start=&end= marks a region
    POST /api/files/{id}/reveal          open the folder (only when bound to loopback)
    GET  /api/tags                       labels with counts, when the catalog has tags
    /api/writeback/...                   metadata write-back panel (writeback_routes.py)
    POST /api/refine {q, like, unlike, n, filters}   relevance feedback (feedback_routes.py)
    POST /api/label/round|answer|save    labels by confirmation (label_routes.py)
    GET|POST /api/collections...         named pulls, exports (collection_routes.py)
    GET  /api/files/{id}/spectrogram     PNG, computed on demand and cached (spectrogram.py)

Files are addressed by catalog id only; a path never comes from the client. Library calls
block (SQLite, FAISS, torch), so they run in the threadpool behind one lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
from importlib.resources import files
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from indexer.config import UserError
from indexer.filterspec import FILTERS

from ..filters import Filters
from ..query import MAX_QUERY_CHARS, MODES
from ..results import NoMatches
from . import media, spectrogram, writeback_routes
from .files import FileService
from .hygiene_routes import hygiene_routes
from .waveform import MAX_HEIGHT, MAX_WIDTH, WaveformCache

log = logging.getLogger(__name__)

# The page and its assets, read from the installed package (a wheel carries them).
WEB = files("search.web")
MAX_N = 500
MAX_QUERY_STRING = 8192
MAX_BODY = 64 * 1024
MAX_PATH_CHARS = 4096
# A list parameter (ext, tag): at most this many values of at most LIST_ITEM_CHARS each.
MAX_LIST_ITEMS = 50
LIST_ITEM_CHARS = 200
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------- parameter parsing


def _number(value, name: str, kind=float, lo: float | None = None, hi: float | None = None):
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be a number")
    try:
        v = kind(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a{'n integer' if kind is int else ' number'}, not {str(value)[:40]!r}") from None
    if isinstance(v, float) and not math.isfinite(v):
        raise BadRequest(f"{name} must be finite")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        if hi is None:
            raise BadRequest(f"{name} must be at least {lo:g}")
        raise BadRequest(f"{name} must be between {lo:g} and {hi:g}")
    return v


def _text(value, name: str, limit: int = MAX_QUERY_CHARS) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if len(value) > limit:
        raise BadRequest(f"{name} is {len(value)} characters long; keep it under {limit}")
    return value


def _list(value, name: str) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) > MAX_LIST_ITEMS:
        raise BadRequest(f"{name} must be a list of at most {MAX_LIST_ITEMS} strings")
    out = []
    for v in value:
        for part in (_text(v, name, LIST_ITEM_CHARS) or "").split(","):
            if part.strip():
                out.append(part.strip())
    return tuple(out)


def _filter_value(spec, value):
    if spec.multiple:
        return _list(value, spec.param)
    if spec.kind in ("int", "float"):
        return _number(value, spec.param, int if spec.kind == "int" else float, spec.lo, spec.hi)
    if spec.kind == "flag":
        return True if value in (True, 1, "1", "true", "on", "yes") else None
    return _text(value, spec.param, MAX_PATH_CHARS) or None


def parse_filters(f: dict) -> Filters:
    """The `filters` object of a request: one key per declared filter (indexer/filterspec.py)."""
    if not isinstance(f, dict):
        raise BadRequest("filters must be an object")
    return Filters.from_options({spec.name: _filter_value(spec, f.get(spec.param)) for spec in FILTERS})


async def request_params(request: Request) -> dict:
    """GET query parameters or a POST JSON body, as one dict of the POST shape."""
    if request.method == "POST":
        body = await request.body()
        if len(body) > MAX_BODY:
            raise BadRequest(f"request body over {MAX_BODY} bytes", 413)
        try:
            data = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the body must be JSON") from None
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object")
        return data
    qp = request.query_params
    data = {k: qp.get(k) for k in ("q", "n", "mode", "not", "file_id", "start", "include_self") if k in qp}
    data["filters"] = {}
    for spec in FILTERS:
        if spec.multiple:
            data["filters"][spec.param] = qp.getlist(spec.param)
        elif spec.param in qp:
            data["filters"][spec.param] = qp.get(spec.param)
    return data


# ---------------------------------------------------------------------- the app


def create_app(library, *, index_dir: str | Path | None = None, loopback: bool = True,
               allowed_hosts: list[str] | None = None, server_file=None, opener=None,
               allow_write: bool = False) -> Starlette:
    """The ASGI app. `loopback` says whether the server listens only on this machine (then
    reveal-in-folder may run a program, and Host headers are checked against DNS rebinding).
    `server_file` (a ServerFile) is written once the app starts and removed when it stops.
    `allow_write` lets the page write metadata into files beyond loopback (writeback_routes)."""
    index_dir = Path(index_dir or library.settings.index_dir)
    lock = threading.Lock()
    files = FileService(library.catalog, WaveformCache(index_dir / "waveforms"))

    def locked(fn, *args, **kwargs):
        with lock:
            return fn(*args, **kwargs)

    async def results_response(fn, *args, **kwargs) -> JSONResponse:
        try:
            results = await run_in_threadpool(locked, fn, *args, **kwargs)
        except NoMatches as exc:  # an empty answer, not a bad request
            return JSONResponse({"results": [], "note": str(exc)})
        except UserError as exc:
            return error(400, str(exc))
        rows = await run_in_threadpool(files.describe_results, results)
        return JSONResponse({"results": rows})

    async def page(request: Request) -> Response:
        config = await run_in_threadpool(files.page_config, loopback)
        html = (WEB / "templates" / "index.html").read_text(encoding="utf-8")
        blob = json.dumps(config).replace("<", "\\u003c")
        return HTMLResponse(html.replace("{{CONFIG}}", blob))

    async def search(request: Request) -> Response:
        p = await request_params(request)
        q = _text(p.get("q"), "q")
        if not q or not q.strip():
            raise BadRequest("q (the description to search for) is required")
        mode = p.get("mode") or "hybrid"
        if mode not in MODES:
            raise BadRequest(f"mode must be one of {', '.join(MODES)}")
        n = _number(p.get("n"), "n", int, 1, MAX_N) or 20
        return await results_response(library.search, q, n, filters=parse_filters(p.get("filters") or {}),
                                      mode=mode, not_text=_text(p.get("not"), "not") or None,
                                      collapse_copies=p.get("collapse_copies") in (True, "1", "true", "on"))

    async def similar(request: Request) -> Response:
        p = await request_params(request)
        fid = _number(p.get("file_id"), "file_id", int, 1, 2**62)
        if fid is None:
            raise BadRequest("file_id is required")
        await run_in_threadpool(files.row, fid)  # 404 for unknown ids
        start = _number(p.get("start"), "start", float, 0, 1e9)
        n = _number(p.get("n"), "n", int, 1, MAX_N) or 20
        # The page shows the reference sound on top, to compare against (include_self=0 drops it).
        include_self = str(p.get("include_self", "1")).lower() not in ("0", "false", "no")
        return await results_response(library.similar, file_id=fid, start_s=start, n=n,
                                      filters=parse_filters(p.get("filters") or {}), include_self=include_self)

    async def file_info(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(files.info, request.path_params["file_id"]))

    async def audio(request: Request) -> Response:
        fid = request.path_params["file_id"]
        qp = request.query_params
        start = _number(qp.get("start"), "start", float, 0, 1e9)
        end = _number(qp.get("end"), "end", float, 0, 1e9)
        if start is not None and end is not None and end <= start:
            raise BadRequest("end must be after start")
        download = qp.get("download") not in (None, "", "0", "false")
        source = await run_in_threadpool(files.audio_source, fid, start, end, download)
        size = source.size
        try:
            rng = media.parse_range(request.headers.get("range"), size)
        except media.RangeError as exc:
            headers = {"Content-Range": f"bytes */{size}"} if exc.status == 416 else {}
            return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache"}
        if source.filename:
            headers["Content-Disposition"] = f'attachment; filename="{source.filename}"'
        first, last = rng if rng else (0, size - 1)
        status = 206 if rng else 200
        if rng:
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        headers["Content-Length"] = str(max(0, last - first + 1))
        if request.method == "HEAD" or size == 0:
            return Response(b"", status_code=status, headers=headers, media_type=source.mime)
        return StreamingResponse(source.iter_bytes(first, last), status_code=status, headers=headers,
                                 media_type=source.mime)

    async def waveform(request: Request) -> Response:
        fid = request.path_params["file_id"]
        qp = request.query_params
        width = _number(qp.get("w"), "w", int, 16, MAX_WIDTH) or 1200
        height = _number(qp.get("h"), "h", int, 8, MAX_HEIGHT) or 96
        start = _number(qp.get("start"), "start", float, 0, 1e9)
        end = _number(qp.get("end"), "end", float, 0, 1e9)
        data = await run_in_threadpool(files.waveform_png, fid, width, height, start, end)
        return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    async def reveal(request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
            return error(403, "reveal is only accepted from the page itself")
        row = await run_in_threadpool(files.row, request.path_params["file_id"])
        folder = str(Path(row.path).parent)
        if not loopback:
            return error(403, "reveal in folder only works when the server listens on 127.0.0.1",
                         path=row.path, folder=folder)
        opened = await run_in_threadpool(opener or files.reveal, row.path)
        return JSONResponse({"path": row.path, "folder": folder, "opened": bool(opened)})

    async def tags(request: Request) -> Response:
        labels = await run_in_threadpool(files.tag_counts)
        if labels is None:
            return error(404, "this index has no tags yet (see 'sfx-search tag')")
        return JSONResponse({"tags": labels})

    async def on_bad_request(request: Request, exc: BadRequest) -> Response:
        return error(exc.status, str(exc))

    async def on_http(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, exc.detail or "error")

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        return error(500, "internal error (see the server's log)")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if server_file is not None:
            server_file.write()
        try:
            yield
        finally:
            if server_file is not None:
                server_file.remove()

    routes = [
        Route("/", page),
        Route("/api/search", search, methods=["GET", "POST"]),
        Route("/api/similar", similar, methods=["GET", "POST"]),
        Route("/api/tags", tags),
        Route("/api/files/{file_id:int}", file_info),
        Route("/api/files/{file_id:int}/audio", audio, methods=["GET", "HEAD"]),
        Route("/api/files/{file_id:int}/waveform", waveform),
        Route("/api/files/{file_id:int}/reveal", reveal, methods=["POST"]),
        *writeback_routes.routes(library, files, index_dir=index_dir, loopback=loopback, allow_write=allow_write, lock=lock),
        *hygiene_routes(library, locked),
        *spectrogram.routes(files, index_dir),
        Mount("/static", StaticFiles(directory=str(WEB / "static")), name="static"),
    ]
    routes[-1:-1] = extra_routes(library, files, locked, loopback)
    middleware = [Middleware(LimitsMiddleware)]
    if loopback or allowed_hosts:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOOPBACK_HOSTS))
    app = Starlette(
        routes=routes, middleware=middleware,
        exception_handlers={BadRequest: on_bad_request, HTTPException: on_http, Exception: on_crash},
        lifespan=lifespan, max_body_size=MAX_BODY,
    )
    app.state.library = library
    app.state.files = files
    return app


def extra_routes(library, files, locked, loopback: bool) -> list[Route]:
    """Routes that live in modules of their own (feedback, collections, labels)."""
    from .collection_routes import collection_routes
    from .feedback_routes import feedback_routes
    from .label_routes import label_routes

    return (feedback_routes(library, files, locked) + label_routes(library, files, locked)
            + collection_routes(library, files, locked, loopback))


class LimitsMiddleware:
    """Absurd requests get a 4xx before any handler runs: huge query strings or bodies."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            if len(scope.get("query_string", b"")) > MAX_QUERY_STRING or len(scope.get("path", "")) > 2048:
                await error(414, "request URI too long")(scope, receive, send)
                return
            for k, v in scope.get("headers", []):
                if k == b"content-length" and (not v.isdigit() or int(v) > MAX_BODY):
                    await error(413, f"request body over {MAX_BODY} bytes")(scope, receive, send)
                    return
        await self.app(scope, receive, send)

"""The page's relevance-feedback route (docs/feedback.md):

    POST /api/refine  {q?, not?, n, like: [{file_id, start?}], unlike: [...], filters}

Examples are catalog files (by id, never by path) or moments of them; the answer has the
rows of /api/search, ranked by `search.feedback.refine` from the stored vectors.
"""

from __future__ import annotations

import math

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from indexer.config import UserError

from ..feedback import MAX_EXAMPLES, Example, refine
from ..query import MAX_QUERY_CHARS


def parse_examples(value, name: str, files) -> list[Example]:
    """[{file_id, start?}] -> Examples; a 400 (BadRequest) or 404 for anything else."""
    from .app import BadRequest

    if value in (None, ""):
        return []
    if not isinstance(value, list) or len(value) > MAX_EXAMPLES:
        raise BadRequest(f"{name} must be a list of at most {MAX_EXAMPLES} {{file_id, start}} objects")
    out = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            item = {"file_id": item}
        if not isinstance(item, dict):
            raise BadRequest(f"each of {name} must be an object {{file_id, start}}")
        fid, start = item.get("file_id"), item.get("start")
        if not isinstance(fid, int) or isinstance(fid, bool) or not 1 <= fid < 2**62:
            raise BadRequest(f"{name}: file_id must be a catalog file id")
        if start is not None and (not isinstance(start, (int, float)) or isinstance(start, bool)
                                  or not math.isfinite(start) or not 0 <= start < 1e9):
            raise BadRequest(f"{name}: start must be a number of seconds (0 or more)")
        files.row(fid)  # 404 for ids the catalog does not hold
        out.append(Example(file_id=fid, start_s=None if start is None else float(start)))
    return out


def feedback_routes(library, files, locked) -> list[Route]:
    """Routes for create_app; `locked(fn, ...)` runs a Library call under the app's lock."""
    from .app import BadRequest, error, parse_filters, request_params

    async def refine_route(request: Request) -> Response:
        p = await request_params(request)
        q = p.get("q")
        if q is not None and (not isinstance(q, str) or len(q) > MAX_QUERY_CHARS):
            raise BadRequest(f"q must be a description under {MAX_QUERY_CHARS} characters")
        not_text = p.get("not")
        if not_text is not None and (not isinstance(not_text, str) or len(not_text) > MAX_QUERY_CHARS):
            raise BadRequest(f"not must be a description under {MAX_QUERY_CHARS} characters")
        n = p.get("n", 20)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 500:
            raise BadRequest("n must be an integer between 1 and 500")
        like = await run_in_threadpool(parse_examples, p.get("like"), "like", files)
        unlike = await run_in_threadpool(parse_examples, p.get("unlike"), "unlike", files)
        filters = parse_filters(p.get("filters") or {})
        try:
            results = await run_in_threadpool(
                locked, refine, library, (q or "").strip() or None, n, like=like, unlike=unlike,
                not_text=(not_text or "").strip() or None, filters=filters,
            )
        except UserError as exc:
            return error(400, str(exc))
        rows = await run_in_threadpool(files.describe_results, results)
        return JSONResponse({"results": rows})

    return [Route("/api/refine", refine_route, methods=["POST"])]

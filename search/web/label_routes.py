"""The page's label mode (labels by confirmation, docs/labels.md):

    POST /api/label/round   {label | cat_id, k?}                answers so far, figures, next candidates
    POST /api/label/answer  {label | cat_id, file_id, yes, k?}  store a yes/no, then the next round
    POST /api/label/save    {label | cat_id, name?}             save the head for `tag --head NAME`
    GET  /api/label/ucs                                         UCS CatIDs to pick from

Answers are user decisions in the catalog (as `tag review` stores them); nothing is kept in
the server between requests but the file vectors, read once per catalog generation.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from indexer.config import UserError

from ..tagging.active import (
    FileVectorCache, candidate_results, label_named, label_round, record_answer, resolve_label, train_from_decisions,
)
from ..tagging.labels import ucs_labels

MAX_K = 50


def label_routes(library, files, locked) -> list[Route]:
    from .app import BadRequest, error, request_params

    cache = FileVectorCache()

    def parse_label(p: dict):
        name, cat = p.get("label"), p.get("cat_id")
        for v, what in ((name, "label"), (cat, "cat_id")):
            if v is not None and not isinstance(v, str):
                raise BadRequest(f"{what} must be a string")
        try:
            return resolve_label(cat_id=cat) if cat else label_named(name or "")
        except UserError as exc:
            raise BadRequest(str(exc)) from None

    def parse_k(p: dict) -> int:
        k = p.get("k", 10)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise BadRequest(f"k must be an integer between 1 and {MAX_K}")
        return k

    def round_json(label, k: int) -> dict:
        rnd = label_round(library, label, k=k, cache=cache)
        rows = files.describe_results(candidate_results(library.catalog, rnd.candidates))
        for row, c in zip(rows, rnd.candidates):
            row.update(why=c.why, p=c.p)
        return {**rnd.as_json(), "candidates": rows}

    async def answer_round(fn, *args) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(locked, fn, *args))
        except UserError as exc:
            return error(400, str(exc))

    async def round_route(request: Request) -> Response:
        p = await request_params(request)
        return await answer_round(round_json, parse_label(p), parse_k(p))

    async def answer_route(request: Request) -> Response:
        p = await request_params(request)
        label, k = parse_label(p), parse_k(p)
        fid, yes = p.get("file_id"), p.get("yes")
        if not isinstance(fid, int) or isinstance(fid, bool):
            raise BadRequest("file_id must be a catalog file id")
        if not isinstance(yes, bool):
            raise BadRequest("yes must be true or false")
        await run_in_threadpool(files.row, fid)  # 404 for unknown ids

        def answer_then_round():
            record_answer(library.catalog, label, fid, yes)
            return round_json(label, k)

        return await answer_round(answer_then_round)

    async def save_route(request: Request) -> Response:
        p = await request_params(request)
        label = parse_label(p)
        name = p.get("name") or label.name
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            raise BadRequest("name must be a head name under 128 characters")
        return await answer_round(lambda: train_from_decisions(library, label, name=name.strip(), cache=cache))

    async def ucs_route(request: Request) -> Response:
        return JSONResponse({"ucs": [{"cat_id": lab.cat_id, "name": lab.name, "text": lab.text}
                                     for lab in ucs_labels()]})

    return [
        Route("/api/label/round", round_route, methods=["POST"]),
        Route("/api/label/answer", answer_route, methods=["POST"]),
        Route("/api/label/save", save_route, methods=["POST"]),
        Route("/api/label/ucs", ucs_route),
    ]

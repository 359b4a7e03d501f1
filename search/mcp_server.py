"""`sfx-search mcp`: the library's search for AI assistants, over the Model Context Protocol.

An assistant in an editor or a DAW (any MCP client) starts `sfx-search mcp` and talks to it
over stdin/stdout with the official `mcp` Python SDK. The tools are thin wrappers over the
same `search.Library` the CLI and the web page use, opened once (the text model loads on the
first query and stays warm):

    search        a description -> ranked files with the matching moment
    similar       a file (of the library or not), or one moment of it -> files that sound like it
    file_details  one file: format, duration, metadata (BWF, iXML, UCS...), tags, windows
    tags          the labels a library was tagged with, or the files of one label

Only reads: nothing here writes to the library or the index. Domain errors reach the
assistant as one line (an MCP tool error), never a traceback. Needs `pip install mcp`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from indexer.config import UserError

from .filters import Filters

MAX_N = 200


def create_server(open_library: Callable[[], Any]):
    """An MCPServer whose tools search the library `open_library()` returns (opened on first use)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer(
        name="sfx-index",
        instructions=(
            "Search a sound-effects library by description (CLAP audio embeddings plus file names and "
            "metadata). Results carry the absolute path and the moment (offset_s..end_s) that matches; "
            "use file_details for one file's metadata and tags, similar to find sounds like a file."
        ),
    )
    state: dict[str, Any] = {}
    lock = threading.Lock()  # one Library, one query at a time (the catalog and models are shared)

    def call(fn):
        with lock:
            if "lib" not in state:
                try:
                    state["lib"] = open_library()
                except UserError as exc:
                    raise ToolError(str(exc)) from None
            try:
                return fn(state["lib"])
            except UserError as exc:
                raise ToolError(str(exc)) from None

    @server.tool()
    def search(query: str, n: int = 10, mode: str = "hybrid", not_text: str | None = None,
               under: str | None = None, ext: list[str] | None = None, min_duration: float | None = None,
               max_duration: float | None = None, tag: list[str] | None = None) -> dict[str, Any]:
        """Find sounds by description, e.g. "metal scraping in a stone room".

        mode: hybrid (sound and words, the default), semantic (sound only) or keyword (names and
        metadata only). not_text: a description to steer away from. under: only files below this
        folder; ext: only these extensions (["wav", "flac"]); min/max_duration in seconds; tag: only
        files with one of these tags. Returns {"results": [...]}, best first, each with path, score,
        offset_s and end_s (the matching moment), duration_s, format, description, ucs and tags.
        """
        filters = Filters(under=under, ext=tuple(ext or ()), min_duration=min_duration, max_duration=max_duration,
                          tag=tuple(tag or ()))
        rows = call(lambda lib: lib.search(query, n=_n(n), filters=filters, mode=mode, not_text=not_text))
        return {"results": [r.as_json() for r in rows]}

    @server.tool()
    def similar(path: str | None = None, file_id: int | None = None, start_s: float | None = None,
                n: int = 10, include_self: bool = False) -> dict[str, Any]:
        """Find sounds like a file: give its absolute path (in the library or not) or its file_id from a
        result. start_s: match the 10 s window at this moment instead of the whole file.
        include_self: also list the file itself (left out by default, as sfx-search similar does).
        Returns {"results": [...]} like search."""
        if path is None and file_id is None:
            raise ToolError("give path (an audio file) or file_id (from a search result)")
        rows = call(lambda lib: lib.similar(path, file_id=file_id, start_s=start_s, n=_n(n), include_self=include_self))
        return {"results": [r.as_json() for r in rows]}

    @server.tool()
    def file_details(path: str | None = None, file_id: int | None = None) -> dict[str, Any]:
        """One indexed file: path, size, duration, format, its metadata (BWF bext, iXML, INFO, tags,
        UCS fields), its tags and its 10 s windows. Give path or file_id (from a result)."""
        if path is None and file_id is None:
            raise ToolError("give path or file_id (from a search result)")
        return call(lambda lib: details(lib.catalog, path=path, file_id=file_id))

    @server.tool()
    def tags(label: str | None = None, n: int = 50) -> dict[str, Any]:
        """Without label: the labels the library was tagged with and how many files carry each.
        With a label (or a UCS CatID such as DOORWood): the files tagged with it, best score first."""
        def run(lib):
            cat = lib.catalog
            if label is None:
                return {"labels": [{"label": lab, "cat_id": cid, "files": k} for lab, cid, k in cat.label_counts()[:_n(n)]]}
            rows = cat.tagged_files(label, limit=_n(n), include_rejected=False)
            return {"label": label, "files": [
                {"path": r.path, "file_id": r.file_id, "score": r.score, "cat_id": r.cat_id, "set": r.set_name}
                for r in rows]}
        return call(run)

    return server


def _n(n: int) -> int:
    return max(1, min(int(n), MAX_N))


def details(catalog, *, path: str | None = None, file_id: int | None = None) -> dict[str, Any]:
    """What the catalog knows of one file (the MCP tool and tests use it)."""
    row = catalog.files_by_ids([int(file_id)]).get(int(file_id)) if file_id is not None else None
    if row is None and path is not None:
        row = catalog.file_by_path(str(Path(path).expanduser()))
    if row is None:
        raise UserError(f"'{path if path is not None else file_id}' is not in the index; search for it first")
    chunks, _ = catalog.chunks_for(row.id)
    return {
        "file_id": row.id, "path": row.path, "size": row.size, "duration_s": row.duration_s,
        "sample_rate": row.sample_rate, "channels": row.channels, "subtype": row.subtype,
        "container": row.container, "status": row.status, "error": row.error,
        "metadata": catalog.metadata_for([row.id]).get(row.id, {}),
        "tags": catalog.tags_for([row.id]).get(row.id, []),
        "windows": [{"start_s": c.start_s, "end_s": c.end_s} for c in chunks],
    }


def serve_stdio(open_library: Callable[[], Any]) -> None:
    """Run the server on stdin/stdout until the client closes them."""
    create_server(open_library).run("stdio")

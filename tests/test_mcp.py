"""`sfx-search mcp`: the library's tools as an MCP client sees them (the SDK's own client, in-process)."""

from __future__ import annotations

import json

import anyio
import pytest
from click.testing import CliRunner

pytest.importorskip("mcp")

from mcp import Client  # noqa: E402

from search import Library  # noqa: E402
from search.mcp_server import create_server  # noqa: E402


@pytest.fixture
def built(library, tmp_path, tiny_clap):
    from indexer.cli import main as index_cli

    root, files = library
    index = tmp_path / "idx"
    r = CliRunner().invoke(index_cli, ["build", str(root), "--index", str(index), "--model", str(tiny_clap)])
    assert r.exit_code == 0, r.output
    return index, files


def _run(server, calls):
    """[(tool, args)] -> [CallToolResult], plus the tool names, over one client session."""
    async def go():
        async with Client(server) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            return names, [await client.call_tool(name, args) for name, args in calls]
    return anyio.run(go)


def test_tools_answer_like_the_library(built, tiny_clap):
    index, files = built
    opened = []

    def open_library():
        opened.append(1)
        return Library.open(index, model=str(tiny_clap))

    server = create_server(open_library)
    with Library.open(index, model=str(tiny_clap)) as lib:
        want = [r.path for r in lib.search("rain", n=3, mode="semantic")]
        fid = lib.catalog.file_by_path(files["sweep"]).id

    names, (search, similar, details, by_id, missing, empty, tags) = _run(server, [
        ("search", {"query": "rain", "n": 3, "mode": "semantic"}),
        ("similar", {"path": str(files["sweep"]), "n": 2, "include_self": True}),
        ("file_details", {"path": str(files["sweep"])}),
        ("file_details", {"file_id": fid}),
        ("file_details", {"path": "/nowhere/x.wav"}),
        ("search", {"query": "   "}),
        ("tags", {}),
    ])
    assert names == {"search", "similar", "file_details", "tags"}
    assert [r["path"] for r in search.structured_content["results"]] == want
    assert not search.is_error
    assert similar.structured_content["results"][0]["path"] == str(files["sweep"])
    d = details.structured_content
    assert d["path"] == str(files["sweep"]) and d["channels"] == 2 and d["sample_rate"] == 48000
    assert d["metadata"].get("ucs.cat_id") == "DOORWood" and d["windows"][0]["start_s"] == 0.0
    assert by_id.structured_content == d
    assert missing.is_error and "is not in the index" in missing.content[0].text
    assert empty.is_error and "give a description" in empty.content[0].text
    assert tags.structured_content == {"labels": []}
    assert len(opened) == 1  # one Library for the whole session
    # the text content mirrors the structured one, for clients that read only text
    assert json.loads(search.content[0].text)["results"][0]["path"] == want[0]


def test_tags_tool_lists_labels_and_their_files(built, tiny_clap):
    index, files = built
    from search.cli import main as search_cli

    r = CliRunner().invoke(search_cli, ["tag", "--labels", "rain,door creak,tone", "--name", "mine", "--exclusive",
                                        "--top-k", "1", "--index", str(index), "--model", str(tiny_clap)])
    assert r.exit_code == 0, r.output
    server = create_server(lambda: Library.open(index, model=str(tiny_clap)))
    _, (labels,) = _run(server, [("tags", {})])
    counts = {row["label"]: row["files"] for row in labels.structured_content["labels"]}
    assert sum(counts.values()) == len(files) and set(counts) <= {"rain", "door creak", "tone"}  # one each
    top = max(counts, key=counts.get)
    _, (one,) = _run(server, [("tags", {"label": top, "n": 10})])
    with Library.open(index, model=str(tiny_clap)) as lib:
        want = [(t.path, t.score) for t in lib.catalog.tagged_files(top, include_rejected=False)]
    assert [(f["path"], f["score"]) for f in one.structured_content["files"]] == want and len(want) == counts[top]


@pytest.mark.slow
def test_sfx_search_mcp_over_stdio(built, tiny_clap):
    """The command an assistant starts: nothing but the protocol on stdout (no progress, no logs)."""
    import os
    import sys

    from mcp import StdioServerParameters

    index, files = built
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    params = StdioServerParameters(command=sys.executable, env=env,
                                   args=["-m", "search.cli", "mcp", "--index", str(index), "--model", str(tiny_clap)])
    _, (res,) = _run(params, [("similar", {"path": str(files["long"]), "n": 1, "include_self": True})])
    assert not res.is_error and res.structured_content["results"][0]["path"] == str(files["long"])

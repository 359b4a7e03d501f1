"""`sfx-search mcp`: start the MCP server (search.mcp_server) on stdin/stdout for an assistant."""

from __future__ import annotations

import click

from indexer.options import index_options, model_options, settings_from, user_errors


@click.command("mcp", context_settings={"help_option_names": ["-h", "--help"]})
@index_options
@model_options
@user_errors
def mcp_command(index_dir, db_url, model, device, precision):
    """Serve this library's search to AI assistants (MCP over stdio).

    An MCP client (an editor, a DAW assistant, Claude Desktop...) starts this command and
    calls its tools: search, similar, file_details and tags. It only reads the index.
    Needs the mcp package: pip install 'sfx-index[mcp]'.

    \b
    Examples:
      sfx-search mcp --index /Volumes/SFX/.sfx-index     what an MCP client starts
    \b
    In a client's configuration (JSON):
      {"mcpServers": {"sfx": {"command": "sfx-search",
                              "args": ["mcp", "--index", "/Volumes/SFX/.sfx-index"]}}}
    """
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise click.ClickException("the MCP server needs the mcp package: pip install 'sfx-index[mcp]'") from None
    from . import Library
    from .mcp_server import serve_stdio

    settings = settings_from(index_dir, db_url, model, device, precision)
    serve_stdio(lambda: Library.from_settings(settings))

"""`sfx-search serve`: the audition page on a local port, the model loaded once."""

from __future__ import annotations

import sys
import threading
import time

import click

from indexer.options import index_options, model_options, settings_from, user_errors


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback exposes your library to the network.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 picks a free one; server.json in the index says which).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
@click.option("--allow-write", is_flag=True,
              help="Let the page write metadata into files when listening beyond 127.0.0.1 (always on for loopback).")
@index_options
@model_options
@user_errors
def serve(host, port, open_browser, allow_write, index_dir, db_url, model, device, precision):
    """Search, listen and pick in a local web page (and answer sfx-search queries warm).

    The model loads once at start, so every query after that is quick; while the server
    runs, `sfx-search "..."` on the same index hands its query over instead of loading
    torch. Stop it with Ctrl-C.

    \b
    Examples:
      sfx-search serve --open
      sfx-search serve --index ~/SFX/.index --port 9000
      curl 'http://127.0.0.1:8765/api/search?q=door+creak&n=5'
    """
    from .server import is_loopback

    settings = settings_from(index_dir, db_url, model, device, precision)
    loopback = is_loopback(host)
    if not loopback:
        click.echo(
            f"warning: listening on {host}: anyone who can reach this machine can search the index and "
            "download its audio; reveal-in-folder is off. Use --host 127.0.0.1 to keep it private.",
            err=True,
        )
    t0 = time.perf_counter()
    try:
        run(settings, host, port, open_browser, loopback, t0, allow_write)
    except KeyboardInterrupt:
        # Ctrl-C is how a server is stopped (uvicorn shuts down, then re-raises the signal),
        # also while the model loads: not an abort.
        pass
    click.echo("sfx-search serve: stopped", err=True)
    sys.stderr.flush()


def run(settings, host: str, port: int, open_browser: bool, loopback: bool, t0: float,
        allow_write: bool = False) -> None:
    """Load the index and the model, bind, serve until stopped; the hand-off file lives meanwhile."""
    from ..query import Library
    from .app import create_app
    from .server import ServerFile, bind, make_server, url_for

    library = Library.from_settings(settings)
    try:
        # On a shared PostgreSQL catalog several servers (a team) read one index: no hand-off
        # file, since the CLI hand-off is for one person's local index.
        team = bool(settings.db_url)
        if not team:
            ServerFile(settings.index_dir, host, port).check_free()
        sock = bind(host, port)  # before the model: a busy port should fail fast
        port = sock.getsockname()[1]
        click.echo(f"loading {library.model} ...", err=True)
        # The catalog's integrity check (which the text-vector cache waits for before its first
        # write) starts now, beside the model load: started by the first new query instead, it
        # took one of two cores from the queries that followed for many seconds on a large catalog.
        library.catalog.verify_in_background()
        library.index.keep_warm = True  # map the re-ranking copy's pages beside the model load
        library.catalog.keep_keywords_in_memory()  # plain keyword queries ranked in memory, built now
        try:
            library.encoder("text")  # load the text tower now so that the first query is warm
            library.index.vectors()  # and the vector index
        except BaseException:
            sock.close()
            raise
        server_file = None if team else ServerFile(settings.index_dir, host, port)
        app = create_app(library, index_dir=settings.index_dir, loopback=loopback,
                         allowed_hosts=None if loopback else ["*"], server_file=server_file,
                         allow_write=allow_write)
        url = url_for(host, port)
        click.echo(f"sfx-search serve: {url}  (index {settings.index_dir}, ready in "
                   f"{time.perf_counter() - t0:.1f} s; Ctrl-C to stop)", err=True)
        if open_browser:
            threading.Timer(0.5, open_page, args=(url,)).start()
        try:
            make_server(app, sock).run(sockets=[sock])
        finally:
            if server_file is not None:
                server_file.remove()
            sock.close()
    finally:
        library.close()


def open_page(url: str) -> bool:
    """Open the page in the default browser; say so when this machine has none (a server, SSH)."""
    import webbrowser

    try:
        opened = webbrowser.open(url)
    except Exception:  # webbrowser raises on some broken $BROWSER settings
        opened = False
    if not opened:
        click.echo(f"--open: no web browser found on this machine; open {url} in a browser yourself", err=True)
    return bool(opened)

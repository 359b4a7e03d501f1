"""sfx-search: the command line of the read path. `sfx-search "TEXT"` runs the query command.

Parses, calls `search.Library`, reports: a table for people, --json / --paths / --m3u for
other programs. When an audition server runs on the same index, a text query is handed to it
(no torch import, a warm model) and the answer printed the same way.
"""

from __future__ import annotations

import json
import os
import re
import sys

import click

from indexer import __version__
from indexer.config import UserError
from indexer.filterspec import FILTERS
from indexer.options import CONTEXT, index_options, model_options, settings_from, user_errors

from . import render
from .filters import Filters
from .hygiene_cli import collapse_option
from .results import NoMatches

VERBOSE = re.compile(r"-v+|--verbose")


class DefaultGroup(click.Group):
    """A group whose first argument, when it is not a command name, is the query text."""

    default_command = "query"

    def parse_args(self, ctx, args):
        # -v/--verbose belongs to the group wherever it is written (`sfx-search rain -v`).
        cut = args.index("--") if "--" in args else len(args)
        verbose = [a for a in args[:cut] if VERBOSE.fullmatch(a)]
        args = [a for a in args[:cut] if not VERBOSE.fullmatch(a)] + args[cut:]
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", "--version"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, [*verbose, *args])


def _click_type(spec):
    if spec.kind == "path":
        return click.Path(file_okay=False)
    if spec.kind == "int":
        return click.IntRange(spec.lo, spec.hi)
    if spec.kind == "float":
        return click.FloatRange(spec.lo, spec.hi)
    return None  # text


def filter_options(f):
    """One option per filter of the declaration (indexer/filterspec.py), in its order."""
    for spec in reversed(FILTERS):
        if spec.kind == "flag":  # unset is None, as for every other filter
            f = click.option(spec.option, spec.name, is_flag=True, default=None, help=spec.help,
                             callback=lambda ctx, param, value: True if value else None)(f)
            continue
        f = click.option(spec.option, spec.name, multiple=spec.multiple, type=_click_type(spec),
                         metavar=spec.metavar, help=spec.help)(f)
    return f


def output_options(f):
    opts = [
        click.option("--play", "play", type=int, is_flag=False, flag_value=1, default=None, metavar="[N]",
                     help="Play result N (default 1) from its offset."),
        click.option("--m3u", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
                     help="Also write the results as an M3U playlist that starts at each offset."),
        click.option("--paths", "as_paths", is_flag=True, help="One path per line, for piping."),
        click.option("--json", "as_json", is_flag=True, help="JSON rows: path, score, offset_s, end_s, duration_s, rank..."),
        click.option("-n", "n", default=20, show_default=True, type=click.IntRange(1, 10000), help="How many files."),
    ]
    for o in opts:
        f = o(f)
    return f


def feedback_options(f):
    opts = [
        click.option("--unlike", multiple=True, metavar="FILE[@S]",
                     help="Not this: push away sounds like FILE, or its moment at S seconds (repeatable)."),
        click.option("--like", multiple=True, metavar="FILE[@S]",
                     help="More like this: a library file, a moment of one, or any audio file (repeatable)."),
    ]
    for o in opts:
        f = o(f)
    return f


def quick_exit() -> None:
    """End the `sfx-search` process now that its answer is written, without the interpreter's
    teardown (OpenVINO's compiled text tower, FAISS and the imported modules take a tenth of a
    second or more to tear down; docs/runtime.md). Only where this process is the command
    itself: called from Python (tests, scripts, `click.testing`) it returns and nothing ends."""
    main_module = sys.modules.get("__main__")
    spec = getattr(main_module, "__spec__", None)
    command = os.path.basename(getattr(main_module, "__file__", None) or "").removesuffix(".exe")
    if command != "sfx-search" and getattr(spec, "name", None) != "search.cli":
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


def emit(results, *, as_json, as_paths, m3u, play, empty_hint="no results") -> None:
    if m3u:
        render.write_m3u(m3u, results)
        click.echo(f"wrote {len(results)} entries to {m3u}", err=True)
    # A result on a drive that is not mounted (its root folder is missing) is marked, not hidden.
    gone = {r.path for r in results if not os.path.exists(r.path)}
    if as_json:
        click.echo(json.dumps([{**r.as_json(), "on_disk": r.path not in gone} for r in results], indent=2))
    elif as_paths:
        for r in results:
            click.echo(os.fsencode(r.path) + b"\n", nl=False)  # the exact bytes of the name, for piping
    elif results:
        click.echo(render.table(results, missing=gone))
    if gone:
        click.echo(f"note: {len(gone)} of these files are not on disk (an unmounted drive or a moved root?); "
                   "see 'sfx-index status'", err=True)
    if not results:
        click.echo(empty_hint, err=True)  # in every output mode: an empty answer exits 0, says why
    if play is not None:
        if not 1 <= play <= len(results):
            raise UserError(f"--play {play}: there are only {len(results)} results")
        from .playback import play_result

        play_result(results[play - 1])


@click.group(cls=DefaultGroup, context_settings=CONTEXT, invoke_without_command=False)
@click.version_option(__version__, "--version", prog_name="sfx-search")
@click.option("-v", "--verbose", count=True, help="More diagnostics on stderr.")
def main(verbose: int) -> None:
    """Search an sfx-index library by description, by example, or by tag.

    \b
    Examples:
      sfx-search "metal scraping in stone room"
      sfx-search "distant thunder" -n 5 --json
      sfx-search "footsteps on gravel" --not "music" --max-duration 30
      sfx-search similar ~/SFX/door_creak.wav --start 4.5
      sfx-search "rain" --like rain_03.wav --unlike rain_09.wav
      sfx-search serve
    """
    import logging

    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@main.command()
@click.argument("text", nargs=-1, required=True)
@output_options
@click.option("--mode", type=click.Choice(["hybrid", "semantic", "keyword"]), default="hybrid", show_default=True,
              help="semantic: CLAP only (score = cosine); keyword: names, descriptions, folders only (score = "
                   "BM25 relevance, higher is better, comparable within one query); hybrid: both, fused (score "
                   "1 = ranked first by both halves; the 'found' column says which half found a file).")
@click.option("--not", "not_text", metavar="TEXT", help="Push away results that sound like TEXT.")
@collapse_option
@feedback_options
@filter_options
@index_options
@model_options
@user_errors
def query(text, n, as_json, as_paths, m3u, play, mode, not_text, collapse_copies, like, unlike, index_dir, db_url,
          model, device, precision, **filter_values):
    """Find the clips, and the moment in each, that sound like TEXT.

    Keywords match names split as they are written (SabianHatSemiOpen -> sabian hat semi
    open, DOORWood -> door wood, Explosion01 -> explosion 01), stemmed (explosions =
    explosion), with UCS synonyms of CatIDs (kerboom -> AIRBrst); a word in a name counts
    more than one in a description, and that more than one in a folder. Soundminer syntax:
    space = AND, comma = OR, -word = NOT, "a phrase", word* = prefix. Plain text ranks by
    how well its words match (stop words such as "a", "on" are left out).

    \b
    Examples:
      sfx-search "metal scraping in stone room"
      sfx-search query "rain on a tin roof" --under ~/SFX/Weather --ext wav
      sfx-search "door slam" --paths | head -3
      sfx-search "rain" --like a.wav --like b.wav@12.5 --unlike c.wav
      sfx-search 'door -metal, gate' --mode keyword
      sfx-search '"car door" slam*' --mode keyword
    """
    text = " ".join(text)
    settings = settings_from(index_dir, db_url, model, device, precision)
    filters = Filters.from_options(filter_values)
    if like or unlike:
        # Marks re-rank by sound (docs/feedback.md): the stored vectors, in this process.
        from .feedback import parse_example, refine
        from .query import Library

        with Library.from_settings(settings) as lib:
            results = refine(lib, text, n, like=[parse_example(x) for x in like],
                             unlike=[parse_example(x) for x in unlike], not_text=not_text, filters=filters)
        emit(results, as_json=as_json, as_paths=as_paths, m3u=m3u, play=play)
        return
    params = dict(text=text, n=n, mode=mode, not_text=not_text, filters=filters, collapse_copies=collapse_copies)
    from .remote import try_remote_search

    hint = "no results: the index is empty or nothing matches; see 'sfx-index status'"
    try:
        results = try_remote_search(settings, params)
        if results is None:
            if mode != "keyword":
                from indexer.runtime.prefetch import start_text_tower, wait_for_imports

                # The text tower loads, and embeds the query's texts, on a thread while the
                # catalog's imports run (a cold start; docs/runtime.md): the texts exactly as
                # Library.search embeds them (the description stripped, --not as given).
                if start_text_tower(settings.model, settings.device, settings.precision,
                                    texts=tuple(t for t in ((text or "").strip(), not_text) if t)):
                    wait_for_imports(timeout=1.0)
            from .query import Library

            with Library.from_settings(settings) as lib:
                results = lib.search(text, n, filters=filters, mode=mode, not_text=not_text,
                                     collapse_copies=collapse_copies)
    except NoMatches as exc:
        results, hint = [], str(exc)
    emit(results, as_json=as_json, as_paths=as_paths, m3u=m3u, play=play, empty_hint=hint)
    quick_exit()


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE[@S]...")
@click.option("--start", type=float, metavar="S", help="Like the moment at S seconds of a single FILE.")
@click.option("--unlike", multiple=True, metavar="FILE[@S]", help="Push away sounds like this (repeatable).")
@click.option("--include-self", is_flag=True, help="Also list FILE itself (and identical copies of it).")
@output_options
@filter_options
@index_options
@model_options
@user_errors
def similar(files, start, unlike, include_self, n, as_json, as_paths, m3u, play, index_dir, db_url, model, device,
            precision, **filter_values):
    """Find sounds like FILE (in the library or not), the moment at --start or FILE@S, or
    like several files at once (the mean of their windows, docs/feedback.md).

    \b
    Examples:
      sfx-search similar ~/SFX/Impacts/metal_hit_03.wav
      sfx-search similar take12.wav --start 31.5 -n 10 --json
      sfx-search similar door_01.wav door_07.wav@3.5 --unlike door_09.wav
    """
    from .feedback import Example, parse_example, refine
    from .query import Library

    if start is not None and len(files) != 1:
        raise UserError("--start works with one FILE; give moments of several as FILE@SECONDS")
    settings = settings_from(index_dir, db_url, model, device, precision)
    filters = Filters.from_options(filter_values)
    like = [Example(path=files[0], start_s=start)] if start is not None else [parse_example(f) for f in files]
    hint = "no results: nothing else in the index; see 'sfx-index status'"
    try:
        with Library.from_settings(settings) as lib:
            if len(like) == 1 and not unlike:
                e = like[0]
                results = lib.similar(e.path, start_s=e.start_s, n=n, filters=filters, include_self=include_self)
            else:
                results = refine(lib, None, n, like=like, unlike=[parse_example(x) for x in unlike], filters=filters)
    except NoMatches as exc:
        results, hint = [], str(exc)
    emit(results, as_json=as_json, as_paths=as_paths, m3u=m3u, play=play, empty_hint=hint)


def _register_optional() -> None:
    """Subcommands that live in their own modules (tagging, serve) when those modules exist."""
    import importlib

    for mod, name in (("search.tag_cli", "tag"), ("search.web.cli", "serve"),
                      ("search.hygiene_cli", "duplicates"), ("search.hygiene_cli", "qc"),
                      ("search.collection_cli", "collection"), ("search.mcp_cli", "mcp_command")):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
            continue
        main.add_command(getattr(m, name))


_register_optional()

if __name__ == "__main__":
    main()

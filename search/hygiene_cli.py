"""`sfx-search duplicates` and `sfx-search qc`: near-duplicate groups and problem files.

Parses, calls `search.hygiene`, reports: a listing for people, --json / --csv for programs
(stdout), progress on stderr. Nothing here writes to the library.
"""

from __future__ import annotations

import csv
import json
import sys

import click

from indexer.options import index_options, settings_from, user_errors


collapse_option = click.option(
    "--collapse-copies", is_flag=True,
    help="Fold near-duplicates (another format, rate, level or trim of a listed file) into one row, '+N copies'.",
)


def _library(index_dir, db_url):
    from .query import Library

    return Library.from_settings(settings_from(index_dir, db_url))


def _file_ids(lib, root, under):
    if not (root or under):
        return None
    from .filters import Filters

    return Filters(root=root, under=under).file_ids(lib.catalog)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Groups as JSON: keep, why, copies with their difference.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Also write one row per file (group, role, path, format, difference) to FILE.")
@click.option("--root", type=click.Path(file_okay=False), metavar="ROOT", help="Only files of this library root.")
@click.option("--under", type=click.Path(file_okay=False), metavar="PATH", help="Only files under this folder.")
@index_options
@user_errors
def duplicates(as_json, csv_path, root, under, index_dir, db_url):
    """Groups of files that are the same sound in another format, rate, depth, layout, level or trim.

    Each group names the copy to keep and why, and how each other copy differs from it.
    Different takes of similar sounds are not grouped (docs/hygiene.md says how it decides).

    \b
    Examples:
      sfx-search duplicates
      sfx-search duplicates --under ~/SFX/Doors --json
      sfx-search duplicates --csv dups.csv
    """
    from tqdm import tqdm

    from .hygiene import duplicate_groups

    with _library(index_dir, db_url) as lib:
        ids = _file_ids(lib, root, under)

        shown = sys.stderr.isatty()

        def progress(pairs):
            return tqdm(pairs, desc="comparing", unit="pair", file=sys.stderr, disable=not shown)

        def stage(what):
            if shown:
                click.echo(f"{what}...", err=True)

        groups = duplicate_groups(lib.catalog, ids, progress=progress, stage=stage)
    if csv_path:
        with open(csv_path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["group", "role", "path", "format", "difference", "level_db", "offset_s"])
            for n, g in enumerate(groups, 1):
                w.writerow([n, "keep", g.keeper.path, g.keeper.describe_format(), g.why, "", ""])
                for c in g.copies:
                    w.writerow([n, "copy", c.file.path, c.file.describe_format(), c.difference,
                                f"{c.match.gain_db:.2f}", f"{c.match.offset_s():.3f}"])
        click.echo(f"wrote {len(groups)} groups to {csv_path}", err=True)
    if as_json:
        click.echo(json.dumps([g.as_json() for g in groups], indent=2))
        return
    if csv_path:
        return
    if not groups:
        click.echo("no near-duplicates found", err=True)
        return
    for n, g in enumerate(groups, 1):
        click.echo(f"{n}. keep {g.keeper.path}\n   ({g.why})")
        for c in g.copies:
            click.echo(f"   copy {c.file.path}: {c.difference}")
    copies = sum(len(g.copies) for g in groups)
    click.echo(f"{len(groups)} groups, {copies} copies", err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One object per problem file, with its measurements.")
@click.option("--root", type=click.Path(file_okay=False), metavar="ROOT", help="Only files of this library root.")
@click.option("--under", type=click.Path(file_okay=False), metavar="PATH", help="Only files under this folder.")
@index_options
@user_errors
def qc(as_json, root, under, index_dir, db_url):
    """List problem files, one line each: clipped, DC offset, digital silence, long silent tail.

    \b
    Examples:
      sfx-search qc
      sfx-search qc --json | jq '.[].path'
    """
    from .hygiene import qc_problems

    with _library(index_dir, db_url) as lib:
        found = qc_problems(lib.catalog, _file_ids(lib, root, under))
    if as_json:
        click.echo(json.dumps([p.as_json() for p in found], indent=2))
        return
    for p in found:
        click.echo(f"{p.path}\t{'; '.join(p.problems)}")
    click.echo(f"{len(found)} files with problems" if found else "no problem found in the measured files", err=True)

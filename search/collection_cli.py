"""`sfx-search collection`: named pulls of files or moments, kept in the index (search/collection.py).

Parses, calls `search.collection`, reports: rows (JSON with --json) on stdout, what was done
on stderr.
"""

from __future__ import annotations

import json

import click

from indexer.options import index_options, settings_from, user_errors
from indexer.config import UserError


def _catalog_call(index_dir, db_url, fn, *args, **kwargs):
    from .query import Library

    with Library.from_settings(settings_from(index_dir, db_url, None, "auto", "auto")) as lib:
        return fn(lib.catalog, *args, **kwargs)


@click.group()
def collection() -> None:
    """Named collections of files or moments: keep a pull, reorder it, hand it to a DAW.

    Collections live in the index and follow their files through rebuilds, moves and renames.

    \b
    Examples:
      sfx-search collection add "door pulls" ~/SFX/door_01.wav ~/SFX/take3.wav@12.5
      sfx-search collection show "door pulls"
      sfx-search collection export "door pulls" --wav-dir ~/Desktop/door-pulls
    """


@collection.command()
@click.argument("name")
@click.argument("items", nargs=-1, required=True, metavar="PATH[@SECONDS]...")
@index_options
@user_errors
def add(name, items, index_dir, db_url):
    """Add library files, or the 10 s from SECONDS in them, to NAME (made if new).

    \b
    Examples:
      sfx-search collection add rain ~/SFX/rain_tin_roof.wav
      sfx-search collection add "door pulls" take3.wav@12.5 take3.wav@31
    """
    from .collection import add as add_items, parse_item

    n = _catalog_call(index_dir, db_url, add_items, name, [parse_item(s) for s in items])
    click.echo(f"added {n} item{'s' if n != 1 else ''} to '{name}'", err=True)


@collection.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON rows: name, items.")
@index_options
@user_errors
def list_(as_json, index_dir, db_url):
    """List the collections with their item counts.

    \b
    Example:
      sfx-search collection list --json
    """
    rows = _catalog_call(index_dir, db_url, lambda cat: cat.collections())
    if as_json:
        click.echo(json.dumps([{"name": c.name, "items": c.items, "created_at": c.created_at} for c in rows], indent=2))
        return
    if not rows:
        click.echo("no collections yet; make one with: sfx-search collection add NAME FILE...", err=True)
    for c in rows:
        click.echo(f"{c.items:>5}  {c.name}")


@collection.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="JSON rows: position, path, start_s, end_s, status...")
@index_options
@user_errors
def show(name, as_json, index_dir, db_url):
    """The items of NAME in order, where their files are now (moved, or missing).

    \b
    Example:
      sfx-search collection show "door pulls"
    """
    from .collection import entries
    from .render import clock, shown

    rows = _catalog_call(index_dir, db_url, entries, name)
    if as_json:
        click.echo(json.dumps([e.as_json() for e in rows], indent=2))
        return
    for e in rows:
        at = f"{clock(e.start_s)}-{clock(e.end_s)}" if e.start_s is not None else "whole file"
        flag = {"ok": "", "moved": f"  (moved from {shown(e.item.path)})", "missing": "  (MISSING)"}[e.status]
        click.echo(f"{e.position:>4}  {at:<15}  {shown(e.path)}{flag}")


@collection.command()
@click.argument("name")
@click.argument("new_name")
@index_options
@user_errors
def rename(name, new_name, index_dir, db_url):
    """Rename collection NAME to NEW_NAME.

    \b
    Example:
      sfx-search collection rename "door pulls" "doors - final"
    """
    from .collection import rename as do_rename

    _catalog_call(index_dir, db_url, do_rename, name, new_name)
    click.echo(f"renamed '{name}' to '{new_name}'", err=True)


@collection.command()
@click.argument("name")
@click.argument("positions", nargs=-1, type=click.IntRange(1))
@index_options
@user_errors
def remove(name, positions, index_dir, db_url):
    """Remove items at POSITIONS from NAME, or the whole collection when none are given.

    Only the collection changes: the sound files are never touched.

    \b
    Examples:
      sfx-search collection remove "door pulls" 3 4
      sfx-search collection remove "old pull"
    """
    from .collection import remove as do_remove

    n = _catalog_call(index_dir, db_url, do_remove, name, positions)
    click.echo(f"removed {n} item{'s' if n != 1 else ''} from '{name}'" if positions
               else f"removed collection '{name}' ({n} items)", err=True)


@collection.command()
@click.argument("name")
@click.argument("position", type=click.IntRange(1))
@click.argument("to", type=click.IntRange(1))
@index_options
@user_errors
def move(name, position, to, index_dir, db_url):
    """Move the item at POSITION to TO, the others keeping their order.

    \b
    Example:
      sfx-search collection move "door pulls" 5 1
    """
    from .collection import move as do_move

    _catalog_call(index_dir, db_url, do_move, name, position, to)
    click.echo(f"moved item {position} of '{name}' to {to}", err=True)


@collection.command()
@click.argument("name")
@click.option("--m3u", type=click.Path(dir_okay=False), metavar="FILE", help="An M3U playlist with start offsets.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), metavar="FILE", help="A CSV of the items.")
@click.option("--wav-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="One WAV per item (its region), outside the library, with the source's channels and bit depth.")
@index_options
@user_errors
def export(name, m3u, csv_path, wav_dir, index_dir, db_url):
    """Export NAME as an M3U, a CSV, or a folder of region WAVs for a DAW or a colleague.

    \b
    Examples:
      sfx-search collection export "door pulls" --m3u pull.m3u
      sfx-search collection export "door pulls" --csv pull.csv
      sfx-search collection export "door pulls" --wav-dir ~/Desktop/door-pulls
    """
    from .collection import entries, export_csv, export_m3u, export_wav_dir

    if sum(bool(x) for x in (m3u, csv_path, wav_dir)) != 1:
        raise UserError("give one of --m3u FILE, --csv FILE, --wav-dir DIR")

    def run(cat):
        rows = entries(cat, name)
        missing = [e for e in rows if e.file is None]
        for e in missing:
            click.echo(f"missing (left out): {e.item.path}", err=True)
        if m3u:
            return f"wrote {export_m3u(rows, m3u)} entries to {m3u}"
        if csv_path:
            return f"wrote {export_csv(rows, csv_path)} rows to {csv_path}"
        return f"wrote {len(export_wav_dir(cat, rows, wav_dir))} WAV files to {wav_dir}"

    click.echo(_catalog_call(index_dir, db_url, run), err=True)

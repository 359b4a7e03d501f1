"""`sfx-index write-meta`, `rename-ucs` and `undo`: the commands that write into a library.

They print a preview (file, field, old, new; or old name -> new name) and change nothing
unless given --apply; `undo` restores what a change wrote. Registered into `sfx-index` by
`register(group)`. The logic lives in the rest of indexer/writeback; this module parses,
calls and reports.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from ..config import Settings, UserError
from ..options import index_options, settings_from, user_errors
from . import sources
from .catalog_sync import open_catalog_if_any, sync_renamed, sync_undo, sync_written
from .fields import expand_fields
from .journal import Journal
from .rename import apply_renames, plan_renames
from .writer import plan_file, write_files

JOURNAL_DIR = "writeback"
CELL = 48


def _options(f):
    """--json, and the shared --index / --db (indexer.options)."""
    f = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(f)
    return index_options(f)


def _settings(index_dir, db_url) -> Settings:
    return settings_from(index_dir, db_url)


def _journal(settings: Settings) -> Journal:
    return Journal(Path(settings.index_dir) / JOURNAL_DIR)


def _open_catalog(settings: Settings):
    from ..catalog import Catalog

    return Catalog.open(settings.catalog_url, create=False)


def _sync(settings: Settings, fn, items) -> None:
    """Let the catalog (if this index has one) follow the files just changed; never fails the write."""
    if not items:
        return
    cat = open_catalog_if_any(settings)
    if cat is None:
        return
    try:
        fn(cat, items)
    except Exception as e:  # noqa: BLE001 - the files are written; the next build catches up
        click.echo(f"warning: the catalog was not updated ({e}); run `sfx-index build` to catch up", err=True)
    finally:
        cat.close()


def _expand(paths: tuple[str, ...]) -> list[str]:
    """Files named, and the audio files under folders named (absolute, real paths)."""
    from ..scan import scan

    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            out.extend(os.path.realpath(s.path) for s in scan(p))
        elif os.path.exists(p):
            out.append(os.path.realpath(p))
        else:
            raise UserError(f"{p}: no such file or folder")
    return out


def _within(path: str, selected: list[str], folders: list[str]) -> bool:
    return path in selected or any(path.startswith(d.rstrip(os.sep) + os.sep) for d in folders)


def _cut(text: str) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= CELL else text[: CELL - 1] + "…"


def _show(path: str) -> str:
    try:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("..") else path
    except ValueError:
        return path


def _echo_table(rows: list[dict], cols: list[str]) -> None:
    if not rows:
        return
    cells = [[_cut(str(r.get(c, ""))) if c != "path" else _show(r["path"]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _progress(n: int, label: str):
    from tqdm import tqdm

    return tqdm(total=n, desc=label, unit="file", file=sys.stderr, disable=n < 20 or not sys.stderr.isatty())


@click.command("write-meta")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--from", "source", metavar="SOURCE",
              help="tags:SET (a tag set), review (accepted decisions), head:NAME (a trained head's tags), csv:FILE.")
@click.option("--set", "pairs", multiple=True, metavar="FIELD=VALUE", help="A value for every PATH (repeatable).")
@click.option("--fields", "fields_spec", metavar="LIST",
              help="Fields to write: ucs, fxname, description, keywords, notes or field names "
                   "[default: ucs,keywords from tags/review/head; all given from csv/--set].")
@click.option("--min-score", type=float, default=0.0, show_default=True, help="Lowest tag score taken from tags/head.")
@click.option("--apply", "apply_", is_flag=True, help="Write the files (without it: preview only).")
@_options
@user_errors
def write_meta(paths, source, pairs, fields_spec, min_score, apply_, index_dir, db_url, as_json):
    """Write UCS category, FX name, description, keywords and notes into the files.

    Preview by default; --apply writes atomically and journals every change (see `undo`).
    With no PATH: every indexed file that has a value to write.

    \b
    Examples:
      sfx-index write-meta --from tags:ucs --min-score 0.3
      sfx-index write-meta ~/SFX/Doors --from review --apply
      sfx-index write-meta take.wav --set cat_id=DOORWood --set description="Old door creak" --apply
      sfx-index write-meta --from csv:edits.csv --fields description,keywords --json
    """
    if bool(source) == bool(pairs):
        raise UserError("give either --from SOURCE or --set FIELD=VALUE")
    settings = _settings(index_dir, db_url)
    files = _expand(paths) if paths else []
    folders = [os.path.realpath(p) for p in paths if os.path.isdir(p)]
    if pairs:
        values = sources.from_set(pairs)
        if not paths:
            files = [os.path.join(root, rel) for _, root, rel in _open_catalog(settings).indexed_files()]
        per_file = {f: dict(values) for f in files}
        default_fields = None
    elif source.startswith("csv:"):
        per_file = sources.from_csv(source[4:])
        default_fields = None
    else:
        per_file = sources.from_catalog(_open_catalog(settings), source, min_score=min_score)
        default_fields = "ucs,keywords"
    if paths and not pairs:
        selected = set(files)
        per_file = {p: v for p, v in per_file.items() if _within(os.path.realpath(p), list(selected), folders)}
    wanted = set(expand_fields(fields_spec or default_fields))
    plans = []
    for path, values in sorted(per_file.items()):
        chosen = {k: v for k, v in values.items() if k in wanted}
        if chosen:
            plans.append(plan_file(path, chosen))
    rows = [r for p in plans for r in p.rows()]
    change = None
    if apply_:
        with _progress(len(plans), "writing") as bar:
            change, results = write_files(plans, _journal(settings), progress=bar.update)
        _sync(settings, sync_written, [r["path"] for r in results if r.get("status") == "written"])
        status = {r["path"]: r for r in results}
        for r in rows:
            res = status.get(r["path"], {})
            r["status"] = "written" if res.get("status") == "written" else res.get("status", r["status"])
            if res.get("reason"):
                r["reason"] = res["reason"]
    if as_json:
        click.echo(json.dumps({"change": change, "applied": bool(apply_), "rows": rows}, indent=2, ensure_ascii=False))
    else:
        _echo_table(rows, ["path", "field", "old", "new", "status"])
    n_files = len({r["path"] for r in rows if r["status"] != "skipped"})
    skipped = [r for r in rows if r["status"] == "skipped"]
    for r in skipped:
        click.echo(f"skipped {_show(r['path'])}: {r['reason']}", err=True)
    if apply_:
        written = len({r["path"] for r in rows if r["status"] == "written"})
        msg = f"wrote {written} files as change {change}; undo with `sfx-index undo {change}`" if change else "nothing to write"
    else:
        msg = f"{n_files} files would change; run again with --apply to write them" if n_files else "nothing to write"
    click.echo(msg, err=True)


@click.command("rename-ucs")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--creator", metavar="ID", envvar="SFX_UCS_CREATOR",
              help="CreatorID block [env SFX_UCS_CREATOR; default: kept from a UCS name the file has].")
@click.option("--source", "source_id", metavar="ID", envvar="SFX_UCS_SOURCE",
              help="SourceID block [env SFX_UCS_SOURCE; default: kept from a UCS name the file has].")
@click.option("--from", "source", default="review", show_default=True, metavar="SOURCE",
              help="Where the CatID comes from: review (accepted decisions), tags:SET, head:NAME, "
                   "or meta (the CatID written in each file, e.g. by write-meta).")
@click.option("--min-score", type=float, default=0.0, show_default=True)
@click.option("--with-sidecars", is_flag=True, help="Rename companion files sharing the stem (.reapeaks, .pkf, .txt...).")
@click.option("--apply", "apply_", is_flag=True, help="Rename the files (without it: preview only).")
@_options
@user_errors
def rename_ucs(paths, creator, source_id, source, min_score, with_sidecars, apply_, index_dir, db_url, as_json):
    """Rename files to UCS names, CatID_FXName_CreatorID_SourceID[_UserData].ext.

    The CatID comes from accepted review decisions (or a tag set / head with --from); the FX name
    from the file's own name or metadata. Preview by default; --apply renames and journals.

    \b
    Examples:
      sfx-index rename-ucs ~/SFX/Doors --creator JD --source Barn23
      sfx-index rename-ucs take.wav --from meta --creator JD --source Barn23 --apply
      sfx-index rename-ucs --from tags:ucs --min-score 0.4 --creator JD --source LIB --with-sidecars --apply
    """
    settings = _settings(index_dir, db_url)
    if source == "meta":
        if not paths:
            files = [os.path.join(root, rel) for _, root, rel in _open_catalog(settings).indexed_files()]
        else:
            files = _expand(paths)
        per_file = sources.from_files(files)
    else:
        per_file = sources.from_catalog(_open_catalog(settings), source, min_score=min_score)
    if paths:
        files, folders = _expand(paths), [os.path.realpath(p) for p in paths if os.path.isdir(p)]
        per_file = {p: v for p, v in per_file.items() if _within(os.path.realpath(p), files, folders)}
    items = [(p, v.get("cat_id", ""), v.get("fx_name")) for p, v in sorted(per_file.items()) if v.get("cat_id")]
    plans = plan_renames(items, creator=creator, source=source_id, with_sidecars=with_sidecars)
    change = None
    if apply_:
        change, rows = apply_renames(plans, _journal(settings))
        _sync(settings, sync_renamed, [(r["path"], r["new_path"]) for r in rows if r["status"] == "renamed"])
    else:
        rows = [p.row() for p in plans]
    if as_json:
        click.echo(json.dumps({"change": change, "applied": bool(apply_), "rows": rows}, indent=2, ensure_ascii=False))
    else:
        shown = [dict(r, new_name=os.path.basename(r["new_path"]) if r.get("new_path") else "") for r in rows]
        _echo_table(shown, ["path", "new_name", "status"])
    for r in rows:
        if r["status"] == "skipped":
            click.echo(f"skipped {_show(r['path'])}: {r['reason']}", err=True)
    if apply_:
        n = sum(r["status"] == "renamed" for r in rows)
        click.echo(f"renamed {n} files as change {change}; undo with `sfx-index undo {change}`" if change
                   else "nothing to rename", err=True)
    else:
        n = sum(r["status"] == "planned" and r["new_path"] != r["path"] for r in rows)
        click.echo(f"{n} files would be renamed; run again with --apply" if n else "nothing to rename", err=True)


@click.command("undo")
@click.argument("change_id", required=False)
@click.option("--list", "list_", is_flag=True, help="List the changes in the journal, newest last.")
@_options
@user_errors
def undo(change_id, list_, index_dir, db_url, as_json):
    """Restore the files of a change (default: the newest not undone) byte for byte.

    \b
    Examples:
      sfx-index undo --list
      sfx-index undo                     # the newest change
      sfx-index undo 20261203-093000-a1b2
    """
    from .errors import CannotWrite

    settings = _settings(index_dir, db_url)
    journal = _journal(settings)
    if list_:
        changes = journal.changes()
        data = [{"change": c.id, "kind": c.kind, "time": c.time, "files": len(c.entries), "undone": c.undone}
                for c in changes if c.entries]
        if as_json:
            click.echo(json.dumps(data, indent=2))
        else:
            for d in data:
                click.echo(f"{d['change']}  {d['kind']:<10} {d['time']}  {d['files']:>6} files"
                           f"{'  (undone)' if d['undone'] else ''}")
        return
    try:
        change = journal.get(change_id)
        rows = journal.undo(change)
    except CannotWrite as e:
        raise UserError(str(e)) from None
    _sync(settings, sync_undo, rows)
    if as_json:
        click.echo(json.dumps({"change": change.id, "rows": rows}, indent=2, ensure_ascii=False))
    else:
        _echo_table(rows, ["path", "status", "reason"])
    failed = [r for r in rows if r["status"] == "failed"]
    click.echo(f"undid change {change.id}: {len(rows) - len(failed)} restored, {len(failed)} failed", err=True)
    if failed:
        sys.exit(1)


def register(group: click.Group) -> None:
    for command in (write_meta, rename_ucs, undo):
        group.add_command(command)

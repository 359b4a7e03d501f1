"""sfx-index: the command line of the write path. Parses, calls the library, reports.

Data goes to stdout (tables, or JSON with --json); progress and diagnostics to stderr.
A `UserError` from any layer becomes one line `error: ...` and exit 1.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from . import __version__
from .config import UserError, safe_text
from .model_cli import model as model_group
from .options import CONTEXT, index_options, model_options, settings_from, user_errors
from .vectors.kinds import kind_choices
from .writeback import cli as writeback_cli

SHOWN_FAILURES = 20  # failures a build lists on stderr; `sfx-index status` lists more


def recorded_model(settings) -> str | None:
    """The model id an existing index records (None for a new index), as sfx-search uses it."""
    from .catalog import Catalog, CatalogError

    try:
        cat = Catalog.open(settings.catalog_url, create=False)
    except CatalogError:
        return None
    try:
        rec = cat.get_model()
        return rec.model_id if rec else None
    finally:
        cat.close()


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="sfx-index")
@click.option("-v", "--verbose", count=True, help="More diagnostics on stderr (-vv for debug).")
def main(verbose: int) -> None:
    """Index sound-effects libraries for text and similarity search with CLAP.

    \b
    Examples:
      sfx-index build ~/SFX                 index a library (incremental on reruns)
      sfx-index status                      what is indexed, with failures
      sfx-index embed door.wav --json       CLAP vectors of each 10 s window
    """
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@main.command()
@click.argument("library", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@index_options
@model_options
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="Windows per model call [default: 16 on a CPU, 128 on a GPU].")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Decode processes [default: half the cores; all but one beside a GPU].")
@click.option("--wait", is_flag=True, help="If another build holds the index, wait for it instead of stopping.")
@click.option("--no-measure", is_flag=True,
              help="Leave out the measured sound (loudness, peaks, fingerprint) for now: a faster first build "
              "where decoding bounds it (beside a GPU); the next build without it measures what is missing.")
@click.option("--vector-dtype", type=click.Choice(["float32", "float16"]), default=None,
              help="How a new catalog stores vectors; float16 halves it [default float32].")
@click.option(
    "--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
    help="Decode and embed on a Ray cluster (pip install 'sfx-index[ray]'): alone, one started on this "
    "machine; 'auto' or ray://HEAD:10001 for a running cluster. Every node must see LIBRARY and the "
    "model at the same paths. --workers then sets the number of actors.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@user_errors
def build(library, index_dir, db_url, model, device, precision, batch_size, workers, wait, no_measure, vector_dtype,
          ray_address, as_json, quiet):
    """Index the sound files under LIBRARY folders (new, changed, moved and deleted files).

    A rerun only looks at file sizes and dates; changed files are re-embedded, moved or
    duplicated ones reuse their stored vectors, deleted ones leave the index. Ctrl-C stops
    after the batch in flight; the next run carries on.

    \b
    Examples:
      sfx-index build /Volumes/SFX
      sfx-index build ~/Libraries/Boom ~/Libraries/Field --index ~/sfx-index
      SFX_MODEL=./clap-checkpoint sfx-index build ~/SFX --json
      sfx-index build /mnt/shared/SFX --ray ray://head:10001
      sfx-index build ~/SFX --device cuda --no-measure   searchable sooner; measure on the next run
    """
    from .pipeline import build as run_build

    if ray_address is not None and Path(ray_address).is_dir():
        # `--ray /mnt/SFX` took the folder as the address: say how to write it.
        raise UserError(f"--ray took '{ray_address}' as a cluster address; put --ray after the library "
                        "folders, or write --ray=local (or --ray=ADDRESS)")
    settings = settings_from(index_dir, db_url, model, device, precision)
    if model is None:  # neither --model nor SFX_MODEL: the model this index was built with
        settings.model = recorded_model(settings) or settings.model
    report = run_build(settings, list(library), batch_size=batch_size, workers=workers, progress=not quiet, wait=wait,
                       ray_address=ray_address, vector_dtype=vector_dtype, measure=not no_measure)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        r = report
        click.echo(
            f"{r.new} new, {r.changed} changed, "
            + (f"{r.retagged} retagged (metadata only, vectors kept), " if r.retagged else "")
            + f"{r.moved} moved, {r.duplicates} duplicates, "
            f"{r.deleted} deleted, {r.unchanged} unchanged, {r.failed} failed; "
            f"{r.windows} windows embedded in {r.seconds:.1f} s"
        )
        for f in r.failures[:SHOWN_FAILURES]:
            click.echo(f"  failed: {safe_text(f['path'])}: {f['reason']}", err=True)
        if len(r.failures) > SHOWN_FAILURES:
            click.echo(f"  ... and {len(r.failures) - SHOWN_FAILURES} more (sfx-index status)", err=True)
    if no_measure and not as_json:
        click.echo("measured sound left out (--no-measure): the next build without it measures the files that "
                   "lack it, without the model", err=True)
    if report.interrupted:
        click.echo("interrupted: what was committed is kept; run the same command to continue", err=True)
        sys.exit(130)


@main.command()
@index_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--failures", "n_failures", default=20, show_default=True, type=click.IntRange(0),
              help="How many failures (and truncated files) to list; 0 lists them all.")
@user_errors
def status(index_dir, db_url, as_json, n_failures):
    """Show the roots, counts, model, index size and failures of an index.

    \b
    Examples:
      sfx-index status
      sfx-index status --failures 0          every failure, not the first 20
      sfx-index status --json | jq .counts
    """
    from .maintenance import index_status

    st = index_status(settings_from(index_dir, db_url), n_failures=n_failures)
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    click.echo(f"index:   {st['index_dir']}")
    click.echo(f"model:   {st['model']['model_id'] if st['model'] else '(none yet)'}")
    c = st["counts"]
    click.echo(f"files:   {c['indexed']} indexed, {c['failed']} failed, {c['chunks']} chunks, {c['hours']} h of audio")
    s = st.get("sound")
    if s and s["measured"]:
        click.echo(f"sound:   {s['measured']} measured: {s['clipped']} clipped, {s['silent']} digital silence, "
                   f"{s['very_quiet']} very quiet (under -50 LUFS); see 'sfx-search qc'")
    v = st["vectors"]
    click.echo(f"vectors: {v['kind']} {v['ntotal']} ({v['bytes'] / 1e6:.1f} MB){'' if v['current'] else ' (stale: rebuilt on next use)'}")
    e = st.get("embedders")
    if e:
        runs = ", ".join(f"{r['runtime']} {r['precision']}" + (f" ({r['version']})" if r.get("version") else "")
                         for r in e["runs"])
        click.echo(f"embedded: {e['family']} vectors by {runs}")
    for r in st["roots"]:
        gone = ("  FOLDER MISSING (unmounted drive? if it moved: sfx-index relocate OLD NEW)"
                if r.get("missing") else "")
        click.echo(f"root:    {safe_text(r['path'])}  ({r['files']} files){gone}")
    for f in st["failures"]:
        click.echo(f"failed:  {safe_text(f['path'])}: {f['reason']}")
    for f in st["skipped"][: n_failures or None]:
        click.echo(f"skipped: {safe_text(f['path'])}: {f['reason']}")
    if n_failures and len(st["skipped"]) > n_failures:
        click.echo(f"skipped: ... and {len(st['skipped']) - n_failures} more (--failures 0 lists all)")
    for f in st["truncated"]:
        click.echo(f"cut off: {safe_text(f['path'])}: indexed up to {f['indexed_to_s']:.1f} s, where the file "
                   "breaks off (an interrupted copy? copy it again and rebuild)")
    if st["truncated_count"] > len(st["truncated"]):
        click.echo(f"cut off: ... and {st['truncated_count'] - len(st['truncated'])} more (--failures 0 lists all)")
    more = c["failed"] - len(st["failures"])
    if more > 0:
        click.echo(f"failed:  ... and {more} more: 'sfx-index status --failures 0' lists them all "
                   "('--json' for scripts)")


@main.command()
@index_options
@click.option("--repair", is_flag=True, help="Rebuild the FAISS index from the catalog if they disagree.")
@click.option("--json", "as_json", is_flag=True)
@user_errors
def check(index_dir, db_url, repair, as_json):
    """Check that the FAISS index and the catalog hold the same chunks.

    \b
    Examples:
      sfx-index check
      sfx-index check --repair
    """
    from .index import Index

    index = Index.open(settings_from(index_dir, db_url))
    try:
        res = index.check(repair=repair)
        if res.get("corrupt"):
            raise UserError(res["problems"][0] + "; restore it from a backup or start a new index with --index DIR")
    finally:
        index.close()
    if as_json:
        click.echo(json.dumps(res, indent=2))
    else:
        click.echo(f"{res['chunks']} chunks in the catalog, {res['faiss_vectors']} vectors in FAISS")
        for p in res["problems"]:
            click.echo(f"problem: {p}")
        click.echo("ok" if res["ok"] else ("repaired" if res["repaired"] else "run 'sfx-index check --repair'"))
    if not res["ok"] and not res["repaired"]:
        sys.exit(1)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@model_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file with its windows.")
@click.option("--npy", "npy_out", type=click.Path(dir_okay=False), help="Write all vectors to this .npy file.")
@click.option("--hop", default=10.0, show_default=True, help="Seconds between window starts.")
@user_errors
def embed(files, model, device, precision, as_json, npy_out, hop):
    """Print the CLAP vector of every 10 s window of FILES (start_s, end_s, vector).

    With --npy OUT the vectors go to OUT (one row per window) and their path, start_s and
    end_s to OUT with the suffix .windows.csv, row for row.

    No index is needed: this is the seam for using CLAP as a feature extractor.

    \b
    Examples:
      sfx-index embed door.wav --json > door.json
      sfx-index embed *.wav --npy vectors.npy
    """
    from .embedding import embed_files

    settings = settings_from(None, None, model, device, precision)
    rows = embed_files(settings, [Path(f) for f in files], hop_s=hop)
    if npy_out:
        import csv

        import numpy as np

        vecs = [w["vector"] for r in rows for w in r["windows"]]
        np.save(npy_out, np.asarray(vecs, dtype=np.float32))
        # Which window each row is: path, start_s, end_s beside the vectors, row for row.
        where = Path(npy_out).with_suffix(".windows.csv")
        with open(where, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
            w = csv.writer(fh)
            w.writerow(["row", "path", "start_s", "end_s"])
            i = 0
            for r in rows:
                for win in r["windows"]:
                    w.writerow([i, r["path"], win["start_s"], win["end_s"]])
                    i += 1
        noun = "vector" if len(vecs) == 1 else "vectors"
        click.echo(f"wrote {len(vecs)} {noun} to {npy_out}, and their windows (path, start_s, end_s) "
                   f"to {where}", err=True)
    if as_json or not npy_out:
        for r in rows:
            click.echo(json.dumps(r))


@main.command()
@click.argument("root", type=click.Path())
@index_options
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@user_errors
def remove(root, index_dir, db_url, yes):
    """Forget a library root and everything indexed under it (the files are not touched).

    \b
    Example:
      sfx-index remove /Volumes/OldDrive/SFX
    """
    from .maintenance import remove_root

    settings = settings_from(index_dir, db_url)
    if not yes and sys.stdin.isatty():
        click.confirm(f"Forget {root} and its files in the index?", abort=True, err=True)
    n = remove_root(settings, root)
    click.echo(f"removed {root}: {n} chunks left the index")


@main.command()
@index_options
@click.option("--memory", metavar="SIZE", help="Memory budget for the vector index, e.g. 2G or 512M [default 2G].")
@click.option("--kind", type=click.Choice(kind_choices()),
              help="Force an index kind instead of choosing one under the budget.")
@click.option("--retune", is_flag=True,
              help="Only tune the current index's search settings again (no retraining): e.g. once "
                   "many text queries are cached, or after an upgrade of the tuner.")
@click.option("--json", "as_json", is_flag=True)
@user_errors
def reindex(index_dir, db_url, memory, kind, retune, as_json):
    """Rebuild the vector index from the catalog, choosing it under a memory budget.

    Up to about 200 000 windows the index is exact; beyond, an approximate index (HNSW,
    IVF over 4-bit fast-scan codes with exact re-ranking) is chosen to fit the budget and tuned to a
    recall@10 of 0.95 on text-like queries and held-out windows. The budget is remembered for
    later builds.

    \b
    Examples:
      sfx-index reindex --memory 2G
      sfx-index reindex --kind flat
      sfx-index reindex --retune            settings only, the trained index kept
    """
    from .maintenance import reindex as run_reindex

    if retune and (memory or kind):
        raise click.UsageError("--retune keeps the index as it is: it takes no --memory or --kind")
    res = run_reindex(settings_from(index_dir, db_url), memory=memory, kind=kind, retune=retune)
    if as_json:
        click.echo(json.dumps(res, indent=2))
    else:
        recall = f", recall@10 {res['recall_at_10']}" if res["recall_at_10"] is not None else ""
        click.echo(f"{res['factory']}: {res['ntotal']} vectors, {res['bytes'] / 1e6:.1f} MB{recall} (budget {res['memory_budget']})")


@main.command()
@click.argument("old")
@click.argument("new", type=click.Path(exists=True, file_okay=False))
@index_options
@user_errors
def relocate(old, new, index_dir, db_url):
    """Point a root at its new place (a drive mounted elsewhere); nothing is re-embedded.

    \b
    Example:
      sfx-index relocate /Volumes/SFX /mnt/sfx
    """
    from .index import Index

    index = Index.open(settings_from(index_dir, db_url), verify=True)
    try:
        root = index.catalog.relocate_root(old, new)
    finally:
        index.close()
    click.echo(f"root {old} is now {root.path}")


writeback_cli.register(main)  # write-meta, rename-ucs, undo (docs/writeback.md)
main.add_command(model_group)  # model pull|list|remove (docs/models.md)

if __name__ == "__main__":
    main()

"""`sfx-index model pull|list|remove`: the CLAP checkpoints in the Hugging Face cache.

Parses, calls indexer.models, reports: a table for people, --json for scripts; progress and
diagnostics on stderr.
"""

from __future__ import annotations

import json

import click

from .config import resolve_index_dir
from .models import KNOWN, cached_models, find_cached, human_size, index_models, pull, remove
from .options import user_errors


@click.group("model", context_settings={"help_option_names": ["-h", "--help"]})
def model() -> None:
    """Download, list and remove CLAP checkpoints (the Hugging Face cache).

    \b
    Online once:   sfx-index model pull laion/clap-htsat-unfused
    Offline after: copy the folder `model list` shows to the other machine and
                   build with --model DIR (or set SFX_MODEL=DIR).

    \b
    Examples:
      sfx-index model pull laion/larger_clap_general
      sfx-index model list --json
      sfx-index model remove laion/clap-htsat-fused
    """


@model.command("pull")
@click.argument("model_id", default="laion/clap-htsat-fused", metavar="[ID]")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def pull_cmd(model_id: str, quiet: bool) -> None:
    """Download a checkpoint into the Hugging Face cache (its size is said first).

    Only what CLAP needs is fetched: configs, tokenizer and one copy of the weights
    (safetensors, else pytorch_model.bin). Prints the folder to copy to an offline machine.

    \b
    Examples:
      sfx-index model pull                               laion/clap-htsat-fused
      sfx-index model pull laion/clap-htsat-unfused      sounds of 10 s or less
    """
    snap = user_errors(pull)(model_id, progress=not quiet, echo=lambda m: click.echo(m, err=True))
    if model_id not in KNOWN:
        click.echo(f"note: '{model_id}' is not one of the LAION checkpoints this project was checked with", err=True)
    click.echo(str(snap))


@model.command("list")
@click.option("--index", "index_dirs", multiple=True, metavar="DIR", type=click.Path(file_okay=False),
              help="Also say whether these indexes use each checkpoint (repeatable) [default: the default index].")
@click.option("--json", "as_json", is_flag=True, help="JSON rows: model_id, family, size, path, revisions, indexes.")
def list_cmd(index_dirs: tuple[str, ...], as_json: bool) -> None:
    """The CLAP checkpoints in the Hugging Face cache: family, size, folder, indexes using them.

    \b
    Examples:
      sfx-index model list
      sfx-index model list --index ~/SFX/.index --json
    """
    dirs = list(index_dirs) or [str(resolve_index_dir(None))]
    rows = user_errors(cached_models)(dirs)
    if as_json:
        click.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    if not rows:
        click.echo("no CLAP checkpoint in the Hugging Face cache; `sfx-index model pull` downloads one", err=True)
        return
    for r in rows:
        click.echo(f"{r.model_id:<40} {r.family:<8} {human_size(r.size):>9}  {r.path}")
        for ix in r.indexes:
            click.echo(f"{'':<40} used by index {ix}")


@model.command("remove")
@click.argument("model_id", metavar="ID")
@click.option("--index", "index_dirs", multiple=True, metavar="DIR", type=click.Path(file_okay=False),
              help="Indexes to check for use of the checkpoint (repeatable) [default: the default index].")
@click.option("-y", "--yes", is_flag=True, help="Do not ask; remove even when an index uses it.")
def remove_cmd(model_id: str, index_dirs: tuple[str, ...], yes: bool) -> None:
    """Delete a checkpoint from the Hugging Face cache (every revision).

    An index built with it keeps its vectors but cannot search by text or embed new files
    until the checkpoint is back (`model pull`).

    \b
    Examples:
      sfx-index model remove laion/clap-htsat-fused
      sfx-index model remove laion/larger_clap_music -y
    """
    _, repo = user_errors(find_cached)(model_id)
    dirs = list(index_dirs) or [str(resolve_index_dir(None))]
    snaps = [str(r.snapshot_path) for r in repo.revisions]
    users = [ix for ix, mid in user_errors(index_models)(dirs).items()
             if mid == model_id or any(mid.startswith(s) for s in snaps)]
    for ix in users:
        click.echo(f"index {ix} uses {model_id}", err=True)
    if not yes:
        click.confirm(f"remove {model_id} ({human_size(repo.size_on_disk)}) from the cache?", abort=True, err=True)
    freed = user_errors(remove)(model_id)
    click.echo(f"removed {model_id}: {human_size(freed)} freed", err=True)

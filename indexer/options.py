"""What both command lines share: --index/--db, --model/--device/--precision, settings, errors.

`sfx-index` (indexer/cli.py), `sfx-search` (search/cli.py, search/tag_cli.py) and the audition
server's command (search/web/cli.py) decorate their commands with these, so an option reads
the same, with the same environment variable, everywhere. Kept free of heavy imports: every
command's start-up pays for this module.
"""

from __future__ import annotations

import functools
import os

import click

from .config import (
    ENV_DATABASE_URL, ENV_DEVICE, ENV_INDEX_DIR, ENV_MODEL, ENV_PRECISION, Settings, UserError,
    resolve_index_dir, resolve_model,
)
from .runtime import ENV_RUNTIME, RUNTIMES

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def index_options(f):
    """--index and --db, shared by every command that opens an index."""
    f = click.option(
        "--db", "db_url", envvar=ENV_DATABASE_URL, metavar="URL",
        help="Catalog database URL (e.g. postgresql://...); default: SQLite in the index folder.",
    )(f)
    f = click.option(
        "--index", "index_dir", envvar=ENV_INDEX_DIR, metavar="DIR", type=click.Path(file_okay=False),
        help="Index folder [env SFX_INDEX_DIR; default: the platform data dir].",
    )(f)
    return f


def _set_runtime(ctx, param, value):
    # Every encoder this process (and its decode workers, and a server's Library) loads reads
    # the choice from the environment (indexer.runtime.requested): one place sets it.
    if value:
        os.environ[ENV_RUNTIME] = value
    return value


def model_options(f):
    """--model, --device, --precision and --runtime, shared by every command that loads the model."""
    f = click.option(
        "--runtime", type=click.Choice(list(RUNTIMES)), envvar=ENV_RUNTIME, expose_value=False,
        callback=_set_runtime, help="What runs the model: OpenVINO on a CPU where installed and faster, "
        "torch on a GPU (auto), or torch / openvino [env SFX_RUNTIME; default auto]. See docs/runtime.md.",
    )(f)
    f = click.option(
        "--precision", type=click.Choice(["auto", "fp32", "bf16", "int8"]), default="auto", envvar=ENV_PRECISION,
        show_default=True, help="bf16 where the hardware runs it fast (auto), else fp32; int8: OpenVINO, "
        "calibrated on your library by a build (never chosen by auto).",
    )(f)
    f = click.option(
        "--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", envvar=ENV_DEVICE,
        show_default=True, help="auto: CUDA, else Apple's mps (untested), else the CPU.",
    )(f)
    f = click.option(
        "--model", envvar=ENV_MODEL, metavar="ID_OR_DIR",
        help="CLAP checkpoint: a Hugging Face id or a local folder [env SFX_MODEL; default laion/clap-htsat-fused].",
    )(f)
    return f


def settings_from(index_dir=None, db_url=None, model=None, device="auto", precision="auto") -> Settings:
    """Settings from these options' values, environment and defaults resolved."""
    return Settings(
        index_dir=resolve_index_dir(index_dir), model=resolve_model(model), device=device,
        precision=precision, db_url=db_url,
    )


def user_errors(f):
    """Turn domain errors into one line on stderr and exit 1 (beets' UserError, llm's ClickException)."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            # Damage found deep in a query (a corrupt page no check had reached yet).
            names = [c.__name__ for c in type(exc).__mro__]
            if "DatabaseError" in names and type(exc).__module__.startswith("sqlalchemy"):
                msg = str(getattr(exc, "orig", exc))
                raise click.ClickException(
                    f"the catalog cannot be read ({msg}); if it is corrupt, restore it from a backup "
                    "or start a new index with --index DIR"
                ) from None
            raise

    return wrapper

"""Settings shared by every command: where the index lives, which model, device and precision.

Each setting has one environment variable and a default; click options pass `envvar=` with
the same names so that the CLI and the library agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# The audio contract of CLAP (laion/clap-htsat-*): 48 kHz mono, 10 s windows.
SAMPLE_RATE = 48_000
WINDOW_S = 10.0
HOP_S = 10.0
WINDOW_SAMPLES = int(SAMPLE_RATE * WINDOW_S)

DEFAULT_MODEL = "laion/clap-htsat-fused"

ENV_INDEX_DIR = "SFX_INDEX_DIR"
ENV_MODEL = "SFX_MODEL"
ENV_DEVICE = "SFX_DEVICE"
ENV_PRECISION = "SFX_PRECISION"
ENV_DATABASE_URL = "SFX_DATABASE_URL"


def default_index_dir() -> Path:
    """The platform data dir (e.g. ~/.local/share/sfx-index on Linux)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("sfx-index", appauthor=False))


def resolve_index_dir(index_dir: str | os.PathLike | None = None) -> Path:
    if index_dir:
        return Path(index_dir).expanduser().resolve()
    env = os.environ.get(ENV_INDEX_DIR)
    if env:
        return Path(env).expanduser().resolve()
    return default_index_dir()


def resolve_model(model: str | None = None) -> str:
    return model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL


@dataclass
class Settings:
    """Resolved settings for one command invocation."""

    index_dir: Path = field(default_factory=resolve_index_dir)
    model: str = field(default_factory=resolve_model)
    device: str = field(default_factory=lambda: os.environ.get(ENV_DEVICE, "auto"))
    precision: str = field(default_factory=lambda: os.environ.get(ENV_PRECISION, "auto"))
    db_url: str | None = field(default_factory=lambda: os.environ.get(ENV_DATABASE_URL))

    def __post_init__(self) -> None:
        self.index_dir = Path(self.index_dir).expanduser()

    @property
    def catalog_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.index_dir / 'catalog.sqlite'}"

    @property
    def faiss_path(self) -> Path:
        return self.index_dir / "vectors.faiss"


class UserError(Exception):
    """An error the user can fix; the CLI prints its message as one line and exits 1."""


def safe_text(text: str) -> str:
    """Text that any database accepts and any terminal prints (undecodable bytes as U+FFFD).

    Here, in a module without heavy imports, so that rendering a result row (the CLI's
    hand-off to a server) does not import the catalog and SQLAlchemy."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if text else text

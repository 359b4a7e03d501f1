"""The search filters, each declared once: what a filter is called, its CLI option and query
parameter, its type and bounds, its help, and how the page shows it.

Everything that offers filters reads this list: `sfx-search`'s options (search/cli.py), the
JSON API's parameters (search/web/app.py), the page's controls (built from the page config)
and the Python API (`search.filters.Filters`). The SQL condition of each filter is the one
part that lives elsewhere, in the catalog (`indexer/catalog/filters.py`, keyed by name),
since the catalog is the only place that holds SQL. Adding a filter = one `FilterSpec` here +
its condition there (docs/catalog.md); tests/test_filters_declared.py checks every surface.

Standard library only: the CLI imports this on the fast hand-off path (no SQLAlchemy).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

KINDS = ("path", "text", "int", "float", "flag")
PAGE_CONTROLS = ("text", "number", "select", "checkbox")


def absolute_folder(value: str) -> str:
    """A folder as the user typed it, made absolute (symlinks kept: the catalog stores paths
    under the root as walked)."""
    return str(Path(value).expanduser().absolute())


def resolved_folder(value: str) -> str:
    """A library root as the catalog records it (resolved)."""
    return str(Path(value).expanduser().resolve())


def extensions(values: tuple[str, ...]) -> tuple[str, ...]:
    """File extensions compared case-insensitively, with or without their dot."""
    return tuple(e.lower().lstrip(".") for e in values)


@dataclass(frozen=True)
class FilterSpec:
    name: str  # the Filters field, JSON key, query parameter and catalog argument
    kind: str  # one of KINDS
    help: str  # --help text and the page's tooltip
    metavar: str
    label: str  # the page's label
    multiple: bool = False  # a repeatable option / a list parameter: files matching any value
    lo: float | None = None  # bounds of a number, checked by the CLI and the API
    hi: float | None = None
    page: str = "text"  # the page's control: one of PAGE_CONTROLS
    choices: str | None = None  # a select's options: the page config key that lists them
    suggest: str | None = None  # values the page suggests while typing: "tags" (GET /api/tags)
    placeholder: str = ""
    step: float | None = None  # a number control's step on the page
    normalise: Callable[[Any], Any] | None = None  # the user's value -> the catalog's

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def param(self) -> str:
        return self.name

    @property
    def default(self) -> Any:
        return () if self.multiple else None

    @property
    def annotation(self) -> str:
        base = {"path": "str", "text": "str", "int": "int", "float": "float", "flag": "bool"}[self.kind]
        return f"tuple[{base}, ...]" if self.multiple else f"{base} | None"

    def is_set(self, value: Any) -> bool:
        """Whether `value` restricts the results: any float (0 s is a bound), else a truthy
        value (an empty list, "" or 0 Hz / 0 channels filters nothing)."""
        if self.kind == "float":
            return value is not None
        return bool(value)

    def to_catalog(self, value: Any) -> Any:
        """The value the catalog's condition receives."""
        if self.multiple:
            value = tuple(value)
        return self.normalise(value) if self.normalise and self.is_set(value) else value

    def for_page(self) -> dict:
        """What the page needs to draw the control (sent in its config)."""
        return {
            "name": self.name, "param": self.param, "label": self.label, "help": self.help,
            "control": self.page, "choices": self.choices, "suggest": self.suggest,
            "placeholder": self.placeholder, "min": self.lo, "max": self.hi, "step": self.step,
            "multiple": self.multiple,
        }


# The order is the order of --help, of the page's controls and of the SQL conditions.
FILTERS: tuple[FilterSpec, ...] = (
    FilterSpec("root", "path", "Only files of this library root.", "ROOT", "Library",
               page="select", choices="roots", placeholder="all", normalise=resolved_folder),
    FilterSpec("under", "path", "Only files under this folder.", "PATH", "Folder",
               placeholder="/path/inside/library", normalise=absolute_folder),
    FilterSpec("ext", "text", "Only these extensions, e.g. --ext wav --ext flac.", "EXT", "Format",
               multiple=True, page="select", choices="extensions", placeholder="any", normalise=extensions),
    FilterSpec("min_duration", "float", "Only files at least S seconds long.", "S", "Min length",
               lo=0, page="number", placeholder="min s", step=0.1),
    FilterSpec("max_duration", "float", "Only files at most S seconds long.", "S", "Max length",
               lo=0, page="number", placeholder="max s", step=0.1),
    FilterSpec("sample_rate", "int", "Only files at this rate.", "HZ", "Rate",
               lo=1, hi=10_000_000, page="number", placeholder="Hz", step=1),
    FilterSpec("channels", "int", "Only files with this many channels.", "N", "Channels",
               lo=1, hi=1024, page="number", placeholder="any", step=1),
    FilterSpec("tag", "text", "Only files tagged LABEL (repeatable: any of).", "LABEL", "Tag",
               multiple=True, suggest="tags", placeholder="any"),
    # Measured sound (docs/hygiene.md): files not measured yet match none of these.
    FilterSpec("min_loudness", "float", "Only files at least this loud (integrated loudness, LUFS).", "LUFS",
               "Min LUFS", lo=-200, hi=20, page="number", placeholder="LUFS", step=1),
    FilterSpec("max_loudness", "float", "Only files at most this loud (integrated loudness, LUFS).", "LUFS",
               "Max LUFS", lo=-200, hi=20, page="number", placeholder="LUFS", step=1),
    FilterSpec("max_true_peak", "float", "Only files whose true peak is at most DBTP.", "DBTP", "Max peak",
               lo=-200, hi=20, page="number", placeholder="dBTP", step=0.5),
    FilterSpec("no_clipping", "flag", "Only files with no clipped samples.", "", "No clipping", page="checkbox"),
    FilterSpec("max_head_silence", "float", "Only files whose leading silence is at most S seconds.", "S",
               "Max head silence", lo=0, page="number", placeholder="s", step=0.1),
)

BY_NAME = {f.name: f for f in FILTERS}
for _f in FILTERS:
    if _f.kind not in KINDS or _f.page not in PAGE_CONTROLS:
        raise ValueError(f"filter {_f.name}: kind must be one of {KINDS}, page one of {PAGE_CONTROLS}")

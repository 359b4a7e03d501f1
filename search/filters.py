"""The Python API of the result filters: `Filters`, one field per filter declared in
`indexer.filterspec.FILTERS` (--root, --under, --ext, durations, format, --tag ...), turned
into catalog file ids. The class is made from the declaration: a new filter needs no edit here."""

from __future__ import annotations

from dataclasses import field, fields, make_dataclass

from indexer.filterspec import FILTERS


def _empty(self) -> bool:
    return all(getattr(self, f.name) in (None, (), "") for f in fields(self))


def _describe(self) -> str:
    parts = []
    for f in fields(self):
        v = getattr(self, f.name)
        if v not in (None, (), ""):
            v = ",".join(map(str, v)) if isinstance(v, tuple) else v
            parts.append(f"{f.name.replace('_', '-')}={v}")
    return " ".join(parts)


def _file_ids(self, catalog) -> set[int]:
    return catalog.filter_file_ids(**{spec.name: spec.to_catalog(getattr(self, spec.name)) for spec in FILTERS})


def _from_options(cls, values: dict) -> "Filters":
    """Filters from parsed options or parameters keyed by filter name (lists become tuples)."""
    return cls(**{spec.name: tuple(values.get(spec.name) or ()) if spec.multiple else values.get(spec.name)
                  for spec in FILTERS})


Filters = make_dataclass(
    "Filters",
    [(spec.name, spec.annotation, field(default=spec.default)) for spec in FILTERS],
    namespace={
        "__doc__": "Result filters; every field unset (None or ()) means no filter.",
        "empty": _empty,
        "describe": _describe,
        "file_ids": _file_ids,
        "from_options": classmethod(_from_options),
    },
)
Filters.__module__ = __name__  # make_dataclass's module= needs Python 3.12

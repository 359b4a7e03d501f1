"""Result filters (--root, --under, --ext, durations, format, --tag) turned into catalog file ids."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path


@dataclass
class Filters:
    root: str | None = None
    under: str | None = None
    ext: tuple[str, ...] = ()
    min_duration: float | None = None
    max_duration: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    tag: tuple[str, ...] = ()

    def empty(self) -> bool:
        return all(getattr(self, f.name) in (None, (), "") for f in fields(self))

    def describe(self) -> str:
        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v not in (None, (), ""):
                v = ",".join(map(str, v)) if isinstance(v, tuple) else v
                parts.append(f"{f.name.replace('_', '-')}={v}")
        return " ".join(parts)

    def file_ids(self, catalog) -> set[int]:
        under = str(Path(self.under).expanduser().absolute()) if self.under else None
        root = str(Path(self.root).expanduser().resolve()) if self.root else None
        exts = tuple(e.lower().lstrip(".") for e in self.ext)
        return catalog.filter_file_ids(
            root=root, under=under, exts=exts, min_duration=self.min_duration, max_duration=self.max_duration,
            sample_rate=self.sample_rate, channels=self.channels, tags=self.tag,
        )

"""Catalog files as the server shows them: rows by id, JSON facts, audio sources, waveforms.

Everything here is blocking (SQLite, disk) and runs in the threadpool. A client names a file
only by its catalog id: the path always comes from the catalog row, so no request can reach
a file outside the indexed library.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from starlette.exceptions import HTTPException

from indexer.catalog import MEASURE_COLUMNS

from . import media
from .waveform import WaveformCache

HI_RES = {"PCM_24", "PCM_32", "FLOAT", "DOUBLE"}


@dataclass
class AudioSource:
    size: int
    mime: str
    iter_bytes: Callable[[int, int], Iterator[bytes]]
    filename: str | None = None  # set for downloads (Content-Disposition)


class FileService:
    def __init__(self, catalog, waveforms: WaveformCache):
        self.catalog = catalog
        self.waveforms = waveforms

    # ------------------------------------------------------------------ rows

    def row(self, file_id: int):
        row = self.catalog.files_by_ids([int(file_id)]).get(int(file_id))
        if row is None:
            raise HTTPException(404, f"no file with id {file_id} in the catalog")
        if ".." in PurePosixPath(row.rel).parts or PurePosixPath(row.rel).is_absolute():
            raise HTTPException(404, f"file {file_id} has an unsafe path in the catalog")
        return row

    def on_disk(self, file_id: int):
        row = self.row(file_id)
        if not os.path.isfile(row.path):
            raise HTTPException(404, f"{row.path} is no longer on disk; run 'sfx-index build' to update the index")
        return row

    @staticmethod
    def _place(row) -> dict:
        rel = PurePosixPath(row.rel)
        return {
            "name": rel.name,
            "folder": str(rel.parent) if str(rel.parent) != "." else "",
            "root": row.root,
            "ext": rel.suffix.lower().lstrip("."),
            "playable": media.browser_playable(row.container, row.subtype, row.channels),
        }

    def describe_results(self, results) -> list[dict]:
        rows = self.catalog.files_by_ids([r.file_id for r in results])
        out = []
        for r in results:
            d = r.as_json()
            if r.file_id in rows:
                d.update(self._place(rows[r.file_id]))
            out.append(d)
        return out

    def info(self, file_id: int) -> dict:
        row = self.row(file_id)
        chunks, _ = self.catalog.chunks_for(row.id)
        tags = self.catalog.tags_for([row.id]).get(row.id, [])
        return {
            "id": row.id, "path": row.path, **self._place(row), "size": row.size,
            "duration_s": row.duration_s, "sample_rate": row.sample_rate, "channels": row.channels,
            "subtype": row.subtype, "container": row.container, "status": row.status, "error": row.error,
            "metadata": self.catalog.metadata_for([row.id]).get(row.id, {}), "tags": tags,
            "chunks": [{"id": c.id, "start_s": c.start_s, "end_s": c.end_s} for c in chunks],
            **self.catalog.measurements_for([row.id]).get(row.id, dict.fromkeys(MEASURE_COLUMNS)),
        }

    def page_config(self, loopback: bool) -> dict:
        from indexer.filterspec import FILTERS
        from indexer.scan import AUDIO_EXTENSIONS

        roots = [r.path for r in self.catalog.roots()]
        extensions = sorted({e.lower().lstrip(".") for e in AUDIO_EXTENSIONS})
        # The options of the filters drawn as a select (FilterSpec.choices), as (value, text).
        choices = {"roots": [(p, p) for p in roots], "extensions": [(e, e.upper()) for e in extensions]}
        return {
            "roots": roots,
            "extensions": extensions,
            "filters": [dict(spec.for_page(), options=choices.get(spec.choices)) for spec in FILTERS],
            "has_tags": bool(self.tag_counts()),
            "counts": self.catalog.counts(),
            "loopback": loopback,
        }

    def tag_counts(self) -> list[dict] | None:
        """[{label, count}] when the catalog can list its tags and has some, else None."""
        rows = [{"label": str(label), "count": int(count)} for label, _cat, count in self.catalog.label_counts()]
        return rows or None

    # ------------------------------------------------------------------ audio

    def audio_source(self, file_id: int, start: float | None, end: float | None, download: bool) -> AudioSource:
        row = self.on_disk(file_id)
        if download or start is not None or end is not None or not media.browser_playable(
            row.container, row.subtype, row.channels
        ):
            hi = download and row.subtype in HI_RES
            try:
                wav = media.VirtualWav.open(row.path, start, end, bits=24 if hi else 16, keep_channels=download)
            except media.RegionPastEnd as exc:
                raise HTTPException(416, str(exc)) from None
            except Exception as exc:  # libsndfile's errors have no common base worth naming
                raise HTTPException(422, f"cannot decode {Path(row.path).name}: {' '.join(str(exc).split())}") from None
            name = None
            if download:
                a, b = wav.start / wav.samplerate, wav.end / wav.samplerate
                name = f"{Path(row.rel).stem}_{a:.1f}-{b:.1f}s.wav".replace('"', "'")
            return AudioSource(wav.size, "audio/wav", wav.iter_bytes, name)
        size = os.path.getsize(row.path)
        path = row.path
        return AudioSource(size, media.MIME.get(row.container, "application/octet-stream"),
                           lambda a, b: media.file_bytes(path, a, b))

    def waveform_png(self, file_id: int, width: int, height: int, start: float | None, end: float | None) -> bytes:
        row = self.on_disk(file_id)
        region = None
        if start is not None and row.duration_s:
            stop = end if end is not None else start
            region = (min(1.0, start / row.duration_s), min(1.0, max(start, stop) / row.duration_s))
        try:
            return self.waveforms.png(row.id, row.path, row.size, row.mtime_ns, width, height, region)
        except Exception as exc:
            raise HTTPException(422, f"cannot decode {Path(row.path).name}: {' '.join(str(exc).split())}") from None

    # ------------------------------------------------------------------ desktop

    @staticmethod
    def reveal(path: str) -> bool:
        """Show the file in the system's file manager; False when there is none to run."""
        system = platform.system()
        if system == "Darwin":
            cmd = ["open", "-R", path]
        elif system == "Windows":
            cmd = ["explorer", f"/select,{path}"]
        else:
            cmd = ["xdg-open", str(Path(path).parent)]
        if shutil.which(cmd[0]) is None:
            return False
        subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
        return True

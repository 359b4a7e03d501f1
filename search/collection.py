"""Collections: named, ordered pulls of files or moments, kept in the catalog (docs/collections.md).

An item is a file of the library or a moment of it (a region start..end). It is stored by the
content hash of the file and the path where it was last seen, so it survives rebuilds, moves
and renames: `entries()` finds the file by its bytes first, then by its path (a file whose
bytes changed, e.g. metadata written into it), and remembers where it is now. Exports: an
extended M3U with start (and stop) offsets, a CSV, or a folder of region WAVs written outside
the library with the source's channels and bit depth.

    from search.collection import add, entries, export_m3u
    add(catalog, "door pulls", [("~/SFX/door_01.wav", None), ("~/SFX/take3.wav", 12.5)])
    export_m3u(entries(catalog, "door pulls"), "pull.m3u")
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from indexer.catalog import CollectionItem, FileRow
from indexer.config import WINDOW_S, UserError

MAX_NAME = 200
# WAV subtypes a region keeps as they are; others (lossy, 8-bit signed) become the nearest.
WAV_SUBTYPE_FOR = {"PCM_S8": "PCM_U8"}
LOSSY_TO = "PCM_24"


@dataclass
class Entry:
    """An item resolved against the catalog now: the file (None when it is gone) and its region."""

    position: int  # 1-based
    item: CollectionItem
    file: FileRow | None
    status: str  # "ok" | "moved" | "missing"
    start_s: float | None
    end_s: float | None

    @property
    def path(self) -> str:
        return self.file.path if self.file is not None else self.item.path

    def region(self) -> tuple[float, float | None]:
        """(start, end) seconds to play or cut; end None for the rest of the file."""
        return (self.start_s or 0.0, self.end_s)

    def as_json(self) -> dict:
        f = self.file
        return {"position": self.position, "path": self.path, "status": self.status, "start_s": self.start_s,
                "end_s": self.end_s, "file_id": f.id if f else None, "duration_s": f.duration_s if f else None,
                "content_hash": self.item.content_hash, "last_seen": self.item.path}


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise UserError(f"a collection name is 1 to {MAX_NAME} printable characters")
    return name


def collection_id(catalog, name: str) -> int:
    cid = catalog.collection_id(check_name(name))
    if cid is None:
        have = ", ".join(c.name for c in catalog.collections()) or "none yet"
        raise UserError(f"no collection named '{name}' (collections: {have}); make one with "
                        f"'sfx-search collection add \"{name}\" FILE...'")
    return cid


def parse_item(spec: str) -> tuple[str, float | None]:
    """'PATH' or 'PATH@SECONDS' (a path that exists with '@' in its name stays whole)."""
    from .feedback import parse_example

    e = parse_example(spec)
    return e.path, e.start_s


def moment(row: FileRow, start_s: float | None, end_s: float | None = None) -> tuple[float | None, float | None]:
    """The region of an item: the window from start_s (10 s, or to end_s), inside the file."""
    if start_s is None:
        return None, None
    dur = row.duration_s or 0.0
    if start_s < 0 or (dur and start_s >= dur):
        raise UserError(f"{start_s:g} s is outside {row.path} ({dur:.1f} s long)")
    end = start_s + WINDOW_S if end_s is None else end_s
    if end <= start_s:
        raise UserError(f"the region of {row.path} must end after {start_s:g} s")
    return float(start_s), float(min(end, dur) if dur else end)


def add(catalog, name: str, items: Sequence[tuple[str, float | None]]) -> int:
    """Append library files or moments ((path, start_s or None)) to a collection, made if new."""
    rows = []
    for path, start in items:
        f = catalog.file_by_path(path)
        if f is None or f.status != "ok":
            raise UserError(f"'{path}' is not an indexed file; add it to the index with 'sfx-index build' first")
        rows.append((f, *moment(f, start)))
    return _append(catalog, name, rows)


def add_ids(catalog, name: str, items: Sequence[tuple[int, float | None, float | None]]) -> int:
    """The same by catalog file id, with an optional region end (the page's matched window)."""
    files = catalog.files_by_ids([i for i, _, _ in items])
    rows = []
    for fid, start, end in items:
        f = files.get(fid)
        if f is None or f.status != "ok":
            raise UserError(f"file {fid} is not an indexed file")
        rows.append((f, *moment(f, start, end)))
    return _append(catalog, name, rows)


def _append(catalog, name: str, rows) -> int:
    if not rows:
        raise UserError("give at least one file (PATH or PATH@SECONDS) to add")
    cid = catalog.collection_id(check_name(name), create=True)
    return catalog.add_collection_items(cid, [(f.content_hash, f.path, s, e) for f, s, e in rows])


def entries(catalog, name: str) -> list[Entry]:
    """The items of a collection in order, each found where its file is now."""
    items = catalog.collection_items(collection_id(catalog, name))
    by_hash = catalog.indexed_files_with_hashes([i.content_hash for i in items if i.content_hash])
    out = []
    for pos, item in enumerate(items, 1):
        f = catalog.file_by_path(item.path)
        if f is not None and f.status == "ok" and f.content_hash == item.content_hash:
            out.append(Entry(pos, item, f, "ok", item.start_s, item.end_s))
            continue
        moved = by_hash.get(item.content_hash) if item.content_hash else None
        if moved is None and f is not None and f.status == "ok":
            moved = f  # same place, new bytes (metadata written into it): still this item
        if moved is None:
            out.append(Entry(pos, item, None, "missing", item.start_s, item.end_s))
            continue
        catalog.update_collection_item(item.id, content_hash=moved.content_hash, path=moved.path)
        out.append(Entry(pos, item, moved, "moved" if moved.path != item.path else "ok", item.start_s, item.end_s))
    return out


def rename(catalog, name: str, new_name: str) -> None:
    cid = collection_id(catalog, name)
    new_name = check_name(new_name)
    other = catalog.collection_id(new_name)
    if other is not None and other != cid:
        raise UserError(f"a collection named '{new_name}' exists already")
    catalog.rename_collection(cid, new_name)


def remove(catalog, name: str, positions: Sequence[int] = ()) -> int:
    """Remove items by position (1-based), or the whole collection when none are given."""
    cid = collection_id(catalog, name)
    items = catalog.collection_items(cid)
    if not positions:
        catalog.delete_collection(cid)
        return len(items)
    bad = [p for p in positions if not 1 <= p <= len(items)]
    if bad:
        raise UserError(f"position {bad[0]} is not in '{name}' (1..{len(items)})")
    return catalog.remove_collection_items(cid, [items[p - 1].id for p in set(positions)])


def move(catalog, name: str, position: int, to: int) -> None:
    """Move the item at `position` to `to` (1-based), the others keeping their order."""
    cid = collection_id(catalog, name)
    ids = [i.id for i in catalog.collection_items(cid)]
    for p in (position, to):
        if not 1 <= p <= len(ids):
            raise UserError(f"position {p} is not in '{name}' (1..{len(ids)})")
    ids.insert(to - 1, ids.pop(position - 1))
    catalog.set_collection_order(cid, ids)


# ---------------------------------------------------------------------- exports


def _write_atomic(path: str | Path, text: str) -> None:
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def m3u_text(items: Sequence[Entry]) -> str:
    """Extended M3U: VLC starts (and stops) each moment at its offsets; others play the file."""
    out = ["#EXTM3U"]
    for e in items:
        if e.file is None:
            continue
        start, end = e.region()
        dur = int(round((end - start) if end is not None else (e.file.duration_s or -1)))
        at = f" @ {start:.1f}s" if e.start_s is not None else ""
        out.append(f"#EXTINF:{dur},{Path(e.path).name}{at}")
        if e.start_s is not None:
            out.append(f"#EXTVLCOPT:start-time={start:.3f}")
            if end is not None:
                out.append(f"#EXTVLCOPT:stop-time={end:.3f}")
        out.append(e.path)
    return "\n".join(out) + "\n"


def csv_text(items: Sequence[Entry]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["position", "path", "start_s", "end_s", "duration_s", "status", "content_hash"])
    for e in items:
        w.writerow([e.position, e.path, "" if e.start_s is None else f"{e.start_s:.3f}",
                    "" if e.end_s is None else f"{e.end_s:.3f}",
                    "" if e.file is None or e.file.duration_s is None else f"{e.file.duration_s:.3f}",
                    e.status, e.item.content_hash or ""])
    return buf.getvalue()


def export_m3u(items: Sequence[Entry], path: str | Path) -> int:
    _write_atomic(path, m3u_text(items))
    return sum(e.file is not None for e in items)


def export_csv(items: Sequence[Entry], path: str | Path) -> int:
    _write_atomic(path, csv_text(items))
    return len(items)


def region_name(e: Entry) -> str:
    stem = re.sub(r"[^\w.\- ]+", "_", Path(e.path).stem).strip() or "region"
    at = f"@{e.start_s:.1f}s" if e.start_s is not None else ""
    return f"{e.position:03d} {stem}{at}.wav"


def wav_subtype(source_subtype: str | None) -> str:
    """The source's sample format when WAV can hold it, else the nearest (lossy: 24-bit)."""
    import soundfile as sf

    s = WAV_SUBTYPE_FOR.get(source_subtype or "", source_subtype or "")
    return s if s and sf.check_format("WAV", s) else LOSSY_TO


def export_wav_dir(catalog, items: Sequence[Entry], folder: str | Path) -> list[Path]:
    """One WAV per item (its region, or the whole file) in `folder`, which must lie outside
    every library root; refuses before writing anything if a name is taken."""
    import soundfile as sf

    folder = Path(folder).expanduser().absolute()
    for root in catalog.roots():
        r = Path(root.path)
        if folder == r or r in folder.resolve().parents or r in folder.parents:
            raise UserError(f"{folder} is inside the library {r}; export regions to a folder outside it")
    todo = [e for e in items if e.file is not None]
    if not todo:
        raise UserError("nothing to export: every item's file is missing (see 'sfx-search collection show')")
    targets = [folder / region_name(e) for e in todo]
    taken = [t for t in targets if t.exists()]
    if taken:
        raise UserError(f"{taken[0]} exists; export to an empty folder (nothing was written)")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for e, target in zip(todo, targets):
        src = e.file.path
        try:
            info = sf.info(src)
            start, end = e.region()
            a = int(round(start * info.samplerate))
            b = info.frames if end is None else min(info.frames, int(round(end * info.samplerate)))
            # float64 holds every 8..32-bit integer sample exactly: the bits come out as they went in.
            data, sr = sf.read(src, start=a, stop=b, dtype="float64", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise UserError(f"cannot read {src}: {exc}") from None
        tmp = target.with_name(f".{target.name}.tmp")
        sf.write(tmp, data, sr, subtype=wav_subtype(info.subtype), format="WAV")
        os.replace(tmp, target)
        written.append(target)
    return written

"""The journal of every change written into a library, and undo that restores files byte for byte.

Kept as files in the index folder (`<index>/writeback/`), not in the catalog: it must work
without a catalog, holds binary blobs, and each record must be on disk (fsynced) *before* the
rename that puts a new file in place, so a crash can never leave a change without its record.

- `journal.jsonl`: one JSON object per line, appended and fsynced; a torn last line from a
  crash is ignored. Records: {"op": "begin"|"meta"|"rename"|"undone", "change": id, ...}.
  A metadata record carries the old bytes around the audio region (base64): the head before
  it and the tail after it.

A metadata entry records the whole-file hash before and after, and where the unchanged audio
region sits in both. Undo rebuilds head + current audio + tail, checks the result hashes to the
old file, and replaces the file atomically. A file that has changed since our write (another
tool edited it) is not touched; undo says so.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import file_hash, rename_no_replace, replace_file
from .errors import CannotWrite


@dataclass
class Change:
    id: str
    kind: str  # "write-meta" | "rename-ucs"
    time: str
    entries: list[dict] = field(default_factory=list)
    undone: bool = False


class Journal:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / "journal.jsonl"

    # ------------------------------------------------------------ writing

    def _append(self, *records: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = b"".join((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8") for r in records)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def begin(self, kind: str, note: str = "") -> str:
        now = dt.datetime.now(dt.timezone.utc)
        change = f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        self._append({"op": "begin", "change": change, "kind": kind, "time": now.isoformat(timespec="seconds"),
                      "note": note})
        return change

    def record_meta_many(self, change: str, items: list[tuple[dict, bytes, bytes]]) -> None:
        """Keep the old bytes and entry of each file, with one fsync; call before the renames.

        The old bytes (head before the audio region, tail after it) ride in the record, base64."""
        if items:
            self._append(*({"op": "meta", "change": change, "head_len": len(head), "tail_len": len(tail),
                            "old_bytes": base64.b64encode(head + tail).decode("ascii"), **entry}
                           for entry, head, tail in items))

    def record_rename(self, change: str, entry: dict) -> None:
        self._append({"op": "rename", "change": change, **entry})

    # ------------------------------------------------------------ reading

    def _records(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            for raw in f:
                try:
                    yield json.loads(raw)
                except ValueError:
                    continue  # the torn tail of an interrupted append

    def changes(self) -> list[Change]:
        """All changes, oldest first, with their entries."""
        found: dict[str, Change] = {}
        for r in self._records():
            cid = r.get("change")
            if r.get("op") == "begin":
                found[cid] = Change(id=cid, kind=r.get("kind", ""), time=r.get("time", ""))
            elif cid in found and r.get("op") in ("meta", "rename"):
                found[cid].entries.append(r)
            elif cid in found and r.get("op") == "undone":
                found[cid].undone = True
        return list(found.values())

    def get(self, change: str | None) -> Change:
        """The named change, or the newest one not undone yet."""
        changes = self.changes()
        if change is None:
            live = [c for c in changes if not c.undone and c.entries]
            if not live:
                raise CannotWrite("nothing to undo")
            return live[-1]
        for c in changes:
            if c.id == change:
                return c
        raise CannotWrite(f"no change {change!r} in the journal (see `sfx-index undo --list`)")

    # ------------------------------------------------------------ undo

    def undo(self, change: Change) -> list[dict]:
        """Restore every file of a change, newest entry first; one result row per entry."""
        results = []
        for entry in reversed(change.entries):
            try:
                row = {"path": entry.get("path") or entry.get("old_path")}
                if entry["op"] == "meta":
                    row["status"] = self._undo_meta(entry)
                else:
                    row["status"] = self._undo_rename(entry)
                    if row["status"] == "renamed back":
                        row["moves"] = [[entry["new_path"], entry["old_path"]]]
                results.append(row)
            except CannotWrite as e:
                results.append({"path": entry.get("path") or entry.get("old_path"), "status": "failed",
                                "reason": str(e)})
        if all(r["status"] != "failed" for r in results):
            self._append({"op": "undone", "change": change.id})
        return results

    def _undo_meta(self, e: dict) -> str:
        path = e["path"]
        if not os.path.exists(path):
            raise CannotWrite("file not found (renamed or moved since? undo the later change first)")
        now = file_hash(path)
        if now == e["old_hash"]:
            return "already as before"
        if now != e["new_hash"]:
            raise CannotWrite("the file changed since this write (another tool?); left as it is")
        old = base64.b64decode(e["old_bytes"])
        head, tail = old[: e["head_len"]], old[e["head_len"]:]
        before = os.stat(path)
        off, length = e["audio_new_off"], e["audio_len"]

        def fill(tmp: str) -> None:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                dst.write(head)
                src.seek(off)
                left = length
                while left:
                    block = src.read(min(1 << 20, left))
                    if not block:
                        raise CannotWrite("file shorter than recorded")
                    dst.write(block)
                    left -= len(block)
                dst.write(tail)
            if file_hash(tmp) != e["old_hash"]:
                raise CannotWrite("restored bytes do not match the original; left as it is")

        replace_file(path, fill, before)
        return "restored"

    def _undo_rename(self, e: dict) -> str:
        moves = [(e["new_path"], e["old_path"])] + [(n, o) for o, n in e.get("sidecars", [])]
        if os.path.exists(e["old_path"]) and not os.path.exists(e["new_path"]):
            return "already as before"
        for new, old in moves:
            if os.path.exists(new):
                rename_no_replace(new, old)
        return "renamed back"


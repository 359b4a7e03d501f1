"""Plan and apply metadata writes to single files: preview rows first, then atomic, journaled writes.

`plan_file(path, values)` reads what the file holds at every place the mapping table names
and returns the field changes (old -> new) without writing anything. `write_files` writes
planned files: each new version goes to a temporary copy, its audio region is proven
identical to the old one, the journal keeps the old bytes, then the copy is renamed over
the original.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field

from . import riff, tags
from .atomic import Staged, check_writable, commit, discard, file_hash, fsync_dir, open_locked, region_hash, stage
from ..config import UserError
from .errors import CannotWrite
from .fields import MAPPING, fit_bext_description, normalise
from .journal import Journal

_BLOCK = 1 << 20


@dataclass
class FieldChange:
    field: str
    old: str
    new: str


@dataclass
class FilePlan:
    path: str
    family: str = ""  # "riff" | "vorbis" | "id3"
    changes: list[FieldChange] = field(default_factory=list)
    places: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None  # why the file is left untouched

    def rows(self) -> list[dict]:
        if self.skipped:
            return [{"path": self.path, "field": "", "old": "", "new": "", "status": "skipped", "reason": self.skipped}]
        return [{"path": self.path, **asdict(c), "status": "planned"} for c in self.changes]


def family_of(path: str, f) -> tuple[str, str]:
    """("riff", "WAV") for RIFF/RF64/BW64 WAVE; ("vorbis"|"id3", mutagen type) for tagged formats."""
    head = f.read(12)
    f.seek(0)
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "riff", "WAV"
    if head[:4] in (b"RIFF", b"RIFX", b"riff"):
        raise CannotWrite("unsupported RIFF variant (only WAVE files are written)")
    m, fam = tags.open_tags(path)
    return fam, type(m).__name__


def places_for(family: str, name: str) -> list[str]:
    p = MAPPING[name]
    if family == "riff":
        return [f"{k}:{v}" for k, v in (("ixml", p.ixml), ("bext", p.bext), ("info", p.info)) if v]
    value = getattr(p, family)
    return [f"{family}:{value}"] if value else []


def _target(place: str, new: str) -> str:
    if place.startswith("bext:"):
        return fit_bext_description(new).split(b"\x00", 1)[0].decode("utf-8").strip()
    return new


def plan_file(path: str | os.PathLike, values: dict[str, str]) -> FilePlan:
    """What writing these field values would change in this file (nothing is written)."""
    real = os.path.realpath(os.fspath(path))
    plan = FilePlan(path=real)
    try:
        values = normalise(values)
        st = check_writable(real)
        with open(real, "rb") as f:
            plan.family, kind = family_of(real, f)
            if plan.family == "riff":
                current = riff.current_values(f, riff.read_layout(f, st.st_size))
            else:
                m, _ = tags.open_tags(real)
                all_places = [p for n in values for p in places_for(plan.family, n)]
                current = tags.current_values(m, plan.family, all_places)
        for name, new in values.items():
            places = places_for(plan.family, name)
            differ = [p for p in places if current.get(p, "") != _target(p, new)]
            if not differ:
                continue
            old = next((current[p] for p in places if current.get(p)), "")
            plan.changes.append(FieldChange(name, old, new))
            plan.places.update({p: new for p in places})
    except (CannotWrite, UserError) as e:
        plan.skipped = str(e)
    except OSError as e:
        plan.skipped = f"cannot read: {e.strerror or e}"
    return plan


def _common_suffix(a_path: str, b_path: str) -> int:
    """Length of the longest common byte suffix of two files (Ogg: audio pages after the tags)."""
    n = 0
    with open(a_path, "rb") as a, open(b_path, "rb") as b:
        la, lb = a.seek(0, 2), b.seek(0, 2)
        while n < min(la, lb):
            step = min(_BLOCK, la - n, lb - n)
            a.seek(la - n - step)
            b.seek(lb - n - step)
            x, y = a.read(step), b.read(step)
            if x == y:
                n += step
                continue
            i = 0
            while i < step and x[step - 1 - i] == y[step - 1 - i]:
                i += 1
            return n + i
    return n


def _same_decoded_audio(a_path: str, b_path: str) -> bool:
    import numpy as np
    import soundfile as sf

    with sf.SoundFile(a_path) as a, sf.SoundFile(b_path) as b:
        if (a.frames, a.channels, a.samplerate) != (b.frames, b.channels, b.samplerate):
            return False
        while True:
            x, y = a.read(65536, dtype="float32"), b.read(65536, dtype="float32")
            if len(x) == 0 and len(y) == 0:
                return True
            if x.shape != y.shape or not np.array_equal(x, y):
                return False


@dataclass
class Pending:
    """A staged new version of one file, its journal record, and the lock held on it."""

    staged: Staged
    entry: dict
    head: bytes
    tail: bytes
    lock: object


def stage_plan(plan: FilePlan) -> Pending:
    """Lock the file, write its new version beside it (fsynced) and prove the audio unchanged.

    The caller journals the Pending, then commits it (or discards it) and closes its lock."""
    if plan.skipped:
        raise CannotWrite(plan.skipped)
    path = plan.path
    f = open_locked(path)
    try:
        before = check_writable(path)
        old_hash = file_hash(path)
        fam, kind = family_of(path, f)
        if fam != plan.family:
            raise CannotWrite("the file changed since the preview; run the command again")
        entry = {"path": path, "old_hash": old_hash, "fields": [asdict(c) for c in plan.changes]}
        where: dict[str, int] = {}

        def fill(tmp: str) -> None:
            if fam == "riff":
                layout = riff.read_layout(f, before.st_size)
                replace, append = riff.plan_edits(f, layout, plan.places)
                with open(tmp, "wb") as dst:
                    w = riff.write_copy(f, dst, layout, replace, append)
                a, length = w.audio_old
                new_off = w.audio_new_off
                with open(tmp, "rb") as t:
                    if region_hash(t, new_off, length) != w.audio_hash:
                        raise CannotWrite("audio bytes differ after the edit; nothing written")
            else:
                region = tags.audio_region(f, before.st_size, kind)
                shutil.copyfile(path, tmp)
                try:
                    tags.write_tags(tmp, plan.places)
                except CannotWrite:
                    raise
                except Exception as e:  # mutagen's errors name the damaged structure
                    raise CannotWrite(f"tag write failed: {e}") from None
                new_size = os.path.getsize(tmp)
                if region is not None:
                    a, length = region
                    with open(tmp, "rb") as t:
                        new_region = tags.audio_region(t, new_size, kind)
                        same = new_region is not None and new_region[1] == length and (
                            region_hash(f, a, length) == region_hash(t, new_region[0], length))
                    if not same:
                        raise CannotWrite("audio bytes differ after the tag edit; nothing written")
                    new_off = new_region[0]
                else:  # Ogg: the audio pages after the comment header, when mutagen kept them
                    length = _common_suffix(path, tmp)
                    a, new_off = before.st_size - length, new_size - length
                    if not _same_decoded_audio(path, tmp):
                        raise CannotWrite("decoded audio differs after the tag edit; nothing written")
            entry.update(new_hash=file_hash(tmp), audio_old_off=a, audio_len=length, audio_new_off=new_off)
            where.update(a=a, length=length)

        staged = stage(path, fill, before)
        f.seek(0)
        head = f.read(where["a"])
        f.seek(where["a"] + where["length"])
        tail = f.read()
        return Pending(staged, entry, head, tail, f)
    except BaseException:
        f.close()
        raise


GROUP = 64  # files staged per journal fsync (group commit)


def write_files(plans: list[FilePlan], journal: Journal, *, kind: str = "write-meta",
                progress=None) -> tuple[str | None, list[dict]]:
    """Apply many plans under one change id; one result row per file (bad files never abort).

    Files go in groups: each file's new version is staged (fsynced) beside it, the group's
    journal records are appended with one fsync, then each file is renamed into place. A
    record is always on disk before its rename; folders are fsynced once at the end.
    """
    todo = [p for p in plans if p.places and not p.skipped]
    change = journal.begin(kind, note=f"{len(todo)} files") if todo else None
    rows = {id(p): {"path": p.path, "fields": [c.field for c in p.changes]} for p in plans}
    for p in plans:
        if p.skipped:
            rows[id(p)].update(status="skipped", reason=p.skipped)
        elif not p.places:
            rows[id(p)]["status"] = "unchanged"
    folders: set[str] = set()
    for start in range(0, len(todo), GROUP):
        pending: list[tuple[FilePlan, Pending]] = []
        try:
            for plan in todo[start : start + GROUP]:
                try:
                    pending.append((plan, stage_plan(plan)))
                except CannotWrite as e:
                    rows[id(plan)].update(status="skipped", reason=str(e))
            try:
                journal.record_meta_many(change, [(p.entry, p.head, p.tail) for _, p in pending])
            except OSError as e:
                for plan, p in pending:
                    discard(p.staged)
                    rows[id(plan)].update(status="skipped", reason=f"journal not written ({e.strerror}); file unchanged")
                pending = []
            for plan, p in pending:
                try:
                    commit(p.staged, sync_dir=False)
                    rows[id(plan)]["status"] = "written"
                    folders.add(os.path.dirname(plan.path))
                except CannotWrite as e:
                    rows[id(plan)].update(status="skipped", reason=str(e))
        finally:
            for _, p in pending:
                discard(p.staged)  # a no-op once renamed
                p.lock.close()
        if progress is not None:
            progress(len(todo[start : start + GROUP]))
    for folder in sorted(folders):
        fsync_dir(folder)
    return change, [rows[id(p)] for p in plans]

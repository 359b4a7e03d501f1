"""UCS file names: propose `CatID_FXName_CreatorID_SourceID[_UserData].ext`, rename with a journal.

A name is proposed from a CatID checked against the UCS list, an FX name (given, or taken from
the file's UCS name, iXML FXNAME, INFO INAM, tag title, bext description or its current
name), and CreatorID / SourceID (given, or kept from a UCS name the file already has). Each
block is made safe on Windows, macOS and Linux (no reserved characters or names, no trailing
dot or space, no underscore inside a block), and names are de-duplicated within a folder
(case-insensitively, as macOS and Windows compare them). Companion files that share the stem
(`take.wav.reapeaks`, `take.pkf`, `take.txt`) follow when asked.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field

from ..metadata import parse_ucs_name, read_metadata, ucs_table
from .atomic import rename_no_replace
from .errors import CannotWrite
from .journal import Journal

SIDECAR_EXTS = (".reapeaks", ".pkf", ".txt", ".asd", ".sfk", ".peak")
FX_NAME_MAX = 40  # characters of the FXName block; UCS asks for a short phrase
NAME_MAX_BYTES = 240  # below the 255-byte limit of common filesystems, room for " 2" etc.
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_BAD = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')


def safe_block(text: str, limit: int = 64) -> str:
    """One UCS block, safe in a file name on every platform: no separators, no reserved chars."""
    text = unicodedata.normalize("NFC", text or "")
    text = _BAD.sub(" ", text).replace("_", " ")
    text = re.sub(r"\s+", " ", text).strip(" .")
    text = text[:limit].rstrip(" .")
    return text


def fx_name_for(path: str, meta: dict[str, str] | None = None) -> str:
    """The best FX name the file already carries, else a cleaned-up form of its current name."""
    ucs = parse_ucs_name(path)
    if ucs is not None and ucs.fx_name:
        return safe_block(ucs.fx_name, FX_NAME_MAX)
    meta = read_metadata(path) if meta is None else meta
    for key in ("ixml.user.fxname", "info.INAM", "tag.title", "bext.description"):
        value = (meta.get(key) or "").split("\n")[0]
        if value and "=" not in value:  # recorders put "sSPEED=..." lists in bext Description
            return safe_block(value, FX_NAME_MAX)
    stem = os.path.splitext(os.path.basename(path))[0]
    return safe_block(re.sub(r"[-_.]+", " ", stem), FX_NAME_MAX) or "Untitled"


@dataclass
class RenamePlan:
    path: str
    new_path: str = ""
    sidecars: list[tuple[str, str]] = field(default_factory=list)
    skipped: str | None = None

    def row(self) -> dict:
        row = {"path": self.path, "new_path": self.new_path, "status": "skipped" if self.skipped else "planned"}
        if self.skipped:
            row["reason"] = self.skipped
        if self.sidecars:
            row["sidecars"] = [n for _, n in self.sidecars]
        return row


def ucs_name(cat_id: str, fx_name: str, creator: str, source: str, user_data: str = "", ext: str = "") -> str:
    parts = [cat_id, fx_name, creator, source] + ([user_data] if user_data else [])
    return "_".join(parts) + ext


def _sidecars(path: str) -> list[str]:
    folder, name = os.path.split(path)
    stem = os.path.splitext(name)[0]
    out = []
    for ext in SIDECAR_EXTS:
        for cand in (name + ext, stem + ext):
            full = os.path.join(folder, cand)
            if os.path.isfile(full) and full not in out:
                out.append(full)
    return out


def plan_renames(items: list[tuple[str, str, str | None]], *, creator: str | None = None,
                 source: str | None = None, with_sidecars: bool = False) -> list[RenamePlan]:
    """items: (path, cat_id, fx_name or None) -> one RenamePlan each (nothing is renamed)."""
    table = ucs_table()
    lower = {c.lower(): c for c in table}
    taken: dict[str, set[str]] = {}  # folder -> lower-case names present or planned
    plans = []
    for path, cat_id, fx in items:
        path = os.path.abspath(path)
        plan = RenamePlan(path)
        plans.append(plan)
        folder, name = os.path.split(path)
        cat = lower.get((cat_id or "").lower())
        old = parse_ucs_name(name)
        if cat is None:
            plan.skipped = f"no UCS CatID ({cat_id!r} is not in the UCS list)" if cat_id else "no UCS category"
            continue
        cre = safe_block(creator or (old.creator_id if old else ""), 32)
        src = safe_block(source or (old.source_id if old else ""), 32)
        if not cre or not src:
            plan.skipped = "no CreatorID/SourceID: pass --creator and --source"
            continue
        fx_name = safe_block(fx, FX_NAME_MAX) if fx else fx_name_for(path)
        user_data = safe_block(old.user_data, 64) if old else ""
        ext = os.path.splitext(name)[1]
        if folder not in taken:
            taken[folder] = {n.lower() for n in os.listdir(folder)}
        names = taken[folder]
        candidate = ucs_name(cat, fx_name, cre, src, user_data, ext)
        if candidate == name:
            plan.new_path = path
            continue
        n = 2
        while candidate.lower() in names and candidate.lower() != name.lower():
            candidate = ucs_name(cat, f"{fx_name} {n}", cre, src, user_data, ext)
            n += 1
        if len(candidate.encode("utf-8")) > NAME_MAX_BYTES:
            plan.skipped = "the UCS name would be too long for the file system"
            continue
        stem = os.path.splitext(candidate)[0]
        if stem.split(".")[0].upper() in _RESERVED:
            plan.skipped = "the UCS name is reserved on Windows"
            continue
        names.discard(name.lower())
        names.add(candidate.lower())
        plan.new_path = os.path.join(folder, candidate)
        if with_sidecars:
            old_stem = os.path.splitext(name)[0]
            for side in _sidecars(path):
                side_name = os.path.basename(side)
                tail = side_name[len(name):] if side_name.startswith(name + ".") else side_name[len(old_stem):]
                new_side = (candidate if side_name.startswith(name + ".") else stem) + tail
                if new_side.lower() in names:
                    plan.skipped = f"sidecar {new_side} would overwrite a file"
                    break
                names.add(new_side.lower())
                plan.sidecars.append((side, os.path.join(folder, new_side)))
    return plans


def apply_renames(plans: list[RenamePlan], journal: Journal) -> tuple[str | None, list[dict]]:
    """Rename planned files (and their sidecars), journaling each before it happens."""
    todo = [p for p in plans if not p.skipped and p.new_path and p.new_path != p.path]
    change = journal.begin("rename-ucs", note=f"{len(todo)} files") if todo else None
    rows = []
    for plan in plans:
        row = plan.row()
        if plan in todo:
            try:
                if os.path.lexists(plan.new_path):
                    raise CannotWrite(f"{os.path.basename(plan.new_path)} already exists")
                journal.record_rename(change, {"old_path": plan.path, "new_path": plan.new_path,
                                               "sidecars": plan.sidecars})
                rename_no_replace(plan.path, plan.new_path)
                for old, new in plan.sidecars:
                    rename_no_replace(old, new)
                row["status"] = "renamed"
            except (CannotWrite, OSError) as e:
                row.update(status="skipped", reason=str(e))
        elif not plan.skipped:
            row["status"] = "unchanged"
        rows.append(row)
    return change, rows

"""Where the values to write come from: tag sets, review decisions, trained heads, a CSV, the command line.

Each source gives {absolute path: {field: value}}. Tag-based sources give the UCS fields of the
best-scoring tag that has a CatID and the tag labels as keywords (descriptions are only taken
from them when asked for with --fields). Only the catalog's public API is used.
"""

from __future__ import annotations

import csv
import os

from ..config import UserError
from .fields import normalise

MAX_KEYWORDS = 10


def _from_rows(rows, *, min_score: float) -> dict[str, dict[str, str]]:
    """Tag rows (best first) -> per-path cat_id (top tag with one), keywords, description."""
    per: dict[str, list] = {}
    for r in rows:
        if r.decision == "rejected" or (r.score < min_score and r.decision != "accepted"):
            continue
        per.setdefault(r.path, []).append(r)
    out: dict[str, dict[str, str]] = {}
    for path, tags in per.items():
        tags.sort(key=lambda r: (r.decision != "accepted", -r.score))
        values: dict[str, str] = {}
        top_ucs = next((t for t in tags if t.cat_id), None)
        if top_ucs is not None:
            values["cat_id"] = top_ucs.cat_id
        labels: list[str] = []
        for t in tags:
            if t.label.lower() not in (x.lower() for x in labels):
                labels.append(t.label)
        values["keywords"] = ", ".join(labels[:MAX_KEYWORDS])
        values["description"] = tags[0].label
        out[path] = values
    return out


def from_catalog(cat, spec: str, *, min_score: float = 0.0) -> dict[str, dict[str, str]]:
    """`tags:SET`, `review` or `head:NAME` read from the catalog."""
    kind, _, name = spec.partition(":")
    if kind == "review":
        rows = [r for r in cat.tagged_files(include_rejected=False) if r.decision == "accepted"]
        if not rows:
            raise UserError("no accepted review decisions yet: review tags with `sfx-search tag review`")
        return _from_rows(rows, min_score=0.0)
    if kind in ("tags", "head") and name:
        sets = {(s.set_name, s.source) for s in cat.tag_sets()}
        want = "head" if kind == "head" else None
        if not any(s == name and (want is None or src == want) for s, src in sets):
            hint = f"sfx-search tag --head {name}" if kind == "head" else "sfx-search tag --name SET ..."
            raise UserError(f"no {'head predictions' if want else 'tag set'} {name!r} in the catalog: run `{hint}` first")
        rows = [r for r in cat.tagged_files(set_name=name, include_rejected=False)
                if r.set_name == name or r.source == "user"]
        return _from_rows(rows, min_score=min_score)
    raise UserError(f"unknown source {spec!r}: use tags:SET, review, head:NAME or csv:FILE")


def from_files(paths: list[str]) -> dict[str, dict[str, str]]:
    """CatID and FX name the files themselves carry (what write-meta wrote, or another tool)."""
    from ..metadata import read_metadata

    out: dict[str, dict[str, str]] = {}
    for path in paths:
        meta = read_metadata(path)
        cat_id = meta.get("ixml.user.catid") or meta.get("tag.catid") or meta.get("ucs.cat_id")
        if cat_id:
            fx = meta.get("ixml.user.fxname") or meta.get("info.INAM") or meta.get("tag.title")
            out[path] = {"cat_id": cat_id, **({"fx_name": fx} if fx else {})}
    return out


def from_csv(path: str) -> dict[str, dict[str, str]]:
    """Rows `path, field, value` (a header row is optional); relative paths are from the CSV's folder."""
    out: dict[str, dict[str, str]] = {}
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for i, row in enumerate(csv.reader(f), 1):
                if not row or (i == 1 and [c.strip().lower() for c in row[:3]] == ["path", "field", "value"]):
                    continue
                if len(row) < 3:
                    raise UserError(f"{path}:{i}: expected 3 columns path,field,value")
                file = os.path.normpath(os.path.join(base, row[0].strip()))
                out.setdefault(file, {})[row[1].strip()] = row[2]
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    for file, values in out.items():
        out[file] = normalise(values)
    return out


def from_set(pairs: tuple[str, ...]) -> dict[str, str]:
    """("description=Door creak", "cat_id=DOORWood") -> checked {field: value}."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UserError(f"--set takes FIELD=VALUE, got {pair!r}")
        values[key] = value
    return normalise(values)

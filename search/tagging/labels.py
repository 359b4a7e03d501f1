"""Label sets and prompt templates: what gets embedded for each label, and how it is ensembled.

A label set is a list of `Label(name, text, cat_id)`: `name` is what is stored and shown,
`text` what the text tower embeds (a longer description when the labels file gives one),
`cat_id` the UCS CatID when the label comes from the UCS taxonomy.

Prompt ensembling: every label's text goes through every template ("the sound of {}", ...);
the unit vectors of one label's prompts are averaged and renormalised into one vector.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from indexer.config import UserError
from indexer.resources import data_file

# In the installed data package (indexer.resources), whatever the install.
DEFAULT_PROMPTS = ("prompts", "default.txt")
UCS_CSV = ("taxonomies", "ucs.csv")
TAXONOMIES = ("ucs",)


@dataclass(frozen=True)
class Label:
    name: str
    text: str
    cat_id: str | None = None


def _lines(path: Path) -> list[str]:
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    return [ln.strip() for ln in raw.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def parse_label_lines(lines: Sequence[str]) -> list[Label]:
    """'label' or 'label: description' lines -> labels (first occurrence of a name wins)."""
    out: dict[str, Label] = {}
    for ln in lines:
        name, sep, desc = ln.partition(":")
        name, desc = name.strip(), desc.strip()
        if not name:
            continue
        out.setdefault(name.lower(), Label(name, desc if sep and desc else name))
    return list(out.values())


def load_labels(spec: str) -> list[Label]:
    """A labels file (one per line) or an inline comma-separated list "a,b,c"."""
    p = Path(spec).expanduser()
    try:
        is_file = p.is_file()
    except OSError:  # a long inline list is no file name ("File name too long")
        is_file = False
    if is_file:
        labels = parse_label_lines(_lines(p))
        where = str(p)
    else:
        if "," not in spec and ("/" in spec or spec.endswith(".txt")):
            raise UserError(f"labels file '{spec}' does not exist; give a file or a list like \"rain,wind,thunder\"")
        labels = parse_label_lines([s for s in spec.split(",")])
        where = "the --labels list"
    if not labels:
        raise UserError(f"no labels in {where}; give one label per line or \"a,b,c\"")
    return labels


def ucs_labels(only: Sequence[str] = ()) -> list[Label]:
    """The 752 UCS categories: name 'CATEGORY-SUBCATEGORY', text its description, cat_id the CatID.

    `only` restricts to these CatIDs (case-insensitive), e.g. from a labels file of CatIDs.
    """
    with data_file(*UCS_CSV).open("r", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    labels = [
        Label(f"{r['category']}-{r['subcategory']}", r.get("description") or f"{r['category']} {r['subcategory']}".lower(),
              r["cat_id"])
        for r in rows
    ]
    if only:
        want = {s.strip().lower() for s in only}
        labels = [lab for lab in labels if lab.cat_id.lower() in want or lab.name.lower() in want]
        if not labels:
            raise UserError("none of the given labels is a UCS CatID (e.g. DOORWood); see data/taxonomies/ucs.csv")
    return labels


def label_set(labels: str | None = None, taxonomy: str | None = None) -> list[Label]:
    """The labels of a `tag` run: --labels, --taxonomy, or --taxonomy restricted by --labels."""
    if taxonomy:
        if taxonomy.lower() not in TAXONOMIES:
            raise UserError(f"unknown taxonomy '{taxonomy}'; available: {', '.join(TAXONOMIES)}")
        return ucs_labels([lab.name for lab in load_labels(labels)] if labels else ())
    if not labels:
        raise UserError('give --labels FILE or --labels "a,b,c", or --taxonomy ucs')
    return load_labels(labels)


def class_label(folder_name: str) -> Label:
    """A label from a folder or ESC-50 category name: 'chirping_birds' -> text 'chirping birds'."""
    return Label(folder_name, folder_name.replace("_", " ").replace("-", " ").strip())


# ---------------------------------------------------------------------- templates


def load_templates(prompts: Sequence[str] = ()) -> list[str]:
    """Templates from --prompt values (a template with {} or a file of them); default set otherwise."""
    if not prompts:
        default = data_file(*DEFAULT_PROMPTS)
        return _templates_from(_lines(default), "data/prompts/default.txt")
    out: list[str] = []
    for p in prompts:
        path = Path(p).expanduser()
        if "{}" not in p and path.is_file():
            out += _templates_from(_lines(path), path)
        elif "{}" in p:
            out.append(p)
        else:
            raise UserError(f"--prompt '{p}' has no {{}} for the label and is not a file; e.g. --prompt \"the sound of {{}}\"")
    return list(dict.fromkeys(out))


def _templates_from(lines: list[str], where) -> list[str]:
    bad = [ln for ln in lines if "{}" not in ln]
    if bad:
        raise UserError(f"template '{bad[0]}' in {where} has no {{}} where the label goes")
    if not lines:
        raise UserError(f"no templates in {where}")
    return lines


def prompts_for(labels: Sequence[Label], templates: Sequence[str]) -> list[str]:
    return [t.replace("{}", lab.text) for lab in labels for t in templates]


def ensemble(vectors: np.ndarray, n_labels: int, n_templates: int) -> np.ndarray:
    """(n_labels * n_templates, d) prompt vectors -> (n_labels, d): normalise, average, renormalise."""
    v = np.asarray(vectors, np.float32).reshape(n_labels, n_templates, -1)
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    m = v.mean(axis=1)
    return (m / np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def label_vectors(
    labels: Sequence[Label], templates: Sequence[str], text_vectors: Callable[[list[str]], np.ndarray]
) -> np.ndarray:
    """One unit vector per label from its ensembled prompts (`text_vectors` may cache)."""
    if not labels:
        raise UserError("the label set is empty")
    return ensemble(text_vectors(prompts_for(labels, templates)), len(labels), len(templates))

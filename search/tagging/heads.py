"""Trained heads: logistic regression on frozen file vectors, from labels a library already has.

A file's vector is the renormalised mean of its stored chunk vectors (no model call). Labels
come from folder names (ROOT/<class>/.../file), UCS CatIDs in file names, or a CSV of
path,label. Training reports stratified k-fold accuracy and macro-F1 with the zero-shot
classifier (class names through the prompt templates) scored on the same test folds beside
it, then fits on everything and saves the head in the catalog (joblib bytes, with its
classes and the model key of the vector space it was trained in).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from indexer.config import UserError

from .labels import Label, class_label, label_vectors, ucs_labels
from .scoring import group_starts, score_blocks

log = logging.getLogger(__name__)

MIN_PER_CLASS = 2
DEFAULT_FOLDS = 5


@dataclass
class Head:
    name: str
    model_key: str
    labels: list[Label]
    pipeline: object

    @property
    def classes(self) -> list[str]:
        return [lab.name for lab in self.labels]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, classes) probabilities, columns in `labels` order."""
        p = self.pipeline.predict_proba(np.asarray(X, np.float32))
        order = [list(self.pipeline.classes_).index(i) for i in range(len(self.labels))]
        return p[:, order].astype(np.float32)

    def to_bytes(self) -> bytes:
        import joblib

        buf = io.BytesIO()
        joblib.dump({"pipeline": self.pipeline, "labels": [(x.name, x.text, x.cat_id) for x in self.labels],
                     "model_key": self.model_key}, buf)
        return buf.getvalue()


def make_classifier(seed: int = 0):
    """Standardise then multinomial logistic regression: unit CLAP vectors differ in small
    coordinates, so scaling lets one C suit any checkpoint."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


# ---------------------------------------------------------------------- file vectors


def file_vectors(catalog, file_ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(file ids, (files, d) renormalised mean chunk vectors), for all or some indexed files."""
    from .tagger import catalog_blocks

    from .scoring import regroup

    fids_out, vec_out = [], []
    keep = None if file_ids is None else set(int(i) for i in file_ids)
    for fids, vecs in regroup(catalog_blocks(catalog, keep)):
        u, starts = group_starts(fids)
        s = np.add.reduceat(vecs, starts, axis=0)
        s /= np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-12)
        fids_out.append(u)
        vec_out.append(s)
    if not fids_out:
        dim = catalog.get_model().dim if catalog.get_model() else 512
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    f = np.concatenate(fids_out)
    v = np.concatenate(vec_out)
    return f, v.astype(np.float32)


# ---------------------------------------------------------------------- labels a library has


def labels_from_folders(catalog, root: str | Path) -> dict[int, str]:
    """file id -> the name of the first folder below ROOT that holds it (ROOT/<class>/...)."""
    root = Path(root).expanduser().resolve()
    out = {}
    for fid, rpath, rel in catalog.indexed_files():
        p = Path(rpath) / rel
        try:
            parts = p.relative_to(root).parts
        except ValueError:
            continue
        if len(parts) >= 2:
            out[fid] = parts[0]
    if not out:
        raise UserError(f"no indexed file lies in a class folder under {root} (ROOT/<class>/file); "
                        "index it first with 'sfx-index build'")
    return out


def labels_from_ucs_names(catalog) -> dict[int, str]:
    from indexer.metadata import parse_ucs_name

    out = {}
    for fid, _root, rel in catalog.indexed_files():
        u = parse_ucs_name(rel.rsplit("/", 1)[-1])
        if u is not None:
            out[fid] = u.cat_id
    if not out:
        raise UserError("no indexed file has a UCS name (CatID_FXName_CreatorID_SourceID.wav)")
    return out


def labels_from_csv(catalog, path: str | Path) -> dict[int, str]:
    """path,label rows (header optional); relative paths are relative to the CSV's folder."""
    path = Path(path).expanduser()
    try:
        rows = list(csv.reader(path.open(newline="", encoding="utf-8-sig")))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    wanted = {}
    for r in rows:
        if len(r) >= 2 and r[0].strip() and r[1].strip():
            p = Path(r[0].strip()).expanduser()
            p = p if p.is_absolute() else path.parent / p
            wanted[str(p.resolve())] = r[1].strip()
    ids = catalog.file_ids_for_paths(list(wanted))
    if not ids:
        raise UserError(f"none of the paths in {path} is indexed; index them with 'sfx-index build' first")
    if len(ids) < len(wanted):
        log.warning("%d of %d CSV paths are not indexed; skipped", len(wanted) - len(ids), len(wanted))
    return {fid: wanted[p] for p, fid in ids.items()}


def class_labels(classes: Sequence[str]) -> list[Label]:
    """Labels for class names: UCS CatIDs get their description and CatID, others their name."""
    ucs = {lab.cat_id: lab for lab in ucs_labels()}
    return [Label(c, ucs[c].text, c) if c in ucs else class_label(c) for c in classes]


def drop_rare(y: dict[int, str], minimum: int = MIN_PER_CLASS) -> dict[int, str]:
    counts: dict[str, int] = {}
    for c in y.values():
        counts[c] = counts.get(c, 0) + 1
    rare = sorted(c for c, n in counts.items() if n < minimum)
    if rare:
        log.warning("skipping %d classes with fewer than %d files: %s", len(rare), minimum, ", ".join(rare[:10]))
    return {f: c for f, c in y.items() if counts[c] >= minimum}


# ---------------------------------------------------------------------- cross-validation


def metrics(y_true: np.ndarray, scores: np.ndarray, n_classes: int) -> dict:
    """top-1 / top-5 accuracy and macro-F1 of per-class scores (columns = class index)."""
    from sklearn.metrics import f1_score

    pred = scores.argmax(axis=1)
    k = min(5, n_classes)
    top5 = np.argsort(-scores, axis=1)[:, :k]
    return {
        "top1": round(float((pred == y_true).mean()), 4),
        "top5": round(float((top5 == y_true[:, None]).any(axis=1).mean()), 4),
        "macro_f1": round(float(f1_score(y_true, pred, average="macro", labels=np.arange(n_classes), zero_division=0)), 4),
    }


def cross_validate(
    X: np.ndarray, y: np.ndarray, n_classes: int, *, zero_shot: np.ndarray | None = None,
    folds: int = DEFAULT_FOLDS, groups: np.ndarray | None = None, seed: int = 0,
) -> dict:
    """Stratified k-fold (or the given fold numbers) for the head, zero-shot on the same folds."""
    from sklearn.model_selection import StratifiedKFold

    if groups is not None:
        splits = [(np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in np.unique(groups)]
    else:
        k = int(min(folds, np.bincount(y, minlength=n_classes)[np.unique(y)].min()))
        if k < 2:
            raise UserError(f"k-fold needs at least {MIN_PER_CLASS} files per class")
        splits = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y))
    head_scores = np.zeros((len(y), n_classes), np.float32)
    for train, test in splits:
        clf = make_classifier(seed)
        clf.fit(X[train], y[train])
        p = clf.predict_proba(X[test])
        head_scores[np.ix_(test, clf.classes_)] = p
    out = {"folds": len(splits), "files": int(len(y)), "classes": int(n_classes), "head": metrics(y, head_scores, n_classes)}
    if zero_shot is not None:
        out["zero_shot"] = metrics(y, zero_shot, n_classes)
    return out


def zero_shot_scores(catalog, file_ids: np.ndarray, labels: Sequence[Label], templates, text_vectors: Callable) -> np.ndarray:
    """(files, classes) max-over-chunks cosine of each file with each class's ensembled prompt."""
    from .tagger import catalog_blocks

    lv = label_vectors(labels, templates, text_vectors)
    pos = {int(f): i for i, f in enumerate(file_ids)}
    out = np.zeros((len(file_ids), len(labels)), np.float32)
    for fids, sc in score_blocks(catalog_blocks(catalog, set(pos)), lv, agg="max"):
        out[[pos[int(f)] for f in fids]] = sc
    return out


# ---------------------------------------------------------------------- train / save / load


def train_head(
    lib, y_by_file: dict[int, str], *, name: str, templates=None, folds: int = DEFAULT_FOLDS, save: bool = True,
) -> dict:
    """Cross-validate, fit on all labelled files, save the head as `name`; returns the report."""
    from .labels import load_templates

    y_by_file = drop_rare(y_by_file)
    classes = sorted(set(y_by_file.values()))
    if len(classes) < 2:
        raise UserError(f"training needs at least 2 classes with {MIN_PER_CLASS}+ files each; found {len(classes)}")
    fids, X = file_vectors(lib.catalog, list(y_by_file))
    cls_index = {c: i for i, c in enumerate(classes)}
    y = np.array([cls_index[y_by_file[int(f)]] for f in fids], np.int64)
    labels = class_labels(classes)
    templates = list(templates or load_templates())
    zs = zero_shot_scores(lib.catalog, fids, labels, templates, lib.text_vectors)
    report = cross_validate(X, y, len(classes), zero_shot=zs, folds=folds)
    clf = make_classifier()
    clf.fit(X, y)
    model_key = lib.catalog.get_model().key()
    head = Head(name, model_key, labels, clf)
    report.update(name=name, class_names=classes, train_accuracy=round(float((clf.predict(X) == y).mean()), 4))
    if save:
        lib.catalog.save_head(name, model_key, head.to_bytes(), json.dumps(report))
    return report


def load_head(catalog, name: str) -> Head:
    import joblib

    rec = catalog.load_head(name)
    if rec is None:
        have = ", ".join(h.name for h in catalog.heads()) or "none"
        raise UserError(f"no head named '{name}' in this index (saved heads: {have}); train one with 'sfx-search tag train'")
    model = catalog.get_model()
    if model is None or rec.model_key != model.key():
        raise UserError(f"head '{name}' was trained on another model's vectors; retrain it on this index")
    d = joblib.load(io.BytesIO(rec.blob))
    return Head(name, rec.model_key, [Label(*t) for t in d["labels"]], d["pipeline"])

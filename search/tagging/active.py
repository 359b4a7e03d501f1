"""Labels by confirmation (active learning): a person answers yes/no per file for one label;
a logistic head on the stored file vectors picks what to ask next.

The loop (docs/labels.md): the first candidates come from a text search for the label; once
the answers hold at least MIN_PER_SIDE yes and MIN_PER_SIDE no, a binary head is trained on
them (no model call: stored vectors) and the next candidates interleave the files it is
least sure of (probability nearest 0.5) with its best unconfirmed ones. Every answer is a
user decision, stored as `tag review` stores it (`catalog.record_decision`), so the answers
survive, `tag train --from-decisions` learns from them, and a saved head tags the library
with `sfx-search tag --head NAME`.

The selection and training are plain functions of arrays (`fit_head`, `select_next`,
`cross_validated`) so that scripts/bench_active.py simulates a person with the same code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence
import numpy as np

from indexer.config import UserError

from .labels import Label, ucs_labels

MIN_PER_SIDE = 2
CV_FOLDS = 5
OTHER_PREFIX = "not "  # the head's second class; `tag --head` stores only the label itself


# ---------------------------------------------------------------------- array functions


def make_binary_classifier(seed: int = 0):
    """Standardised logistic regression, classes weighted by their answer counts: a person's
    first answers are mostly yes or mostly no, and the head must not just echo the majority."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced",
                                                              random_state=seed))


def can_train(y: np.ndarray) -> bool:
    y = np.asarray(y, bool)
    return int(y.sum()) >= MIN_PER_SIDE and int((~y).sum()) >= MIN_PER_SIDE


def fit_head(X: np.ndarray, y: np.ndarray, seed: int = 0):
    clf = make_binary_classifier(seed)
    clf.fit(np.asarray(X, np.float32), np.asarray(y, bool).astype(np.int64))
    return clf


def positive_proba(clf, X: np.ndarray) -> np.ndarray:
    p = clf.predict_proba(np.asarray(X, np.float32))
    return p[:, list(clf.classes_).index(1)].astype(np.float32)


def select_next(p: np.ndarray, answered: np.ndarray, k: int, *, best_first: bool = False) -> list[tuple[int, str]]:
    """k unanswered indices: the least sure (|p - 0.5| smallest) interleaved with the best
    (p largest), each with why it was picked; ties go to the lower index. A person answers
    from the top, so the caller alternates `best_first` to have both kinds answered."""
    free = np.flatnonzero(~np.asarray(answered, bool))
    if not len(free) or k <= 0:
        return []
    queues = {"least sure": list(free[np.lexsort((free, np.abs(p[free] - 0.5)))]),
              "best": list(free[np.lexsort((free, -p[free]))])}
    order = ["best", "least sure"] if best_first else ["least sure", "best"]
    out: list[tuple[int, str]] = []
    seen: set[int] = set()
    at = {"least sure": 0, "best": 0}
    while len(out) < min(k, len(free)):
        for why in order:
            q = queues[why]
            while at[why] < len(q) and int(q[at[why]]) in seen:
                at[why] += 1
            if at[why] < len(q) and len(out) < k:
                out.append((int(q[at[why]]), why))
                seen.add(int(q[at[why]]))
    return out


def explore_order(X: np.ndarray, seed: int = 0) -> list[int]:
    """Every index once, round-robin over k-means clusters of the vectors (each cluster's
    members nearest its centre first, bigger clusters first): the first answers cover every
    kind of sound the library has, whatever the text search found."""
    import faiss

    n = len(X)
    if n == 0:
        return []
    k = int(max(1, min(32, n // 4)))
    X = np.ascontiguousarray(X, np.float32)
    km = faiss.Kmeans(X.shape[1], k, niter=20, seed=seed, verbose=False, min_points_per_centroid=1)
    km.train(X)
    dist, assign = km.index.search(X, 1)
    members: dict[int, list[int]] = {}
    for i in np.lexsort((np.arange(n), dist[:, 0])).tolist():
        members.setdefault(int(assign[i, 0]), []).append(i)
    clusters = sorted(members.values(), key=lambda m: (-len(m), m[0]))
    out: list[int] = []
    for depth in range(max(len(m) for m in clusters)):
        out += [m[depth] for m in clusters if depth < len(m)]
    return out


def select_cold(X: np.ndarray, answered: Sequence[int], y: np.ndarray, text_order: Sequence[int],
                explore: Sequence[int], k: int) -> list[tuple[int, str]]:
    """Candidates before a head can be trained (fewer than MIN_PER_SIDE answers on a side).

    Missing only "no" answers: the files least like the mean of the yes ones. Missing "yes"
    answers: the text search's next files (the files most like the yes ones once there is
    one) alternating with `explore_order`'s, so that a search that misses (a model that
    does not know the word) does not keep the person on one kind of sound."""
    done = set(int(i) for i in answered)
    y = np.asarray(y, bool)
    yes = [int(i) for i, v in zip(answered, y) if v]
    if len(yes) >= MIN_PER_SIDE:
        sim = X @ X[yes].mean(axis=0)
        return [(int(i), "unlike the yes") for i in np.argsort(sim, kind="stable") if int(i) not in done][:k]
    search = [int(i) for i in text_order]
    if yes:  # one yes found: its neighbours are the likeliest next yes, before the text search's
        search = [int(i) for i in np.argsort(-(X @ X[yes].mean(axis=0)), kind="stable")]
    queues = {"search": [i for i in search if i not in done], "explore": [int(i) for i in explore if int(i) not in done]}
    order = ["explore", "search"] if len(done) % 2 else ["search", "explore"]
    out: list[tuple[int, str]] = []
    seen: set[int] = set()
    at = {"search": 0, "explore": 0}
    while len(out) < k and any(at[w] < len(queues[w]) for w in order):
        for why in order:
            q = queues[why]
            while at[why] < len(q) and q[at[why]] in seen:
                at[why] += 1
            if at[why] < len(q) and len(out) < k:
                out.append((q[at[why]], why))
                seen.add(q[at[why]])
    return out


def cross_validated(X: np.ndarray, y: np.ndarray, folds: int = CV_FOLDS, seed: int = 0) -> dict | None:
    """Stratified k-fold figures of the head on the answers (None until each side has 2)."""
    from sklearn.metrics import f1_score, precision_score, recall_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = np.asarray(y, bool).astype(np.int64)
    if not can_train(y):
        return None
    k = int(min(folds, y.sum(), (1 - y).sum()))
    pred = cross_val_predict(make_binary_classifier(seed), np.asarray(X, np.float32), y,
                             cv=StratifiedKFold(n_splits=k, shuffle=True, random_state=seed))
    return {
        "folds": k,
        "answers": int(len(y)),
        "accuracy": round(float((pred == y).mean()), 4),
        "macro_f1": round(float(f1_score(y, pred, average="macro", zero_division=0)), 4),
        "precision": round(float(precision_score(y, pred, zero_division=0)), 4),
        "recall": round(float(recall_score(y, pred, zero_division=0)), 4),
    }


# ---------------------------------------------------------------------- over a library


def resolve_label(name: str | None = None, cat_id: str | None = None) -> Label:
    """The label being taught: a UCS CatID (its description searches) or a free name."""
    if cat_id:
        found = [lab for lab in ucs_labels() if lab.cat_id.lower() == cat_id.strip().lower()]
        if not found:
            raise UserError(f"'{cat_id}' is not a UCS CatID (e.g. DOORWood); see data/taxonomies/ucs.csv")
        return found[0]
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise UserError("name the label to teach (under 200 characters), or pick a UCS CatID")
    if name.lower().startswith(OTHER_PREFIX):
        raise UserError(f"a label cannot start with '{OTHER_PREFIX}' (the head's name for everything else)")
    return Label(name, name)


def label_named(text: str) -> Label:
    """A UCS CatID when `text` is one (DOORWood), else a free label name."""
    if text and any(lab.cat_id.lower() == text.strip().lower() for lab in ucs_labels()):
        return resolve_label(cat_id=text)
    return resolve_label(text)


@dataclass
class Candidate:
    file_id: int
    why: str
    p: float | None = None
    result: object | None = None  # the search.Result when a text search found it


@dataclass
class LabelRound:
    """What the page shows after each answer."""

    label: Label
    yes: int
    no: int
    figures: dict | None
    candidates: list[Candidate] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"label": self.label.name, "cat_id": self.label.cat_id, "text": self.label.text,
                "answers": self.yes + self.no, "yes": self.yes, "no": self.no, "figures": self.figures,
                "trained": self.figures is not None, "min_per_side": MIN_PER_SIDE}


class FileVectorCache:
    """Every indexed file's vector and the exploration order, computed once per catalog
    generation (heads.file_vectors, explore_order)."""

    def __init__(self):
        self._key = None
        self._value: tuple[np.ndarray, np.ndarray] | None = None
        self._explore: list[int] | None = None

    def get(self, catalog) -> tuple[np.ndarray, np.ndarray]:
        from .heads import file_vectors

        key = (id(catalog), catalog.generation, catalog.indexed_file_count())
        if self._key != key or self._value is None:
            self._value = file_vectors(catalog)
            self._explore = None
            self._key = key
        return self._value

    def explore(self, catalog) -> list[int]:
        _fids, X = self.get(catalog)
        if self._explore is None:
            self._explore = explore_order(X)
        return self._explore


def decisions(catalog, label: Label) -> dict[int, bool]:
    """file id -> the person's latest answer for this label (user decisions, as `tag review` stores them)."""
    out = catalog.user_decisions(label.name)
    if label.cat_id:
        out.update(catalog.user_decisions(label.cat_id))
    return out


def record_answer(catalog, label: Label, file_id: int, yes: bool) -> None:
    catalog.record_decision(int(file_id), label.name, accept=bool(yes), cat_id=label.cat_id)


def label_round(lib, label: Label, *, k: int = 10, cache: FileVectorCache | None = None,
                search_mode: str = "hybrid") -> LabelRound:
    """The answers so far, the head's cross-validated figures, and the next k candidates."""
    answers = decisions(lib.catalog, label)
    yes = sum(answers.values())
    cache = cache or FileVectorCache()
    fids, X = cache.get(lib.catalog)
    pos = {int(f): i for i, f in enumerate(fids)}
    known = [f for f in answers if f in pos]
    y = np.array([answers[f] for f in known], bool)
    rnd = LabelRound(label, yes, len(answers) - yes, None)
    if can_train(y):
        Xa = X[[pos[f] for f in known]]
        rnd.figures = cross_validated(Xa, y)
        p = positive_proba(fit_head(Xa, y), X)
        answered = np.zeros(len(fids), bool)
        answered[[pos[f] for f in known]] = True
        picks = select_next(p, answered, k, best_first=len(known) % 2 == 1)
        rnd.candidates = [Candidate(int(fids[i]), why, round(float(p[i]), 4)) for i, why in picks]
        return rnd
    # Too few answers on one side for a head: the text search, explored beyond when it misses.
    found = {r.file_id: r for r in lib.search(label.text, n=min(k + len(answers), 500), mode=search_mode)}
    text_order = [pos[f] for f in found if f in pos]
    picks = select_cold(X, [pos[f] for f in known], y, text_order, cache.explore(lib.catalog), k)
    rnd.candidates = [Candidate(int(fids[i]), why, result=found.get(int(fids[i]))) for i, why in picks]
    return rnd


def candidate_results(catalog, candidates: list[Candidate]) -> list:
    """search.Result rows for the candidates (a head's pick plays from the file's start)."""
    from ..results import Result

    files = catalog.files_by_ids([c.file_id for c in candidates if c.result is None])
    out = []
    for i, c in enumerate(candidates, 1):
        r = c.result
        if r is None:
            f = files.get(c.file_id)
            if f is None:
                continue
            r = Result(rank=i, path=f.path, score=float(c.p or 0.0), offset_s=0.0,
                       end_s=min(f.duration_s or 0.0, 10.0), duration_s=f.duration_s, file_id=f.id, chunk_id=None,
                       sample_rate=f.sample_rate, channels=f.channels, subtype=f.subtype, container=f.container)
        r.rank = i
        out.append(r)
    return out


def train_from_decisions(lib, label: Label, *, name: str | None = None, cache: FileVectorCache | None = None) -> dict:
    """Fit the head on every answer and save it for `tag --head NAME`; returns its report."""
    from .heads import Head

    answers = decisions(lib.catalog, label)
    fids, X = (cache or FileVectorCache()).get(lib.catalog)
    pos = {int(f): i for i, f in enumerate(fids)}
    known = [f for f in answers if f in pos]
    y = np.array([answers[f] for f in known], bool)
    if not can_train(y):
        raise UserError(f"'{label.name}' needs at least {MIN_PER_SIDE} yes and {MIN_PER_SIDE} no answers "
                        f"(has {int(y.sum())} yes, {int((~y).sum())} no)")
    Xa = X[[pos[f] for f in known]]
    report = cross_validated(Xa, y) or {}
    clf = fit_head(Xa, y)
    # Class 0 is everything else, class 1 the label: Head.predict_proba orders columns by index.
    labels = [Label(OTHER_PREFIX + label.name, OTHER_PREFIX + label.text), label]
    name = name or label.name
    model_key = lib.catalog.get_model().key()
    report.update(name=name, class_names=[x.name for x in labels], label=label.name, cat_id=label.cat_id,
                  yes=int(y.sum()), no=int((~y).sum()), source="decisions")
    lib.catalog.save_head(name, model_key, Head(name, model_key, labels, clf).to_bytes(), json.dumps(report))
    return report


def is_other_class(lab: Label) -> bool:
    """The 'everything else' class of a confirmation head: never stored as a tag."""
    return lab.name.startswith(OTHER_PREFIX) and lab.cat_id is None


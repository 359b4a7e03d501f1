"""Labels by confirmation (search.tagging.active): selection and figures on arrays; answers stored
as user decisions that `tag review` shows and `tag train --from-decisions` learns from; the saved
head tags the library with `tag --head` (the label only); the page's label API."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner


# ---------------------------------------------------------------------- array functions


def test_select_next_interleaves_least_sure_and_best_and_skips_answered():
    from search.tagging.active import select_next

    p = np.array([0.9, 0.52, 0.1, 0.7, 0.45, 0.99, 0.5])
    answered = np.array([False, False, False, False, False, True, False])
    got = select_next(p, answered, 4)
    assert got == [(6, "least sure"), (0, "best"), (1, "least sure"), (3, "best")]
    # Everything unanswered comes out once when k is larger than what is left.
    everything = select_next(p, answered, 50)
    assert sorted(i for i, _ in everything) == [0, 1, 2, 3, 4, 6]
    assert select_next(p, answered, 3, best_first=True) == [(0, "best"), (6, "least sure"), (3, "best")]
    assert select_next(p, np.ones(7, bool), 3) == []


def test_cross_validated_needs_two_answers_each_side_and_scores_a_separable_set():
    from search.tagging.active import cross_validated

    rng = np.random.default_rng(0)
    assert cross_validated(rng.normal(size=(5, 8)), np.array([1, 1, 1, 1, 0])) is None
    X = np.concatenate([rng.normal(2, 0.3, (10, 8)), rng.normal(-2, 0.3, (10, 8))])
    y = np.array([1] * 10 + [0] * 10)
    fig = cross_validated(X, y)
    assert fig["folds"] == 5 and fig["answers"] == 20
    assert fig["accuracy"] == 1.0 and fig["macro_f1"] == 1.0
    # Labels at random cannot be learned: the figures say so.
    noisy = cross_validated(rng.normal(size=(20, 8)), rng.permutation(y))
    assert noisy["macro_f1"] < 0.9


def test_resolve_label_takes_ucs_catids_and_refuses_empty():
    from indexer.config import UserError
    from search.tagging.active import label_named, resolve_label

    door = resolve_label(cat_id="doorwood")
    assert door.cat_id == "DOORWood" and door.name.startswith("DOORS-")
    assert label_named("DOORWood") == door
    assert label_named("squeaky hinge").cat_id is None
    with pytest.raises(UserError, match="name the label"):
        resolve_label("  ")
    with pytest.raises(UserError, match="UCS CatID"):
        resolve_label(cat_id="NOPEnope")


# ---------------------------------------------------------------------- over a library


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_clap):
    from test_feedback import build_feedback_library

    return build_feedback_library(tmp_path_factory.mktemp("active"), tiny_clap)


@pytest.fixture(scope="module")
def lib(built):
    from search.query import Library

    with Library.from_settings(built[0]) as library:
        yield library


TONES = ("tone", "tone2", "low")
OTHERS = ("noise", "noise2", "clicks", "clicks2")


def test_answers_are_decisions_then_the_head_picks_and_tags(lib, built):
    from search.tagging import review_list, tag_with_head
    from search.tagging.active import decisions, label_round, record_answer, resolve_label, train_from_decisions

    _, files = built
    ids = {k: lib.catalog.file_by_path(p).id for k, p in files.items()}
    label = resolve_label("steady tone")
    first = label_round(lib, label, k=4, search_mode="semantic")
    assert first.figures is None and first.yes == first.no == 0
    # The text search's best files alternate with one file of each k-means cluster of the library.
    assert [c.why for c in first.candidates] == ["search", "explore", "search", "explore"]
    top = [r.file_id for r in lib.search("steady tone", 4, mode="semantic")]
    assert first.candidates[0].file_id == top[0]
    assert all(c.file_id in top for c in first.candidates if c.why == "search")
    assert len({c.file_id for c in first.candidates}) == 4

    for k in ("tone", "low"):
        record_answer(lib.catalog, label, ids[k], True)
    for k in ("noise", "clicks"):
        record_answer(lib.catalog, label, ids[k], False)
    assert decisions(lib.catalog, label) == {ids["tone"]: True, ids["low"]: True, ids["noise"]: False, ids["clicks"]: False}
    # Stored as `tag review` stores decisions: the review list shows them accepted.
    assert {r.file_id for r in review_list(lib.catalog, "steady tone") if r.decision == "accepted"} == {ids["tone"], ids["low"]}

    rnd = label_round(lib, label, k=5)
    assert rnd.yes == 2 and rnd.no == 2
    assert rnd.figures is not None and rnd.figures["folds"] == 2 and 0 <= rnd.figures["macro_f1"] <= 1
    picked = [c.file_id for c in rnd.candidates]
    assert len(picked) == 5 and len(set(picked)) == 5
    assert not set(picked) & {ids["tone"], ids["low"], ids["noise"], ids["clicks"]}
    assert {c.why for c in rnd.candidates} == {"least sure", "best"}

    report = train_from_decisions(lib, label, name="tones")
    assert report["yes"] == 2 and report["no"] == 2 and report["class_names"] == ["not steady tone", "steady tone"]
    tagged = tag_with_head(lib, "tones")
    assert set(tagged.label_counts) <= {"steady tone"}  # never the "everything else" class
    rows = lib.catalog.tagged_files("steady tone", set_name="tones")
    machine = {r.file_id for r in rows if r.source == "head"}
    assert ids["tone"] in machine and ids["noise"] not in machine


def test_tag_train_from_decisions_on_the_command_line(lib, built):
    from search.cli import main
    from search.tagging.active import record_answer, resolve_label

    settings, files = built
    ids = {k: lib.catalog.file_by_path(p).id for k, p in files.items()}
    label = resolve_label(cat_id="DOORWood")
    for k in ("sweep", "tone"):
        record_answer(lib.catalog, label, ids[k], True)
    for k in ("noise2", "clicks2", "long"):
        record_answer(lib.catalog, label, ids[k], False)
    args = ["--index", str(settings.index_dir), "--model", settings.model]
    r = CliRunner().invoke(main, ["tag", "train", "--from-decisions", "DOORWood", "--name", "doors", "--json", *args])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["yes"] == 2 and rep["no"] == 3 and rep["cat_id"] == "DOORWood"
    r = CliRunner().invoke(main, ["tag", "--head", "doors", "--json", *args])
    assert r.exit_code == 0, r.output
    assert set(json.loads(r.stdout)["label_counts"]) <= {label.name}
    r = CliRunner().invoke(main, ["tag", "train", "--from-decisions", "nobody said", "--name", "x", *args])
    assert r.exit_code == 1 and "needs at least 2 yes" in r.output


# ---------------------------------------------------------------------- the page's API


@pytest.fixture(scope="module")
def client(lib, built):
    from starlette.testclient import TestClient

    from search.web.app import create_app

    with TestClient(create_app(lib, index_dir=built[0].index_dir, allowed_hosts=["testserver"])) as c:
        yield c


def test_label_api_round_answer_save(client, lib, built):
    _, files = built
    r = client.post("/api/label/round", json={"label": "ringing", "k": 3})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["answers"] == 0 and d["trained"] is False and len(d["candidates"]) == 3
    assert [c["why"] for c in d["candidates"]] == ["search", "explore", "search"]
    ids = {k: lib.catalog.file_by_path(p).id for k, p in files.items()}
    for k, yes in (("tone", True), ("tone2", True), ("noise", False), ("clicks", False)):
        r = client.post("/api/label/answer", json={"label": "ringing", "file_id": ids[k], "yes": yes, "k": 3})
        assert r.status_code == 200, r.text
    d = r.json()
    assert d["answers"] == 4 and d["yes"] == 2 and d["trained"] is True
    assert set(d["figures"]) >= {"accuracy", "macro_f1", "folds"}
    assert all(c["why"] in ("least sure", "best") and 0 <= c["p"] <= 1 for c in d["candidates"])
    assert not {c["file_id"] for c in d["candidates"]} & {ids["tone"], ids["tone2"], ids["noise"], ids["clicks"]}
    r = client.post("/api/label/save", json={"label": "ringing", "name": "ringing-head"})
    assert r.status_code == 200 and r.json()["name"] == "ringing-head"
    assert lib.catalog.load_head("ringing-head") is not None
    ucs = client.get("/api/label/ucs").json()["ucs"]
    assert any(u["cat_id"] == "DOORWood" for u in ucs)
    for body, status in (({"label": ""}, 400), ({"label": "x", "k": 0}, 400), ({"cat_id": "NOPEnope"}, 400),
                         ({"label": "x", "file_id": 999999, "yes": True}, 404),
                         ({"label": "x", "file_id": ids["tone"], "yes": "yes"}, 400)):
        path = "/api/label/answer" if "file_id" in body else "/api/label/round"
        assert client.post(path, json=body).status_code == status, body


def test_cold_start_finds_yes_near_the_first_one_and_no_far_from_the_yes():
    from search.tagging.active import explore_order, select_cold

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 16)) * 4
    X = np.concatenate([c + rng.normal(size=(10, 16)) for c in centres]).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    order = explore_order(X)
    assert sorted(order) == list(range(30))
    # Among the first three picks one of each cluster (k-means round-robin).
    assert {i // 10 for i in order[:3]} == {0, 1, 2}
    # One yes (file 0, cluster 0): the "search" picks are now its neighbours.
    got = select_cold(X, [0, 15], np.array([True, False]), text_order=[29, 28], explore=order, k=4)
    assert [w for _, w in got] == ["search", "explore", "search", "explore"]
    assert all(i // 10 == 0 for i, w in got if w == "search")
    # Two yes, no "no" yet: the files least like the yes ones.
    got = select_cold(X, [0, 1], np.array([True, True]), text_order=[], explore=order, k=5)
    assert all(i // 10 != 0 and w == "unlike the yes" for i, w in got)

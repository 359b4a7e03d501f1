"""The in-memory keyword ranking of a long-running reader (indexer/catalog/keyword_ranker.py):
the same files, order and scores as FTS5's bm25() for the queries it serves, stale after any
write to the keyword index, and FTS5 for everything else."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.catalog import Catalog
from indexer.catalog.keyword_ranker import KeywordRanker
from indexer.catalog.keywords import insert_keyword_rows, keyword_columns

WORDS = ("door slam wood creak metal scrape stone glass break rain roof thunder footsteps gravel "
         "wind howl fire crackle water drip engine idle car pass whoosh impact explosion debris").split()
QUERIES = [
    "door", "doors slamming", "metal scrape stone", "rain on a tin roof", "foot", "glas",
    "wind howl fire crackle water", "explosion debris impact", "car", "zzz unknown words",
    "the a", "café ambience", "DOORWood", "engine idle pass", "gravel footsteps rain",
]


def _rows(rng, start: int, n: int) -> list[tuple[int, dict[str, str]]]:
    out = []
    for fid in range(start, start + n):
        words = rng.choice(WORDS, int(rng.integers(1, 5)))
        name = "_".join(w.capitalize() if rng.random() < 0.5 else w.upper() for w in words)
        folder = "/".join(rng.choice(WORDS, int(rng.integers(0, 3))))
        rel = f"{folder}/{name}_{fid:03d}.wav" if folder else f"{name}_{fid:03d}.wav"
        meta = {}
        if rng.random() < 0.6:
            meta["bext.description"] = " ".join(rng.choice(WORDS, int(rng.integers(1, 8))))
        if fid % 7 == 0:
            meta["ixml.note"] = "Café ambience, Ärger im Hof"  # accents: FTS5 folds them
        if fid % 11 == 0:
            meta["ucs.cat_id"] = "DOORWood"  # UCS synonyms go to their own column
        out.append((fid, keyword_columns(rel, meta)))
    return out


@pytest.fixture()
def catalogs(tmp_path):
    """(a catalog that ranks in memory, one that ranks in FTS5) over the same database."""
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    writer = Catalog.open(url, create=True)
    rng = np.random.default_rng(3)
    with writer.transaction() as conn:
        insert_keyword_rows(conn, writer.dialect, _rows(rng, 1, 400))
    memory, fts5 = Catalog.open(url), Catalog.open(url)
    memory.keep_keywords_in_memory()
    assert memory.keyword_ranker_ready(wait=60)
    yield writer, memory, fts5, rng
    for c in (writer, memory, fts5):
        c.close()


def _spy(monkeypatch) -> list:
    calls = []
    real = KeywordRanker.rank

    def rank(self, *a, **k):
        calls.append(a)
        return real(self, *a, **k)
    monkeypatch.setattr(KeywordRanker, "rank", rank)
    return calls


def test_the_same_files_order_and_scores_as_fts5(catalogs, monkeypatch):
    _writer, memory, fts5, _ = catalogs
    calls = _spy(monkeypatch)
    for q in QUERIES:
        for limit in (1, 5, 60, 1000):
            for first in (False, True):
                want = fts5.keyword_search(q, limit=limit, all_words_first=first)
                got = memory.keyword_search(q, limit=limit, all_words_first=first)
                assert got == want, (q, limit, first)  # scores equal to the last bit
    assert len(calls) >= len(QUERIES) * 8  # it ranked them: FTS5 did not
    assert fts5.keyword_search("door", limit=1000) and fts5.keyword_search("cafe", limit=5)
    assert memory.keyword_search("café", limit=5) == fts5.keyword_search("cafe", limit=5)


def test_a_write_leaves_it_stale_until_rebuilt(catalogs, monkeypatch):
    writer, memory, fts5, rng = catalogs
    builds = []
    real_build = KeywordRanker.build.__func__
    monkeypatch.setattr(KeywordRanker, "build", classmethod(lambda cls, *a: builds.append(1) or real_build(cls, *a)))
    with writer.transaction() as conn:
        insert_keyword_rows(conn, writer.dialect, [(999, keyword_columns("zebra_door_slam.wav", {}))])
        writer.delete_keywords(conn, [5, 6])
    calls = _spy(monkeypatch)
    got = memory.keyword_search("zebra door", limit=50)  # answered by FTS5 while it rebuilds
    assert got[0][0] == 999 and not {5, 6} & {f for f, _ in got} and not calls
    assert got == fts5.keyword_search("zebra door", limit=50)
    assert memory.keyword_ranker_ready(wait=60)
    assert builds  # a new copy, of the index as it is now
    for q in QUERIES + ["zebra door"]:
        assert memory.keyword_search(q, limit=60) == fts5.keyword_search(q, limit=60), q
    assert calls


def test_phrases_operators_and_exclusions_stay_with_fts5(catalogs, monkeypatch):
    _writer, memory, fts5, _ = catalogs
    calls = _spy(monkeypatch)
    for q in ('"door slam"', "door -metal", "door, glass", "expl*", "hi-hat door", "metal wood"):
        assert memory.keyword_search(q, limit=60) == fts5.keyword_search(q, limit=60), q
        assert memory.keyword_excluded(q) == fts5.keyword_excluded(q)
    assert len(calls) == 1  # only "metal wood", the one plain query of single words


def test_a_tokeniser_it_cannot_match_leaves_fts5_ranking(tmp_path, monkeypatch):
    from indexer.catalog import keyword_ranker

    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    cat = Catalog.open(url, create=True)
    with cat.transaction() as conn:
        insert_keyword_rows(conn, cat.dialect, _rows(np.random.default_rng(1), 1, 50))
    monkeypatch.setattr(keyword_ranker, "tokens", lambda text: text.split()[:1] if text else [])
    cat.keep_keywords_in_memory()
    assert not cat.keyword_ranker_ready(wait=60)  # its counts are not FTS5's: not trusted
    assert cat.keyword_search("door", limit=5)
    cat.close()


def test_turned_off_fts5_ranks_again(catalogs, monkeypatch):
    _writer, memory, fts5, _ = catalogs
    calls = _spy(monkeypatch)
    memory.keep_keywords_in_memory(False)
    assert memory.keyword_search("door slam", limit=20) == fts5.keyword_search("door slam", limit=20)
    assert not calls and not memory.keyword_ranker_ready()
    memory.keep_keywords_in_memory()
    assert memory.keyword_ranker_ready() and memory.keyword_search("door slam", limit=20) and calls

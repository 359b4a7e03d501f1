"""The tuner must reach its recall target on text-like queries, not only on held-out audio
(issue 20: audio-tuned settings reached 0.961 on audio and 0.703 on fresh text at 1M), and
the index finds text-like queries even when no text query was cached yet."""

from __future__ import annotations

import numpy as np
import pytest

from indexer import tuning_queries as tq
from indexer.catalog import Catalog, ModelRecord
from indexer.catalog import tables as T
from indexer.config import Settings
from indexer.vectors import VectorIndex, tuning

D = 64


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n, seed=0, draw=None, clusters=100):
    rng = np.random.default_rng(seed)
    centers = unit(rng.standard_normal((clusters, D)))
    rng = rng if draw is None else np.random.default_rng(draw)
    return unit(centers[rng.integers(0, clusters, n)] + 0.15 * rng.standard_normal((n, D)))


def textlike(n, draw):
    """Queries in a cone of their own, away from every cluster of the data (as CLAP's text
    vectors sit apart from its audio vectors): their neighbours are spread over many lists."""
    direction = unit(np.random.default_rng(7).standard_normal((1, D)))
    return unit(direction + 0.5 * np.random.default_rng(draw).standard_normal((n, D)))


def recall_on(index, q, ids, x):
    truth = ids[np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :10]]
    found = index.search(q, 10)[1]
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]))


def test_tuner_reaches_the_target_on_text_like_queries_where_audio_tuning_falls_short():
    x = clustered(20_000)
    ids = np.arange(20_000, dtype=np.int64) * 3 + 5
    fresh = textlike(300, draw=2)  # the text queries to come, never seen by either tuner

    audio = VectorIndex(D, exact_threshold=5_000, kind="ivf-flat").build(ids, x)
    assert audio.meta["recall_at_10"] >= 0.95 + tuning.RECALL_MARGIN
    assert audio.meta["tuned_on"]["text_like"] == 0 and audio.meta["tuned_on"]["source"] is None
    assert recall_on(audio, fresh, ids, x) < 0.9  # held-out audio over-states text recall

    text = VectorIndex(D, exact_threshold=5_000, kind="ivf-flat").build(
        ids, x, queries=textlike(300, draw=1), queries_from="generated")
    on = text.meta["tuned_on"]
    assert on == dict(queries=300 + tuning.HELD_OUT_BESIDE_TEXT, held_out=tuning.HELD_OUT_BESIDE_TEXT,
                      text_like=300, source="generated")
    chosen = next(t for t in text.meta["tuning"] if t["nprobe"] == text.meta["params"]["nprobe"])
    # both groups reach the target plus the margin; the recorded recall is the worse of them
    assert min(chosen["recall_text"], chosen["recall_held_out"]) >= 0.95 + tuning.RECALL_MARGIN
    assert text.meta["recall_at_10"] == min(chosen["recall_text"], chosen["recall_held_out"])
    assert text.meta["params"]["nprobe"] > audio.meta["params"]["nprobe"]
    assert recall_on(text, fresh, ids, x) >= 0.95
    assert recall_on(text, x[::100], ids, x) >= 0.95  # similar-searches keep their recall


@pytest.fixture
def catalog(tmp_path, tiny_clap):
    from indexer.clap import load_frontend

    cat = Catalog.open(f"sqlite:///{tmp_path / 'catalog.sqlite'}", create=True)
    _frontend, fp = load_frontend(str(tiny_clap))
    from indexer.clap import ClapEncoder

    dim = ClapEncoder.load(str(tiny_clap), parts=()).dim
    cat.ensure_model(ModelRecord.from_fingerprint(fp, dim))
    yield cat
    cat.close()


def cache_texts(cat, vecs):
    key = cat.get_model().key()
    with cat.transaction() as conn:
        conn.execute(T["text_vectors"].insert(), [dict(model_key=key, text=f"asked {i}", vector=v.tobytes())
                                                  for i, v in enumerate(unit(vecs))])


def test_cached_queries_first_then_descriptions_embedded_by_the_catalogs_text_tower(catalog, tiny_clap, tmp_path):
    from indexer.clap import ClapEncoder

    settings = Settings(index_dir=tmp_path, model=str(tiny_clap))
    dim = catalog.get_model().dim
    asked = unit(np.random.default_rng(3).standard_normal((3, dim)))
    cache_texts(catalog, asked)
    data = unit(np.random.default_rng(4).standard_normal((100, dim)))
    queries, source = tq.tuning_queries(settings, catalog, data)
    assert queries.shape == (tq.TUNING_QUERIES, dim)
    np.testing.assert_allclose(np.sort(queries[:3], axis=0), np.sort(asked, axis=0), atol=1e-6)
    texts = tq.descriptions(tq.TUNING_QUERIES - 3)
    assert len(set(texts)) == len(texts) and "door" in " ".join(texts).lower()
    want = ClapEncoder.load(str(tiny_clap), parts=("text",)).embed_text(texts)
    np.testing.assert_allclose(queries[3:], want, atol=1e-5)
    assert source == f"3 cached text queries + {tq.TUNING_QUERIES - 3} sound descriptions embedded by the text tower"


def test_without_the_text_tower_cached_queries_move_held_out_data_toward_them(catalog, tmp_path):
    settings = Settings(index_dir=tmp_path, model=str(tmp_path / "no-such-checkpoint"))
    dim = catalog.get_model().dim
    data = unit(np.random.default_rng(5).standard_normal((2000, dim)) + 1.0)
    assert tq.tuning_queries(settings, catalog, data) == (None, None)  # nothing to stand for text

    text_dir = unit(np.random.default_rng(6).standard_normal((1, dim)))
    asked = unit(text_dir + 0.2 * np.random.default_rng(8).standard_normal((tq.MIN_FOR_SHIFT, dim)))
    cache_texts(catalog, asked)
    queries, source = tq.tuning_queries(settings, catalog, data)
    assert source == f"{tq.MIN_FOR_SHIFT} cached text queries + {tq.TUNING_QUERIES - tq.MIN_FOR_SHIFT} " \
                     "data vectors moved toward the cached text vectors"
    moved = queries[tq.MIN_FOR_SHIFT:]
    np.testing.assert_allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-5)
    # the moved queries sit nearer the text queries than the data they came from does
    assert float((moved @ text_dir.T).mean()) > float((data @ text_dir.T).mean()) + 0.2


def test_a_model_that_is_not_on_this_machine_is_never_downloaded_for_tuning(catalog, tmp_path, monkeypatch):
    from indexer import models

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # a download would be possible
    monkeypatch.setattr(models, "pull", lambda *a, **k: pytest.fail("tuning must not download a model"))
    assert not tq.at_hand("someone/clap-not-here") and tq.at_hand(str(tmp_path))
    settings = Settings(index_dir=tmp_path, model="someone/clap-not-here")  # not the default: asked for
    assert tq.embed_descriptions(settings, catalog, 10) is None

"""The catalog on a real PostgreSQL server (started by tests/pg.py on loopback)."""

from __future__ import annotations

import numpy as np
import pytest

from indexer import pipeline
from indexer.catalog import Catalog, FileInfo, ModelRecord
from indexer.index import Index
from search.query import Library

pytestmark = pytest.mark.postgres


def test_catalog_api_on_postgres(postgres_url):
    cat = Catalog.open(postgres_url)
    cat.ensure_model(ModelRecord("m", "abc", {"x": 1}, 4))
    root = cat.add_root("/srv/sfxlib")
    fid, new, old = cat.write_file(
        root.id, "Doors/DOORWood_Creak Open_JD_Field.wav", size=10, mtime_ns=20, content_hash="h1",
        info=FileInfo(3.0, 48000, 2, "PCM_24", "WAV"), chunks=[(0, 0.0, 3.0)],
        vectors=np.eye(4, dtype=np.float32)[:1], metadata={"bext.description": "old oak door creaks open"},
    )
    assert old == [] and len(new) == 1
    assert cat.keyword_search("oak creak")[0][0] == fid
    cat.keep_keywords_in_memory()  # a no-op on PostgreSQL: ts_rank ranks, not bm25()
    assert cat.keyword_search("oak creak")[0][0] == fid and not cat.keyword_ranker_ready()
    assert cat.keyword_search("'; drop table files; --") == []
    fid2, new2, _ = cat.copy_file(fid, root.id, "Moved/door.wav", size=10, mtime_ns=30)
    ids, vecs = next(cat.iter_vectors())
    assert ids.tolist() == new + new2 and np.allclose(vecs[0], vecs[1])
    assert cat.filter_file_ids(under="/srv/sfxlib/Moved") == {fid2}
    cat.mark_failed(root.id, "bad.wav", "not audio", size=1, mtime_ns=1)
    assert cat.counts() == {"files": 3, "indexed": 2, "failed": 1, "chunks": 2, "hours": 0.0}
    assert [c.id for c in cat.chunks_for(fid2)[0]] == new2
    assert cat.delete_files([fid]) == new
    cat.store_text_vectors("k", ["rain"], np.ones((1, 4), np.float32))
    assert np.allclose(cat.cached_text_vectors("k", ["rain"])["rain"], 1.0)
    with pytest.raises(Exception, match="would mix vector spaces"):
        cat.ensure_model(ModelRecord("other", "zzz", {"x": 1}, 4))
    cat.close()
    assert Catalog.open(postgres_url).get_model().model_id == "m"


def test_build_and_search_with_postgres_catalog(settings, library, postgres_url):
    root, files = library
    settings.db_url = postgres_url
    report = pipeline.build(settings, [str(root)], workers=1, progress=False)
    assert report.new == len(files)
    index = Index.open(settings)
    assert index.catalog.dialect == "postgresql" and index.check()["ok"]
    index.close()
    with Library.from_settings(settings) as lib:
        assert lib.similar(files["sweep"], n=1, include_self=True)[0].path == str(files["sweep"])
        assert lib.search("creak", n=1, mode="keyword")[0].path == str(files["sweep"])
    report = pipeline.build(settings, [str(root)], workers=1, progress=False)
    assert report.unchanged == len(files) and report.windows == 0

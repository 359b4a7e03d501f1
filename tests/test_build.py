"""sfx-index build end to end with the real transformers model (tiny random checkpoint)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import audiogen
from indexer import builder, hashing, pipeline
from indexer.config import UserError
from indexer.index import Index


def _build(settings, roots, **kw):
    return pipeline.build(settings, [str(r) for r in roots], workers=1, progress=False, **kw)


def _snapshot(settings):
    """Everything a build decides: files with their facts, and chunks with vectors, by path."""
    index = Index.open(settings)
    try:
        cat = index.catalog
        states = {}
        for root in cat.roots():
            for rel, st in cat.file_states(root.id).items():
                row = cat.files_by_ids([st.id])[st.id]
                chunks, vecs = cat.chunks_for(st.id)
                states[rel] = (
                    row.status, row.content_hash, row.duration_s, row.sample_rate, row.channels,
                    [(c.idx, round(c.start_s, 4), round(c.end_s, 4)) for c in chunks], vecs,
                )
        return states
    finally:
        index.close()


def _forbid_model_and_hash(monkeypatch):
    from indexer import clap

    def no_model(*a, **k):
        raise AssertionError("the model was loaded")

    def no_hash(*a, **k):
        raise AssertionError("a file was hashed")

    monkeypatch.setattr(clap.ClapEncoder, "load", classmethod(lambda cls, *a, **k: no_model()))
    monkeypatch.setattr(hashing, "content_hash", no_hash)
    monkeypatch.setattr(builder, "DecodePool", lambda *a, **k: no_model())


def test_first_build_indexes_every_file_and_records_failures(settings, library):
    root, files = library
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (root / ".hidden.wav").write_bytes(b"x")
    report = _build(settings, [root])
    assert report.new == len(files)
    assert report.failed == 1 and report.failures[0]["path"].endswith("broken.wav")
    index = Index.open(settings)
    counts = index.catalog.counts()
    assert counts["indexed"] == len(files) and counts["failed"] == 1
    # 23 s file -> windows at 0, 10 and the end-aligned 13 s.
    row = index.catalog.file_by_path(files["long"])
    chunks, vecs = index.catalog.chunks_for(row.id)
    assert [round(c.start_s, 3) for c in chunks] == [0.0, 10.0, 13.0]
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert counts["chunks"] == 1 + 1 + 1 + 1 + 1 + 3
    check = index.check()
    assert check["ok"], check
    index.close()


def test_rerun_on_unchanged_library_only_stats(settings, library, monkeypatch):
    root, files = library
    _build(settings, [root])
    before = _snapshot(settings)
    _forbid_model_and_hash(monkeypatch)
    report = _build(settings, [root])
    assert report.unchanged == len(files) and report.new == report.changed == report.windows == 0
    after = _snapshot(settings)
    assert before.keys() == after.keys()


def test_moved_renamed_and_duplicated_files_reuse_vectors(settings, library, monkeypatch):
    root, files = library
    _build(settings, [root])
    before = _snapshot(settings)
    (root / "moved").mkdir()
    shutil.move(files["tone"], root / "moved" / "renamed_tone.wav")
    shutil.copy(files["noise"], root / "noise" / "noise_copy.wav")

    from indexer import clap

    monkeypatch.setattr(clap.ClapEncoder, "load", classmethod(lambda cls, *a, **k: pytest.fail("model loaded")))
    monkeypatch.setattr(builder, "DecodePool", lambda *a, **k: pytest.fail("decoder started"))
    report = _build(settings, [root])
    assert (report.moved, report.duplicates, report.deleted) == (1, 1, 0)  # moved is not also deleted
    after = _snapshot(settings)
    assert "tones/tone_440.wav" not in after
    np.testing.assert_array_equal(after["moved/renamed_tone.wav"][6], before["tones/tone_440.wav"][6])
    np.testing.assert_array_equal(after["noise/noise_copy.wav"][6], before["noise/noise_burst.wav"][6])
    index = Index.open(settings)
    assert index.check()["ok"]


def test_changed_file_is_reembedded_and_deleted_folder_leaves(settings, library):
    root, files = library
    _build(settings, [root])
    before = _snapshot(settings)
    audiogen.write_audio(files["low"], audiogen.noise(48000, 12.0, seed=3), 48000)
    shutil.rmtree(root / "clicks")
    report = _build(settings, [root])
    assert report.changed == 1 and report.deleted == 1 and report.windows == 2
    after = _snapshot(settings)
    assert "clicks/clicks_fast.ogg" not in after
    assert len(after["tones/tone_110.flac"][5]) == 2
    assert not np.allclose(after["tones/tone_110.flac"][6][0], before["tones/tone_110.flac"][6][0])
    index = Index.open(settings)
    res = index.check()
    assert res["ok"] and res["faiss_vectors"] == index.catalog.counts()["chunks"]


def test_touched_but_identical_file_keeps_its_chunks(settings, library, monkeypatch):
    root, files = library
    _build(settings, [root])
    st = os.stat(files["tone"])
    os.utime(files["tone"], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    monkeypatch.setattr(builder, "DecodePool", lambda *a, **k: pytest.fail("decoder started"))
    report = _build(settings, [root])
    assert report.unchanged == len(files) and report.changed == 0


def test_another_model_is_refused(settings, library, tiny_clap_unfused):
    root, _ = library
    _build(settings, [root])
    settings.model = str(tiny_clap_unfused)
    with pytest.raises(UserError, match="start a new index with --index"):
        _build(settings, [root])


def test_second_build_on_same_index_stops_with_message(settings, library):
    from indexer.locking import BuildLock, IndexBusy

    root, _ = library
    settings.index_dir.mkdir(parents=True)
    with BuildLock(settings.index_dir):
        with pytest.raises(IndexBusy, match="another build is running"):
            _build(settings, [root])


def test_missing_or_stale_faiss_is_rebuilt_from_catalog(settings, library):
    root, _ = library
    _build(settings, [root])
    settings.faiss_path.write_bytes(b"garbage")
    index = Index.open(settings)
    assert not index.check()["ok"]
    vi = index.vectors()
    assert vi.ntotal == index.catalog.counts()["chunks"]
    assert Index.open(settings).check()["ok"]
    settings.faiss_path.unlink()
    assert Index.open(settings).check(repair=True)["repaired"]
    assert Index.open(settings).check()["ok"]


def test_remove_and_relocate_root(settings, library, tmp_path):
    from indexer.maintenance import remove_root

    root, files = library
    _build(settings, [root])
    new_place = tmp_path / "mounted_elsewhere"
    shutil.move(root, new_place)
    index = Index.open(settings)
    index.catalog.relocate_root(root, new_place)
    assert index.catalog.file_by_path(new_place / "tones" / "tone_440.wav") is not None
    index.close()
    assert remove_root(settings, new_place) == 8
    index = Index.open(settings)
    assert index.catalog.counts()["files"] == 0 and index.check()["ok"]


def test_reindex_under_a_budget_records_the_choice_and_builds_add_into_it(settings, library, tmp_path):
    import json as _json

    from click.testing import CliRunner

    from indexer import cli as index_cli

    root, files = library
    for i in range(30):  # enough windows for an IVF index to train on
        audiogen.write_audio(root / "more" / f"noise_{i:02d}.wav", audiogen.noise(8000, 0.5, seed=100 + i), 8000)
    _build(settings, [root])
    runner = CliRunner()
    res = runner.invoke(index_cli.main, ["reindex", "--index", str(settings.index_dir), "--kind", "ivf-flat", "--memory", "1G", "--json"])
    assert res.exit_code == 0, res.output
    out = _json.loads(res.stdout)
    assert out["kind"] == "ivf-flat" and out["factory"].startswith("IVF") and out["memory_budget"] == "1G"
    st = _json.loads(runner.invoke(index_cli.main, ["status", "--index", str(settings.index_dir), "--json"]).stdout)
    assert st["vectors"]["kind"].startswith("IVF") and st["vectors"]["recall_at_10"] is not None
    # no text query cached yet: tuned on descriptions embedded by the index's own text tower
    index = Index.open(settings)
    before = dict(index.vectors().meta)
    index.close()
    tuned_on = before["tuned_on"]
    assert tuned_on["text_like"] == 500 and "sound descriptions embedded" in tuned_on["source"]
    # --retune tunes the same trained index again: nothing is retrained or re-planned
    res = runner.invoke(index_cli.main, ["reindex", "--index", str(settings.index_dir), "--retune", "--json"])
    assert res.exit_code == 0, res.output
    out = _json.loads(res.stdout)
    assert out["retuned"] and out["factory"] == before["factory"] and out["build_s"] == before["build_s"]
    assert out["tuned_on"]["text_like"] == 500 and out["recall_at_10"] is not None
    index = Index.open(settings)
    after = index.vectors().meta
    index.close()
    assert after["trained_n"] == before["trained_n"] and after["saved_at"] > before["saved_at"]
    res = runner.invoke(index_cli.main, ["reindex", "--index", str(settings.index_dir), "--retune", "--kind", "flat"])
    assert res.exit_code == 2 and "--retune keeps the index" in res.output
    # a later build adds to the trained index without retraining it
    audiogen.write_audio(root / "more" / "late.wav", audiogen.sine(48000, 1.0, freq=900), 48000)
    _build(settings, [root])
    index = Index.open(settings)
    vi = index.vectors()
    assert vi.meta["factory"].startswith("IVF") and index.check()["ok"]
    assert vi.ntotal == index.catalog.counts()["chunks"]


def test_reader_catches_up_with_commits_without_a_rebuild(settings, library, monkeypatch):
    root, files = library
    _build(settings, [root])
    reader = Index.open(settings)
    n1 = reader.vectors().ntotal
    audiogen.write_audio(root / "new_one.wav", audiogen.sine(48000, 1.0, freq=1234), 48000)
    _build(settings, [root])
    monkeypatch.setattr(Index, "rebuild_vectors", lambda *a, **k: pytest.fail("full rebuild"))
    reader._vectors_generation = -1  # as if the file had not been renamed in yet
    settings.faiss_path.unlink()
    v2 = reader.vectors()
    assert v2.ntotal == n1 + 1 == reader.catalog.counts()["chunks"]


def test_float16_catalog_halves_vectors_and_search_reranks_with_them(settings, library):
    from search.query import Library

    root, files = library
    _build(settings, [root], vector_dtype="float16")
    index = Index.open(settings)
    assert index.catalog.vector_dtype == "float16"
    row = index.catalog.file_by_path(files["sweep"])
    chunks, vecs = index.catalog.chunks_for(row.id)
    assert vecs.dtype == np.float32 and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=2e-3)
    with pytest.raises(UserError, match="chosen when an index is created"):
        index.catalog.ensure_vector_dtype("float32")
    index.close()
    with Library.from_settings(settings) as lib:
        assert lib.similar(files["sweep"], n=1, include_self=True)[0].path == str(files["sweep"])


def test_a_catalog_newer_than_the_code_is_refused(settings, library):
    from indexer.catalog import Catalog, CatalogError

    root, _ = library
    _build(settings, [root])
    cat = Catalog.open(settings.catalog_url)
    cat.set_meta("schema_version", "999")
    cat.close()
    with pytest.raises(CatalogError, match="newer than this sfx-index"):
        Catalog.open(settings.catalog_url)


@pytest.mark.parametrize("kind", ["ivf-sq8", "ivf-pqfs"])
def test_compressed_index_reranks_from_a_float16_copy_and_matches_exact(settings, library, kind):
    from indexer.index import ExactVectors
    from search.query import Library

    root, files = library
    for i in range(40):
        audiogen.write_audio(root / "more" / f"n_{i:02d}.wav", audiogen.noise(8000, 0.5, seed=300 + i), 8000)
    _build(settings, [root])
    index = Index.open(settings)
    vi = index.rebuild_vectors(kind=kind)
    assert vi.meta["kind"].startswith(kind)
    ev = ExactVectors(settings.index_dir, index.catalog)
    assert ev.loaded and len(ev.ids) == index.catalog.chunk_count()
    ids = index.catalog.all_chunk_ids()[:5]
    np.testing.assert_allclose(ev(ids), index.catalog.vectors_for_chunks(ids.tolist()), atol=2e-3)
    assert vi.rerank is not None
    index.close()
    with Library.from_settings(settings) as lib:
        assert lib.similar(files["sweep"], n=1, include_self=True)[0].path == str(files["sweep"])


def test_a_noop_build_does_not_import_torch(settings, library):
    """Checking the catalog's model needs only the frontend's fingerprint, and that is
    torch-free: a rerun with nothing to embed does not pay torch's import (2-3 s)."""
    import subprocess
    import sys

    from indexer.clap import load_frontend
    from indexer.mel import LogMelFrontend

    root, _ = library
    _build(settings, [root])
    from indexer.clap import ClapFrontend

    for fe_config in ({}, {"truncation": "rand_trunc", "frequency_min": 50, "feature_size": 64}):
        fe = ClapFrontend(fe_config)
        mel = LogMelFrontend.from_config(fe_config).settings()
        assert {k: v for k, v in fe.settings().items() if k in mel} == mel  # one fingerprint
    fingerprint = load_frontend(settings.model)[1]
    code = (
        "import sys; from indexer import pipeline; from indexer.config import Settings; "
        f"s = Settings(index_dir={str(settings.index_dir)!r}, model={settings.model!r}); "
        f"pipeline.build(s, [{str(root)!r}], workers=1, progress=False); "
        "from indexer.clap import load_frontend; "
        f"print('torch' in sys.modules, load_frontend(s.model)[1] == {fingerprint!r})"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "True"]

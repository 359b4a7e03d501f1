"""The catalog's measured-sound columns and fingerprints: stored, read, copied, removed, summarised."""

from __future__ import annotations

import numpy as np

from indexer.catalog import MEASURE_COLUMNS, Catalog, FileInfo


def _catalog(tmp_path) -> tuple[Catalog, int]:
    cat = Catalog.open(f"sqlite:///{tmp_path / 'c.db'}")
    root = cat.add_root(tmp_path)
    return cat, root.id


def _write(cat, root_id, rel, h="h"):
    info = FileInfo(duration_s=2.0, sample_rate=48000, channels=1, subtype="PCM_16", container="WAV")
    fid, _, _ = cat.write_file(root_id, rel, size=10, mtime_ns=1, content_hash=h + rel, info=info,
                               chunks=[(0, 0.0, 2.0)], vectors=np.ones((1, 4), np.float32) / 2, metadata={})
    return fid


def test_measurements_round_trip_copy_and_invalidate(tmp_path):
    cat, rid = _catalog(tmp_path)
    a, b = _write(cat, rid, "a.wav"), _write(cat, rid, "b.wav")
    assert {i for i, _ in cat.unmeasured_files(1)} == {a, b}
    m = dict(zip(MEASURE_COLUMNS, (-23.0, -1.0, -1.5, 12, 0.001, 0.5, 0.25, None)))
    cat.store_analysis(a, m, b"fp-bytes", 1)
    assert cat.measurements_for([a, b]) == {a: m}
    assert [i for i, _ in cat.unmeasured_files(1)] == [b]
    assert [i for i, _ in cat.unmeasured_files(2)] == [a, b]  # a newer analysis measures again
    rows = list(cat.fingerprint_rows())
    assert [(r[0], r[-1]) for r in rows] == [(a, b"fp-bytes")]
    assert rows[0][1] == str(tmp_path.resolve() / "a.wav")
    # A moved copy takes the source's measurements and fingerprint; a rewrite drops them.
    c, _, _ = cat.copy_file(a, rid, "moved/a.wav", size=10, mtime_ns=2)
    assert cat.measurements_for([c]) == {c: m}
    assert {r[0] for r in cat.fingerprint_rows()} == {a, c}
    _write(cat, rid, "a.wav", h="new")
    assert a not in cat.measurements_for([a]) and {r[0] for r in cat.fingerprint_rows()} == {c}
    cat.delete_files([c])
    assert list(cat.fingerprint_rows()) == []


def test_summary_counts_clipped_silent_and_very_quiet(tmp_path):
    cat, rid = _catalog(tmp_path)
    ids = [_write(cat, rid, f"f{i}.wav") for i in range(4)]
    base = dict.fromkeys(MEASURE_COLUMNS)
    cat.store_analysis(ids[0], {**base, "clipped_samples": 5, "sample_peak_dbfs": 0.0, "loudness_lufs": -8.0}, None, 1)
    cat.store_analysis(ids[1], {**base, "clipped_samples": 0, "sample_peak_dbfs": None}, None, 1)  # digital silence
    cat.store_analysis(ids[2], {**base, "clipped_samples": 0, "sample_peak_dbfs": -40.0, "loudness_lufs": -55.0}, None, 1)
    assert cat.measurement_summary() == {"measured": 3, "clipped": 1, "silent": 1, "very_quiet": 1}
    assert [r[0] for r in cat.measured_rows()] == ids[:3]


def test_an_older_catalog_is_measured_without_the_model(tmp_path):
    """Files indexed before measurements existed get them from one decode each."""
    from audiogen import write_audio
    from indexer.backfill import measure_unmeasured

    cat, rid = _catalog(tmp_path)
    t = np.arange(48000) / 48000
    write_audio(tmp_path / "a.wav", np.clip(1.5 * np.sin(2 * np.pi * 440 * t), -1, 1), 48000)
    a = _write(cat, rid, "a.wav")
    b = _write(cat, rid, "gone.wav")  # indexed once, deleted since: left for the next reconcile
    assert measure_unmeasured(cat) == 1
    m = cat.measurements_for([a, b])
    assert set(m) == {a} and m[a]["clipped_samples"] > 0 and m[a]["loudness_lufs"] is not None
    assert [r[0] for r in cat.fingerprint_rows()] == [a]
    assert measure_unmeasured(cat) == 0  # nothing left at this version (b stays unreadable)

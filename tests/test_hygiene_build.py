"""Measurements and fingerprints through a real build (tiny checkpoint, decode workers):
stored from the decode stream, in --json rows, GET /api/files/{id}, status, duplicates, qc,
and an older catalog filled in by the next build without the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from audiogen import write_audio
from indexer import pipeline
from indexer.index import Index
from indexer.measure import KEYS, measure_file
from test_duplicates import SR, door_slam, to_stereo


@pytest.fixture
def built(tmp_path, settings):
    lib = tmp_path / "lib"
    slam = to_stereo(door_slam(4), 4)
    t = np.arange(SR) / SR
    files = {
        "orig": write_audio(lib / "slam.wav", slam, SR, subtype="PCM_24"),
        "mp3": write_audio(lib / "previews" / "slam.mp3", slam, SR),
        "quiet": write_audio(lib / "slam_m6.flac", slam * 0.5, SR),
        "clipped": write_audio(lib / "hot.wav", np.clip(2 * np.sin(2 * np.pi * 300 * t), -1, 1), SR),
        "take2": write_audio(lib / "slam_take2.wav", to_stereo(door_slam(5), 5), SR, subtype="PCM_24"),
    }
    report = pipeline.build(settings, [str(lib)], workers=1, progress=False)
    assert report.new == len(files)
    return lib, files


def _measured(settings):
    index = Index.open(settings)
    try:
        cat = index.catalog
        ids = cat.filter_file_ids()
        return {cat.files_by_ids([i])[i].path: m for i, m in cat.measurements_for(ids).items()}
    finally:
        index.close()


def test_a_build_measures_every_file_from_its_decode(built, settings):
    _lib, files = built
    stored = _measured(settings)
    assert set(stored) == {str(p.resolve()) for p in files.values()}
    for p in files.values():
        alone = measure_file(p).as_dict()  # the same meter over a whole-file read
        got = stored[str(p.resolve())]
        for k in KEYS:
            if alone[k] is None:
                assert got[k] is None, (p.name, k)
            else:
                assert got[k] == pytest.approx(alone[k], abs=1e-3), (p.name, k)
    assert stored[str(files["clipped"].resolve())]["clipped_samples"] > 0


def test_commands_show_measurements_groups_and_problems(built, settings, tmp_path):
    from search.cli import main as search_main
    from indexer.cli import main as index_main

    _lib, files = built
    env = {"SFX_INDEX_DIR": str(settings.index_dir), "SFX_MODEL": str(settings.model)}
    run = CliRunner().invoke
    r = run(search_main, ["door slam", "--json", "--mode", "semantic", "-n", "10"], env=env)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert rows and all(set(KEYS) <= set(row) for row in rows)
    assert any(row["loudness_lufs"] is not None for row in rows)
    r = run(search_main, ["duplicates", "--json"], env=env)
    (group,) = json.loads(r.stdout)
    assert {group["keep"]["path"], *(c["path"] for c in group["copies"])} == {
        str(files[k].resolve()) for k in ("orig", "mp3", "quiet")}
    r = run(search_main, ["qc"], env=env)
    assert r.stdout.startswith(str(files["clipped"].resolve()) + "\tclipped (")
    st = json.loads(run(index_main, ["status", "--json"], env=env).stdout)
    assert st["sound"]["measured"] == len(files) and st["sound"]["clipped"] == 1


def test_an_older_catalog_is_filled_by_the_next_build_without_the_model(built, settings, monkeypatch):
    _lib, files = built
    before = _measured(settings)
    index = Index.open(settings)
    try:
        cat = index.catalog
        from indexer.catalog import tables as T

        with cat.transaction() as conn:  # as a catalog from before the migration looks
            conn.execute(T["files"].update().values(measured=None, loudness_lufs=None))
            conn.execute(T["fingerprints"].delete())
    finally:
        index.close()
    assert _measured(settings) == {}

    from indexer import clap

    def no_model(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(clap.ClapEncoder, "load", classmethod(lambda cls, *a, **k: no_model()))
    report = pipeline.build(settings, [str(_lib)], workers=1, progress=False)
    assert report.new == report.changed == report.windows == 0
    assert _measured(settings) == before


def test_no_measure_builds_searchable_now_and_the_next_build_measures(tmp_path, settings):
    from indexer.cli import main as index_main

    lib = tmp_path / "lib"
    write_audio(lib / "slam.wav", to_stereo(door_slam(4), 4), SR, subtype="PCM_24")
    write_audio(lib / "take2.flac", door_slam(5), SR)
    env = {"SFX_INDEX_DIR": str(settings.index_dir), "SFX_MODEL": str(settings.model)}
    run = CliRunner().invoke
    r = run(index_main, ["build", str(lib), "--no-measure", "--workers", "1", "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["new"] == 2 and _measured(settings) == {}
    r = run(index_main, ["build", str(lib), "--workers", "1", "--json"], env=env)
    assert r.exit_code == 0, r.output
    again = json.loads(r.stdout)
    assert again["new"] == again["windows"] == 0  # nothing embedded again: measured from a decode alone
    assert len(_measured(settings)) == 2

"""`sfx-search duplicates` and `sfx-search qc` on a catalog holding real analyses of generated files.

The files are analysed exactly as a build stores them (indexer.analysis on the decode stream);
the catalog rows are written through the Catalog API (vectors are not what these commands read).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiogen import write_audio
from indexer.analysis import analyse_file
from indexer.catalog import Catalog, FileInfo, ModelRecord
from search.cli import main
from test_duplicates import SR, door_slam, to_stereo


@pytest.fixture
def indexed(tmp_path):
    lib = tmp_path / "lib"
    slam = to_stereo(door_slam(1), 1)
    t = np.arange(SR * 2) / SR
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    files = {
        "orig": write_audio(lib / "doors" / "slam.wav", slam, SR, subtype="PCM_24"),
        "mp3": write_audio(lib / "previews" / "slam.mp3", slam, SR),
        "quiet": write_audio(lib / "doors" / "slam_m6.wav", slam * 0.5, SR, subtype="PCM_24"),
        "other": write_audio(lib / "doors" / "slam_take2.wav", to_stereo(door_slam(2), 2), SR, subtype="PCM_24"),
        "clipped": write_audio(lib / "qc" / "hot.wav", np.clip(tone * 3, -1, 1), SR),
        "dc": write_audio(lib / "qc" / "dc.wav", tone * 0.5 + 0.05, SR),
        "silence": write_audio(lib / "qc" / "nothing.wav", np.zeros(SR), SR),
        "tail": write_audio(lib / "qc" / "tail.wav", np.concatenate([tone[: SR // 2], np.zeros(SR * 2)]), SR),
    }
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    cat = Catalog.open(url)
    cat.ensure_model(ModelRecord("test/model", "0", {}, 4))  # 4-d vectors: only the catalog is read
    root = cat.add_root(lib)
    ids = {}
    for k, p in files.items():
        i = sf.info(str(p))
        info = FileInfo(duration_s=i.duration, sample_rate=i.samplerate, channels=i.channels, subtype=i.subtype,
                        container=i.format)
        fid, _, _ = cat.write_file(root.id, p.relative_to(lib).as_posix(),
                                   size=p.stat().st_size, mtime_ns=p.stat().st_mtime_ns, content_hash=k, info=info,
                                   chunks=[(0, 0.0, 1.0)], vectors=np.full((1, 4), 0.5, np.float32), metadata={})
        a = analyse_file(p)
        cat.store_analysis(fid, a.measurements, a.fingerprint, a.version)
        ids[k] = fid
    cat.close()
    return lib, files, url


def _run(*args):
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return r


def test_duplicates_lists_the_family_and_not_the_other_take(indexed, tmp_path):
    lib, files, url = indexed
    r = _run("duplicates", "--json", "--db", url, "--index", str(tmp_path / "idx"))
    assert r.exit_code == 0, r.output
    groups = json.loads(r.stdout)
    assert len(groups) == 1
    g = groups[0]
    assert g["keep"]["path"] == str(files["orig"].resolve())
    assert g["why"].startswith("WAV 48 kHz/24-bit stereo: lossless over lossy")
    copies = {c["path"]: c for c in g["copies"]}
    assert set(copies) == {str(files["mp3"].resolve()), str(files["quiet"].resolve())}
    assert copies[str(files["quiet"].resolve())]["difference"] == "-6.0 dB"
    assert copies[str(files["mp3"].resolve())]["difference"].startswith("MP3 ")
    # Restricted to a folder: the MP3 preview is outside it.
    r = _run("duplicates", "--json", "--under", str(lib / "doors"), "--db", url, "--index", str(tmp_path / "idx"))
    (g,) = json.loads(r.stdout)
    assert [c["path"] for c in g["copies"]] == [str(files["quiet"].resolve())]
    out = tmp_path / "d.csv"
    r = _run("duplicates", "--csv", str(out), "--db", url, "--index", str(tmp_path / "idx"))
    rows = list(csv.DictReader(out.open()))
    assert [(x["group"], x["role"]) for x in rows] == [("1", "keep"), ("1", "copy"), ("1", "copy")]
    r = _run("duplicates", "--db", url, "--index", str(tmp_path / "idx"))
    assert "keep " + str(files["orig"].resolve()) in r.stdout and "-6.0 dB" in r.stdout


def test_qc_lists_each_problem_file_once(indexed, tmp_path):
    lib, files, url = indexed
    r = _run("qc", "--db", url, "--index", str(tmp_path / "idx"))
    assert r.exit_code == 0, r.output
    lines = dict(line.split("\t") for line in r.stdout.splitlines())
    assert set(lines) == {str(files[k].resolve()) for k in ("clipped", "dc", "silence", "tail")}
    assert lines[str(files["clipped"].resolve())].startswith("clipped (")
    assert lines[str(files["dc"].resolve())] == "DC offset +0.050"
    assert lines[str(files["silence"].resolve())] == "digital silence"
    assert lines[str(files["tail"].resolve())] == "long silent tail (2.0 s)"
    rows = json.loads(_run("qc", "--json", "--db", url, "--index", str(tmp_path / "idx")).stdout)
    clipped = next(x for x in rows if x["path"] == str(files["clipped"].resolve()))
    assert clipped["clipped_samples"] > 0 and clipped["problems"] == [lines[clipped["path"]]]


def test_measurement_filters_select_exactly_the_right_files(indexed):
    """Each filter against the stored measurements, checked file by file against the values."""
    from indexer.catalog import MEASURE_COLUMNS
    from search.filters import Filters

    _lib, files, url = indexed
    cat = Catalog.open(url)
    try:
        every = cat.filter_file_ids()
        m = cat.measurements_for(every)
        assert set(m) == every and len(every) == len(files)

        def expect(pred):
            return {i for i in every if pred(m[i])}

        def ok(v):
            return v is not None

        cases = [
            (Filters(min_loudness=-20.0), expect(lambda x: ok(x["loudness_lufs"]) and x["loudness_lufs"] >= -20)),
            (Filters(max_loudness=-20.0), expect(lambda x: ok(x["loudness_lufs"]) and x["loudness_lufs"] <= -20)),
            (Filters(max_true_peak=-1.0), expect(lambda x: ok(x["true_peak_dbtp"]) and x["true_peak_dbtp"] <= -1)),
            (Filters(no_clipping=True), expect(lambda x: x["clipped_samples"] == 0)),
            (Filters(max_head_silence=0.1), expect(lambda x: x["silence_head_s"] <= 0.1)),
            (Filters(min_loudness=-30.0, no_clipping=True),
             expect(lambda x: ok(x["loudness_lufs"]) and x["loudness_lufs"] >= -30 and x["clipped_samples"] == 0)),
        ]
        for f, want in cases:
            assert f.file_ids(cat) == want, f.describe()
            assert 0 < len(want) < len(every), f.describe()  # each case splits the library
        assert set(MEASURE_COLUMNS) <= set(m[next(iter(every))])
    finally:
        cat.close()


def test_flag_filter_is_an_option_of_the_query_command():
    r = _run("query", "--help")
    assert "--no-clipping" in r.stdout and "--max-true-peak" in r.stdout and "--max-head-silence" in r.stdout


def test_search_results_fold_near_duplicates_into_one_row_with_measurements(indexed, tmp_path):
    """similar() over the stored vectors (all equal here, so every file is a result)."""
    from indexer.config import Settings
    from search.query import Library

    _lib, files, url = indexed
    with Library.from_settings(Settings(index_dir=tmp_path / "idx", db_url=url)) as lib:
        first = lib.catalog.file_by_path(files["other"].resolve()).id
        plain = lib.similar(file_id=first, n=20, include_self=True)
        folded = lib.similar(file_id=first, n=20, collapse_copies=True, include_self=True)
    assert len(plain) == len(files) and all(r.copies == [] for r in plain)
    assert len(folded) == len(files) - 2 and [r.rank for r in folded] == list(range(1, len(folded) + 1))
    family = {str(files[k].resolve()) for k in ("orig", "mp3", "quiet")}
    (head,) = [r for r in folded if r.copies]
    assert {head.path, *head.copies} == family
    clipped = next(r for r in plain if r.path == str(files["clipped"].resolve()))
    assert clipped.clipped_samples > 0 and clipped.loudness_lufs is not None
    assert set(json.loads(json.dumps(clipped.as_json()))) >= {"loudness_lufs", "true_peak_dbtp", "copies"}

"""The read path's stumbles a newcomer hit (issue 19): similar, empty answers, -v, tag, serve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from search import cli as search_cli


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_clap):
    from conftest import make_library

    from indexer import pipeline
    from indexer.config import Settings

    base = tmp_path_factory.mktemp("daily")
    files = make_library(base / "library")
    settings = Settings(index_dir=base / "index", model=str(tiny_clap))
    pipeline.build(settings, [str(base / "library")], workers=1, progress=False)
    return settings, files


def _run(built, *args):
    settings = built[0]
    return CliRunner().invoke(search_cli.main, [*args, "--index", str(settings.index_dir), "--model", settings.model])


def test_similar_does_not_return_the_file_itself_unless_asked(built):
    _, files = built
    res = _run(built, "similar", str(files["sweep"]), "--json", "-n", "3")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert rows and all(r["path"] != str(files["sweep"]) for r in rows)
    res = _run(built, "similar", str(files["sweep"]), "--json", "-n", "3", "--include-self")
    rows = json.loads(res.stdout)
    assert rows[0]["path"] == str(files["sweep"]) and rows[0]["score"] == pytest.approx(1.0, abs=1e-4)


def test_no_results_and_a_filter_that_matches_nothing_exit_alike(built):
    miss_kw = _run(built, "zzqqxx", "--mode", "keyword", "--json")
    miss_tag = _run(built, "rain", "--tag", "no-such-label", "--json")
    miss_ext = _run(built, "rain", "--ext", "xyz")
    assert miss_kw.exit_code == miss_tag.exit_code == miss_ext.exit_code == 0
    assert json.loads(miss_kw.stdout) == [] and json.loads(miss_tag.stdout) == []
    assert "no results" in miss_tag.stderr and "tag=no-such-label" in miss_tag.stderr
    assert "no results" in miss_ext.stderr and miss_ext.stdout == ""


def test_verbose_from_the_help_is_accepted_anywhere(built):
    assert "-v, --verbose" in CliRunner().invoke(search_cli.main, ["--help"]).output
    for args in (["-v", "rain"], ["rain", "-v"], ["-vv", "similar", str(built[1]["tone"])]):
        res = _run(built, *args, "-n", "2", "--paths")
        assert res.exit_code == 0, (args, res.output)
        assert len(res.stdout.splitlines()) == 2


def test_tag_with_empty_labels_is_an_error(built):
    res = _run(built, "tag", "--labels", "")
    assert res.exit_code == 1
    assert "--labels" in res.output and "Usage" not in res.output


def test_region_past_the_end_is_416_and_an_end_past_it_is_clipped(built, tiny_clap):
    from starlette.testclient import TestClient

    from search.query import Library
    from search.web.app import create_app

    settings, files = built
    with Library.from_settings(settings) as lib:
        fid = lib.catalog.file_by_path(files["tone"]).id  # 2.0 s
        with TestClient(create_app(lib, index_dir=settings.index_dir, allowed_hosts=["testserver"])) as c:
            r = c.get(f"/api/files/{fid}/audio", params={"start": 5, "end": 9})
            assert r.status_code == 416 and "after the end" in r.json()["error"]
            r = c.get(f"/api/files/{fid}/audio", params={"start": 1.5, "end": 9, "download": 1})
            assert r.status_code == 200
            import io

            import soundfile as sf

            data, sr = sf.read(io.BytesIO(r.content))
            assert len(data) / sr == pytest.approx(0.5, abs=0.01)


def test_open_without_a_browser_says_so(monkeypatch, capsys):
    import webbrowser

    from search.web.cli import open_page

    monkeypatch.setattr(webbrowser, "open", lambda url: False)
    assert open_page("http://127.0.0.1:1/") is False
    err = capsys.readouterr().err
    assert "no web browser" in err and "http://127.0.0.1:1/" in err


def test_ctrl_c_stops_serve_without_aborted(built, tmp_path):
    settings = built[0]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "search.cli", "serve", "--port", "0", "--index", str(settings.index_dir),
         "--model", settings.model], stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
    )
    try:
        seen = ""
        while "Ctrl-C to stop" not in seen:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
        assert "Ctrl-C to stop" in seen, seen
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Aborted" not in rest and "Traceback" not in rest, rest
    assert "stopped" in rest and proc.returncode == 0


def test_tag_summary_counts_the_files_that_got_a_tag(built):
    res = _run(built, "tag", "--labels", "rain,wind", "--threshold", "0.999", "--name", "strict")
    assert res.exit_code == 0, res.output
    n_files = len(built[1])
    assert f"tagged 0 of {n_files} files" in res.stdout
    assert f"{n_files} files got no tag" in res.stderr


def test_long_label_sets_show_progress_and_are_embedded_once_per_model(built, tmp_path, tiny_clap, monkeypatch):
    """A second index of the same model reuses the label vectors (no text model at all)."""
    from conftest import make_library

    from indexer import clap, pipeline
    from indexer.config import Settings

    labels = ",".join(f"sound number {i}" for i in range(40))  # 240 prompts with the default templates
    res = _run(built, "tag", "--labels", labels, "--name", "many")
    assert res.exit_code == 0, res.output
    assert "embedding label prompts" in res.stderr and "240/240" in res.stderr

    other = Settings(index_dir=tmp_path / "other-index", model=str(tiny_clap))
    lib = make_library(tmp_path / "other")
    for key in ("long", "clicks", "sweep", "noise"):
        lib[key].unlink()
    pipeline.build(other, [str(tmp_path / "other")], workers=1, progress=False)
    monkeypatch.setattr(clap.ClapEncoder, "load", classmethod(lambda cls, *a, **k: pytest.fail("text model loaded")))
    res = CliRunner().invoke(search_cli.main, ["tag", "--labels", labels, "--name", "many",
                                               "--index", str(other.index_dir), "--model", other.model])
    assert res.exit_code == 0, res.output
    assert "tagged" in res.stdout and "embedding label prompts" not in res.stderr


def test_top_k_keeps_k_labels_per_file_even_with_cosines_at_or_below_zero(built, tmp_path):
    labels = ",".join(f"label {i}" for i in range(12))
    res = _run(built, "tag", "--labels", labels, "--top-k", "12", "--name", "all12")
    assert res.exit_code == 0, res.output
    n_files = len(built[1])
    assert f"tagged {n_files} of {n_files} files" in res.stdout and f"{12 * n_files} tags" in res.stdout
    out = tmp_path / "tags.csv"
    res = CliRunner().invoke(search_cli.main, ["tag", "export", "--csv", str(out), "--name", "all12",
                                               "--index", str(built[0].index_dir)])
    assert res.exit_code == 0, res.output
    import csv

    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 12 * n_files
    scores = [float(r["score"]) for r in rows]
    assert min(scores) <= 0  # random weights: cosines at or below zero, and kept all the same
    worst = min(rows, key=lambda r: float(r["score"]))
    res = _run(built, "rain", "--tag", worst["label"], "--paths", "-n", "20")
    assert worst["path"] in res.stdout.splitlines()


def test_spectrogram_is_drawn_on_demand_and_cached(built):
    import struct

    from starlette.testclient import TestClient

    from search.query import Library
    from search.web.app import create_app

    settings, files = built
    with Library.from_settings(settings) as lib:
        fid = lib.catalog.file_by_path(files["tone"]).id  # a 440 Hz sine
        with TestClient(create_app(lib, index_dir=settings.index_dir, allowed_hosts=["testserver"])) as c:
            r = c.get(f"/api/files/{fid}/spectrogram", params={"w": 64, "h": 100})
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"
            assert struct.unpack(">II", r.content[16:24]) == (64, 100)
            cached = list((settings.index_dir / "spectrograms").glob(f"{fid}-*-64x100.png"))
            assert len(cached) == 1 and cached[0].read_bytes() == r.content
            assert c.get(f"/api/files/{fid}/spectrogram", params={"w": 5}).status_code == 400
            assert c.get("/api/files/999999/spectrogram").status_code == 404
    from search.web.spectrogram import columns, render

    power, sr = columns(files["tone"], 8)
    rgb = render(power, sr, 100)
    brightest_row = int(np.argmax(rgb.sum(axis=(1, 2))))
    hz = np.geomspace(20.0, sr / 2.0, 101)[100 - brightest_row - 1]  # rows run top = Nyquist
    assert 300 < hz < 600  # the 440 Hz line

"""The command-line contract: help with examples everywhere, versions, one-line errors, layering."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from indexer import cli as index_cli
from search import cli as search_cli

REPO = Path(__file__).resolve().parent.parent


def _commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


@pytest.mark.parametrize("tool", [index_cli.main, search_cli.main], ids=["sfx-index", "sfx-search"])
def test_every_command_has_help_with_an_example(tool):
    runner = CliRunner()
    for flag in ("-h", "--help"):
        res = runner.invoke(tool, [flag])
        assert res.exit_code == 0 and "Examples:" in res.output
    for path, cmd in _commands(tool):
        res = runner.invoke(tool, [*path, "--help"])
        assert res.exit_code == 0, (path, res.output)
        assert "Example" in res.output, f"{' '.join(path)} --help has no example"


@pytest.mark.parametrize("tool,name", [(index_cli.main, "sfx-index"), (search_cli.main, "sfx-search")])
def test_version(tool, name):
    res = CliRunner().invoke(tool, ["--version"])
    assert res.exit_code == 0 and res.output.startswith(name)


def test_indexer_never_imports_search():
    for path in (REPO / "indexer").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for n in names:
                assert n.split(".")[0] != "search", f"{path.relative_to(REPO)} imports {n}"


def test_search_cli_import_does_not_load_torch():
    code = "import sys, search.cli, search.query; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_user_errors_are_one_line_and_exit_1(tmp_path):
    runner = CliRunner()
    res = runner.invoke(search_cli.main, ["rain", "--index", str(tmp_path / "nothing")])
    assert res.exit_code == 1
    assert res.output.strip().count("\n") == 0 and "sfx-index build" in res.output
    res = runner.invoke(index_cli.main, ["status", "--index", str(tmp_path / "nothing")])
    assert res.exit_code == 1 and "no index" in res.output
    lib = tmp_path / "lib"
    lib.mkdir()
    res = runner.invoke(index_cli.main, ["build", str(lib), "--index", str(tmp_path / "i"), "--model", str(tmp_path / "nomodel")])
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0
    assert "SFX_MODEL" in res.output or "--model" in res.output
    res = runner.invoke(index_cli.main, ["build", str(lib), "--model", "laion/clap-htsat-fused", "--index", str(tmp_path / "i")])
    assert res.exit_code == 1 and "laion/clap-htsat-fused" in res.output and "make_random_clap" in res.output
    res = runner.invoke(index_cli.main, ["build"])
    assert res.exit_code == 2


def test_build_status_check_embed_through_the_cli(tmp_path, library, tiny_clap):
    root, files = library
    runner = CliRunner()
    common = ["--index", str(tmp_path / "idx")]
    res = runner.invoke(index_cli.main, ["build", str(root), *common, "--model", str(tiny_clap), "--workers", "1", "--json", "-q"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["new"] == len(files) and report["failed"] == 0
    res = runner.invoke(index_cli.main, ["status", *common, "--json"])
    st = json.loads(res.stdout)
    assert st["counts"]["indexed"] == len(files) and st["roots"][0]["path"] == str(root.resolve())
    assert st["vectors"]["ntotal"] == st["counts"]["chunks"] and st["vectors"]["current"]
    # what embedded the vectors: the tests run torch (conftest), at the precision it resolved
    from indexer.clap import resolve_precision

    runs = st["embedders"]["runs"]
    assert st["embedders"]["family"] == "float" and [(r["runtime"], r["precision"]) for r in runs] == \
        [("torch", resolve_precision("auto", "cpu"))]
    text = runner.invoke(index_cli.main, ["status", *common]).output
    assert f"embedded: float vectors by torch {runs[0]['precision']}" in text
    res = runner.invoke(index_cli.main, ["check", *common])
    assert res.exit_code == 0 and res.output.strip().endswith("ok")
    res = runner.invoke(index_cli.main, ["embed", str(files["long"]), "--model", str(tiny_clap), "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert [w["start_s"] for w in row["windows"]] == [0.0, 10.0, 13.0]
    assert row["windows"][-1]["end_s"] == pytest.approx(23.0)
    res = runner.invoke(index_cli.main, ["embed", str(files["tone"]), "--model", str(tiny_clap), "--npy", str(tmp_path / "v.npy")])
    import numpy as np

    assert np.load(tmp_path / "v.npy").shape[0] == 1


def test_openmp_waits_passively_unless_the_user_says_otherwise():
    """Busy-waiting OpenMP threads make a query 20x slower on a busy machine; importing
    either package must choose passive waiting before torch or faiss is loaded."""
    code = ("import search, os, sys; print(os.environ.get('OMP_WAIT_POLICY'), "
            "os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OPENBLAS_THREAD_TIMEOUT'), 'torch' in sys.modules)")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "10000", "4", "False"]
    out = subprocess.run([sys.executable, "-c", code], env=dict(env, OMP_WAIT_POLICY="ACTIVE"),
                         capture_output=True, text=True, check=True)
    assert out.stdout.split()[:2] == ["ACTIVE", "None"]


def test_rendering_results_imports_neither_sqlalchemy_nor_torch():
    """The hand-off to a running server renders rows in a process that must stay light."""
    code = ("import sys; from search import render; from search.results import Result; "
            "r = Result(rank=1, path='/x/\\udcff.wav', score=0.5, offset_s=0.0, end_s=1.0, duration_s=1.0, "
            "file_id=1, chunk_id=1, sample_rate=48000, channels=1, subtype='PCM_16', container='WAV'); "
            "print(render.shown(r.path)); render.table([r]); "
            "print('sqlalchemy' in sys.modules, 'torch' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.split()[-2:] == ["False", "False"]
    assert out.stdout.splitlines()[0] == "/x/\ufffd.wav"

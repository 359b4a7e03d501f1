"""The write path's stumbles a newcomer hit (issue 19): make demo, build, status, relocate, embed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_without_the_model_names_make_demo_random(tmp_path):
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop("SFX_MODEL", None)
    # -o install: use this venv as it is (the test does not reinstall the project).
    out = subprocess.run(["make", "-C", str(REPO), "-o", "install", "-o", f"{bin_dir}/.installed", "demo",
                          f"BIN={bin_dir}", f"DEMO={tmp_path / 'demo'}"], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode != 0
    last = [ln for ln in out.stderr.splitlines() if ln.startswith("make demo:")]
    assert last and "make demo-random" in last[0], out.stderr


def _index_with_failures(tmp_path, tiny_clap, n_bad: int):
    from conftest import make_library

    from indexer import pipeline
    from indexer.config import Settings

    root = tmp_path / "lib"
    make_library(root)
    for i in range(n_bad):
        (root / f"broken_{i:02d}.wav").write_bytes(b"RIFF" + os.urandom(60))
    settings = Settings(index_dir=tmp_path / "index", model=str(tiny_clap))
    pipeline.build(settings, [str(root)], workers=1, progress=False)
    return settings, root


def test_status_lists_every_failure_or_says_how_many_more_and_how(tmp_path, tiny_clap):
    from click.testing import CliRunner

    from indexer import cli as index_cli

    settings, root = _index_with_failures(tmp_path, tiny_clap, 23)
    runner = CliRunner()
    out = runner.invoke(index_cli.main, ["status", "--index", str(settings.index_dir)]).output
    assert out.count("failed:  /") == 20
    assert "... and 3 more" in out and "--failures 0" in out
    out = runner.invoke(index_cli.main, ["status", "--index", str(settings.index_dir), "--failures", "0"]).output
    assert out.count("failed:  /") == 23 and "more" not in out
    out = runner.invoke(index_cli.main, ["status", "--index", str(settings.index_dir), "--failures", "0", "--json"])
    import json

    st = json.loads(out.stdout)
    assert len(st["failures"]) == 23 and st["roots"][0]["missing"] is False
    # The drive is unmounted: its root is marked, its entries kept.
    root.rename(tmp_path / "elsewhere")
    out = runner.invoke(index_cli.main, ["status", "--index", str(settings.index_dir)]).output
    assert "FOLDER MISSING" in out and "relocate" in out


def test_results_from_a_missing_root_are_marked(tmp_path, tiny_clap):
    import json

    from click.testing import CliRunner

    from search import cli as search_cli

    settings, root = _index_with_failures(tmp_path, tiny_clap, 0)
    root.rename(tmp_path / "unmounted")
    args = ["rain", "-n", "3", "--index", str(settings.index_dir), "--model", settings.model]
    res = CliRunner().invoke(search_cli.main, args)
    assert res.exit_code == 0 and res.stdout.count("[not on disk]") == 3
    assert "not on disk" in res.stderr and "sfx-index status" in res.stderr
    rows = json.loads(CliRunner().invoke(search_cli.main, [*args, "--json"]).stdout)
    assert [r["on_disk"] for r in rows] == [False, False, False]


def test_build_without_model_uses_the_model_the_index_records(tmp_path, tiny_clap):
    from click.testing import CliRunner

    from indexer import cli as index_cli

    settings, root = _index_with_failures(tmp_path, tiny_clap, 0)
    (root / "new_tone.wav").write_bytes((root / "tones" / "tone_440.wav").read_bytes()[:-200])
    res = CliRunner().invoke(index_cli.main, ["build", str(root), "--index", str(settings.index_dir), "-q", "--json",
                                              "--workers", "1"])
    assert res.exit_code == 0, res.output
    import json

    assert json.loads(res.stdout)["new"] == 1


def test_relocate_onto_a_folder_already_indexed_says_what_to_do(tmp_path, tiny_clap):
    from click.testing import CliRunner

    from indexer import cli as index_cli
    from indexer import pipeline

    settings, root = _index_with_failures(tmp_path, tiny_clap, 0)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    pipeline.build(settings, [str(copy)], workers=1, progress=False)
    res = CliRunner().invoke(index_cli.main, ["relocate", str(root), str(copy), "--index", str(settings.index_dir)])
    assert res.exit_code == 1
    assert "catalog cannot be read" not in res.output and "backup" not in res.output
    assert "already a root" in res.output and f"sfx-index remove {root}" in res.output


def test_embed_npy_keeps_the_windows_times(tmp_path, tiny_clap, library):
    import csv

    import numpy as np
    from click.testing import CliRunner

    from indexer import cli as index_cli

    _, files = library
    out = tmp_path / "v.npy"
    res = CliRunner().invoke(index_cli.main, ["embed", str(files["tone"]), str(files["long"]), "--model", str(tiny_clap),
                                              "--npy", str(out)])
    assert res.exit_code == 0, res.output
    vecs = np.load(out)
    rows = list(csv.DictReader((tmp_path / "v.windows.csv").open()))
    assert len(rows) == len(vecs) == 4  # 1 window of the 2 s tone, 3 of the 23 s file
    assert [(float(r["start_s"]), float(r["end_s"])) for r in rows[1:]] == [(0.0, 10.0), (10.0, 20.0), (13.0, 23.0)]
    assert rows[0]["path"] == str(files["tone"].resolve())
    res = CliRunner().invoke(index_cli.main, ["embed", str(files["tone"]), "--model", str(tiny_clap), "--npy", str(out)])
    assert "wrote 1 vector to" in res.stderr


def test_the_scan_bar_counts_the_files_and_a_move_is_not_also_a_deletion(tmp_path, tiny_clap, capsys):
    from conftest import make_library

    from indexer import pipeline
    from indexer.config import Settings

    root = tmp_path / "lib"
    files = make_library(root)
    settings = Settings(index_dir=tmp_path / "index", model=str(tiny_clap))
    pipeline.build(settings, [str(root)], workers=1, progress=True)
    err = capsys.readouterr().err
    assert "scan lib: 6 files" in err.replace("\r", "\n")
    (root / "moved").mkdir()
    shutil.move(files["tone"], root / "moved" / "tone_renamed.wav")
    report = pipeline.build(settings, [str(root)], workers=1, progress=False)
    assert (report.moved, report.deleted, report.new) == (1, 0, 0)


def test_broken_and_looping_symlinks_are_listed_in_status(tmp_path, tiny_clap):
    import json

    from click.testing import CliRunner

    from indexer import cli as index_cli

    settings, root = _index_with_failures(tmp_path, tiny_clap, 0)
    (root / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    (root / "tones" / "back_up").symlink_to(root)
    from indexer import pipeline

    pipeline.build(settings, [str(root)], workers=1, progress=False)
    out = CliRunner().invoke(index_cli.main, ["status", "--index", str(settings.index_dir)]).output
    assert "skipped: " + str(root / "gone.wav") + ": broken symlink" in out
    assert "back_up: symlink loop" in out
    st = json.loads(CliRunner().invoke(index_cli.main, ["status", "--index", str(settings.index_dir), "--json"]).stdout)
    assert {s["reason"].split(":")[0] for s in st["skipped"]} == {"broken symlink", "symlink loop"}
    (root / "gone.wav").unlink()
    pipeline.build(settings, [str(root)], workers=1, progress=False)
    out = CliRunner().invoke(index_cli.main, ["status", "--index", str(settings.index_dir)]).output
    assert "gone.wav" not in out and "symlink loop" in out  # fixed problems leave the list

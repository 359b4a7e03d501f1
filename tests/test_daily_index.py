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

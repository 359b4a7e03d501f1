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

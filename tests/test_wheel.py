"""The package as a user installs it, not as the test suite imports it.

The wheel and the sdist are built (`python -m build`: the wheel is built from the sdist, so
the sdist is complete too), the wheel is installed into a fresh virtual environment (not
editable, not from the source tree), and the demo library goes through build, search,
`similar`, `tag --taxonomy ucs`, `tag export` and `serve` there, from a folder outside the
repository and with no PYTHONPATH.

Dependencies are not downloaded again: a .pth file in the fresh environment puts this
environment's site-packages behind its own (so torch stays the CPU wheel already installed),
and pip installs the wheel with no index, which also checks that every dependency the wheel
declares is satisfied. What is under test is the wheel's own content: its modules, its data
package (UCS table, prompt templates, labels) and the web page's assets.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def _run(cmd, *, env, cwd, timeout=300) -> subprocess.CompletedProcess:
    p = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO], env=env, cwd=REPO)
    (wheel,) = out.glob("sfx_index-*.whl")
    (sdist,) = out.glob("sfx_index-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="module")
def venv(dists, tmp_path_factory) -> Path:
    """A fresh environment holding the wheel, with this one's packages behind it."""
    root = tmp_path_factory.mktemp("venv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run([sys.executable, "-m", "venv", "--without-pip", root], env=env, cwd=root)
    py = root / "bin" / "python"
    site = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env=env, cwd=root).stdout.strip()
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(site) / "zz_sfx_test_dependencies.pth").write_text("\n".join(ours) + "\n")
    _run([py, "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation", dists["wheel"]], env=env, cwd=root)
    return root


def test_wheel_and_sdist_carry_the_data_and_the_page(dists):
    names = set(zipfile.ZipFile(dists["wheel"]).namelist())
    for f in ("indexer/data/taxonomies/ucs.csv", "indexer/data/prompts/default.txt", "indexer/data/labels/example.txt",
              "search/web/templates/index.html", "search/web/static/app.js", "search/web/static/style.css",
              "indexer/cli.py", "search/cli.py"):
        assert f in names, f
    assert not any(n.startswith(("data/", "tests/", "scripts/")) for n in names)
    entry = zipfile.ZipFile(dists["wheel"]).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "sfx-index = indexer.cli:main" in entry and "sfx-search = search.cli:main" in entry
    with tarfile.open(dists["sdist"]) as t:
        members = {m.split("/", 1)[1] for m in t.getnames() if "/" in m}
    assert {"data/taxonomies/ucs.csv", "data/__init__.py", "setup.py", "pyproject.toml", "README.md"} <= members


def test_demo_library_through_the_installed_wheel(venv, tiny_clap, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    work = tmp_path / "work"
    work.mkdir()
    bin_ = venv / "bin"
    py = bin_ / "python"

    where = _run([py, "-c", "import indexer, search, indexer.data as d; print(indexer.__file__); print(d.__file__)"],
                 env=env, cwd=work).stdout.split()
    assert all(p.startswith(str(venv)) for p in where), where  # the wheel's copy, not the source tree's

    lib, index = work / "library", work / "index"
    _run([sys.executable, REPO / "scripts" / "make_demo_library.py", lib], env=env, cwd=work)
    common = ["--index", index, "--model", tiny_clap]
    _run([bin_ / "sfx-index", "build", lib, *common], env=env, cwd=work)

    rows = json.loads(_run([bin_ / "sfx-search", "rain on a roof", "--json", "-n", "30", *common], env=env, cwd=work).stdout)
    assert rows and all(Path(r["path"]).is_file() and r["path"].startswith(str(lib)) for r in rows)
    # UCS names are parsed only against the installed UCS table.
    ucs = {Path(r["path"]).name.split("_")[0]: r["ucs"] for r in rows if r["ucs"]}
    assert ucs and all(v.split()[0] == k for k, v in ucs.items()), ucs

    target = next(r["path"] for r in rows if Path(r["path"]).name.startswith("RAIN"))
    like = json.loads(_run([bin_ / "sfx-search", "similar", target, "--include-self", "--json", "-n", "3", *common], env=env, cwd=work).stdout)
    assert like[0]["path"] == target and like[0]["score"] > 0.99

    tagged = _run([bin_ / "sfx-search", "tag", "--taxonomy", "ucs", "--name", "ucs", "--top-k", "2", *common],
                  env=env, cwd=work)
    assert "with 752 labels" in tagged.stdout + tagged.stderr, tagged.stderr[-2000:]  # the whole installed UCS table
    out = _run([bin_ / "sfx-search", "tag", "export", "--csv", "-", "--index", index], env=env, cwd=work).stdout
    tags = list(csv.DictReader(io.StringIO(out)))
    table = {r["cat_id"] for r in csv.DictReader((REPO / "data" / "taxonomies" / "ucs.csv").open(encoding="utf-8"))}
    audio = {str(p) for p in lib.rglob("*") if p.suffix in (".wav", ".flac", ".ogg")}
    assert len({t["path"] for t in tags}) > len(audio) // 2 and {t["path"] for t in tags} <= audio
    assert all(t["cat_id"] in table for t in tags)

    server = subprocess.Popen([str(bin_ / "sfx-search"), "serve", "--port", "0", *map(str, common)], env=env, cwd=work,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info_file = index / "server.json"
        deadline = time.monotonic() + 120
        while not info_file.is_file():
            assert server.poll() is None, server.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        info = json.loads(info_file.read_text())
        import httpx

        base = f"http://127.0.0.1:{info['port']}"
        got = httpx.get(f"{base}/api/search", params={"q": "door creak", "n": 5}, timeout=60)
        assert got.status_code == 200 and got.json()["results"], got.text
        page = httpx.get(base + "/", timeout=30)
        assert page.status_code == 200 and "/static/app.js" in page.text
        assert httpx.get(base + "/static/app.js", timeout=30).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert not (index / "server.json").exists()

"""`sfx-index build --ray`: decode + embed on a Ray cluster gives the catalog of a local build.

A local Ray cluster (2 CPUs, no dashboard) is started once for this module; the CLI connects
to it by address, as it would to a real cluster, so the connect path, the shipped indexer
package and the actors all run. Skipped only when ray is not installed (the `ray` extra).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer import pipeline
from indexer.config import Settings
from indexer.index import Index

try:
    import ray
    import ray.data  # noqa: F401
except ImportError:  # pragma: no cover - the test extra installs it
    ray = None

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(ray is None, reason="ray[data] is not installed (pip install -e '.[ray]')"),
]

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def ray_address():
    import logging

    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
        object_store_memory=256 * 1024 * 1024,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _snapshot(settings):
    """Files (status, hash, audio facts, metadata, failure reason) and chunks with vectors, by path."""
    index = Index.open(settings)
    try:
        cat = index.catalog
        out = {}
        for root in cat.roots():
            for rel, st in cat.file_states(root.id).items():
                row = cat.files_by_ids([st.id])[st.id]
                chunks, vecs = cat.chunks_for(st.id)
                out[rel] = dict(
                    facts=(row.status, row.content_hash, row.duration_s, row.sample_rate, row.channels),
                    chunks=[(c.idx, round(c.start_s, 6), round(c.end_s, 6)) for c in chunks],
                    vectors=vecs,
                    metadata=cat.metadata_for([st.id]).get(st.id),
                    error=row.error,
                )
        return out, index.check()
    finally:
        index.close()


def test_ray_build_gives_the_catalog_of_a_local_build(tmp_path, tiny_clap, library, ray_address):
    root, files = library
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    shutil.copy(files["noise"], root / "noise" / "noise_copy.wav")  # a duplicate: copied, not embedded

    local = Settings(index_dir=tmp_path / "index-local", model=str(tiny_clap))
    want = pipeline.build(local, [root], workers=1, progress=False)

    # The CLI, connecting to the running cluster by address as to a real one.
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [str(BIN / "sfx-index"), "build", str(root), "--index", str(tmp_path / "index-ray"),
         "--model", str(tiny_clap), "--ray", ray_address, "--json", "-q"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)  # stdout holds the summary alone: Ray's logs stay off it

    for k in ("new", "duplicates", "failed", "windows"):
        assert got[k] == getattr(want, k), (k, got, want)
    assert (want.new, want.duplicates, want.failed) == (len(files), 1, 1)
    assert {f["path"]: f["reason"] for f in got["failures"]} == {f["path"]: f["reason"] for f in want.failures}

    # The catalog records what the actors embedded with, as the local build records its own
    # (the build's --runtime, here $SFX_RUNTIME=torch, reaches the actors).
    ran = []
    for s in (local, Settings(index_dir=tmp_path / "index-ray", model=str(tiny_clap))):
        index = Index.open(s)
        try:
            ran.append([(r["runtime"], r["precision"], r["version"]) for r in index.catalog.embedders()["runs"]])
        finally:
            index.close()
    assert ran[1] == ran[0] and ran[0][0][0] == "torch", ran

    a, check_a = _snapshot(local)
    b, check_b = _snapshot(Settings(index_dir=tmp_path / "index-ray", model=str(tiny_clap)))
    assert check_a["ok"] and check_b["ok"], (check_a, check_b)
    assert a.keys() == b.keys() and len(a) == len(files) + 2
    for rel in a:
        assert a[rel]["facts"] == b[rel]["facts"], rel
        assert a[rel]["chunks"] == b[rel]["chunks"], rel
        assert a[rel]["metadata"] == b[rel]["metadata"], rel
        assert a[rel]["error"] == b[rel]["error"], rel
        np.testing.assert_allclose(b[rel]["vectors"], a[rel]["vectors"], atol=1e-5, err_msg=rel)


def test_ray_rerun_connects_to_nothing_when_nothing_changed(tmp_path, tiny_clap, library, monkeypatch):
    root, _ = library
    settings = Settings(index_dir=tmp_path / "index", model=str(tiny_clap))
    pipeline.build(settings, [root], workers=1, progress=False)
    from indexer import ray_engine

    monkeypatch.setattr(ray_engine.RayCluster, "connect", classmethod(lambda cls, *a: pytest.fail("connected")))
    report = pipeline.build(settings, [root], progress=False, ray_address="ray://nowhere:10001")
    assert report.new == 0 and report.unchanged == len(list(root.rglob("*.*")))

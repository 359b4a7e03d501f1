"""Checkpoints: the three CLAP families, the Hugging Face cache (pull, list, remove), offline use.

Checkpoints are generated (scripts/make_random_clap.py) and laid out in a Hugging Face cache
folder exactly as the hub writes one (blobs, snapshot symlinks, refs/main), so that
`--model ORG/NAME` goes through the same lookup as a downloaded model, under HF_HUB_OFFLINE.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from indexer import models
from indexer.clap import ClapEncoder, read_logit_scales
from indexer.model_cli import model as model_cli

from fixtures_clap import tiny_clap_larger  # noqa: F401
from test_clap import SR, cos, reference_audio, repeatpad, windows


def lay_in_hf_cache(hf_home: Path, repo_id: str, src: Path, *, weights: str = "safetensors") -> Path:
    """Copy checkpoint `src` into hf_home/hub as the hub does; weights 'safetensors' or 'bin'."""
    files = {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()}
    if weights == "bin":
        import torch
        from safetensors.torch import load_file

        files.pop("model.safetensors")
        tmp = hf_home / "tmp.bin"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        torch.save(load_file(str(src / "model.safetensors")), tmp)
        files["pytorch_model.bin"] = tmp.read_bytes()
        tmp.unlink()
    org, name = repo_id.split("/")
    repo = hf_home / "hub" / f"models--{org}--{name}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    for fname, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snap / fname).symlink_to(os.path.relpath(blob, snap))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snap


# --- which files, which family ----------------------------------------------------------------

def test_download_patterns_take_one_copy_of_the_weights():
    both = ["config.json", "model.safetensors", "pytorch_model.bin", "vocab.json", "merges.txt"]
    assert "*.safetensors" in models.download_patterns(both)
    assert not any("bin" in p for p in models.download_patterns(both))
    only_bin = ["config.json", "pytorch_model.bin", "preprocessor_config.json"]
    pats = models.download_patterns(only_bin)
    assert "pytorch_model.bin" in pats and "*.safetensors" not in pats


def test_families_of_the_generated_checkpoints(tiny_clap_dirs, tiny_clap_larger):
    fam = {k: models.family(json.loads((d / "config.json").read_text())) for k, d in tiny_clap_dirs.items()}
    assert fam == {"fused": "fused", "unfused": "unfused"}
    larger = json.loads((tiny_clap_larger / "config.json").read_text())
    assert models.family(larger) == "larger"
    assert larger["audio_config"]["enable_fusion"] is False
    assert json.loads((tiny_clap_larger / "preprocessor_config.json").read_text())["truncation"] == "rand_trunc"
    # The full-size shapes, without writing the weights: HTSAT-base for larger, HTSAT-tiny otherwise.
    import importlib.util

    spec = importlib.util.spec_from_file_location("mrc", Path(__file__).parent.parent / "scripts" / "make_random_clap.py")
    mrc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mrc)
    assert models.family({"audio_config": dict(mrc.FULL_BASE_AUDIO, enable_fusion=False)}) == "larger"
    assert models.family({"audio_config": dict(mrc.FULL_AUDIO, enable_fusion=False)}) == "unfused"
    assert models.family({"audio_config": dict(mrc.FULL_AUDIO, enable_fusion=True)}) == "fused"


def test_larger_family_audio_agrees_with_transformers(tiny_clap_larger):
    w = windows(4)
    short = windows(1, seed=3)[0, : 2 * SR + 7]
    enc = ClapEncoder.load(str(tiny_clap_larger), precision="fp32", parts=("audio",))
    ours = enc.embed_audio(np.concatenate([w, repeatpad(short)[None]]), n_real=[len(w[0])] * 4 + [len(short)])
    ref = reference_audio(tiny_clap_larger, list(w) + [short])
    assert cos(ours, ref).min() >= 0.9999
    assert (ours @ ours.T)[np.triu_indices(5, 1)].min() < 0.99


# --- layouts that transformers and the hub write ----------------------------------------------

def test_transformers5_processor_layout_loads(tmp_path, tiny_clap):
    """ClapProcessor.save_pretrained in transformers 5 writes processor_config.json (the feature
    extractor nested) and no preprocessor_config.json; such a folder loads and embeds the same."""
    from transformers import ClapModel, ClapProcessor

    out = tmp_path / "saved-by-transformers"
    ClapModel.from_pretrained(str(tiny_clap)).save_pretrained(out)
    ClapProcessor.from_pretrained(str(tiny_clap)).save_pretrained(out)
    assert (out / "processor_config.json").is_file() and not (out / "preprocessor_config.json").exists()
    assert "feature_extractor" in json.loads((out / "processor_config.json").read_text())
    a = ClapEncoder.load(str(tiny_clap), precision="fp32")
    b = ClapEncoder.load(str(out), precision="fp32")
    w = windows(3)
    np.testing.assert_allclose(b.embed_audio(w), a.embed_audio(w), atol=1e-5)
    np.testing.assert_allclose(b.embed_text(["rain on a roof"]), a.embed_text(["rain on a roof"]), atol=1e-5)
    assert b.frontend.fused and b.fingerprint["frontend"] == a.fingerprint["frontend"]


def test_pytorch_bin_checkpoint_in_the_hf_cache_by_id(tmp_path, tiny_clap, library, monkeypatch):
    """A repository without safetensors (laion/larger_clap_* have only pytorch_model.bin), laid out
    in a local HF cache, used as --model ORG/NAME under HF_HUB_OFFLINE: build, search, list, remove."""
    from indexer.cli import main as index_cli
    from search.cli import main as search_cli

    hf = Path(os.environ["HF_HOME"])
    snap = lay_in_hf_cache(hf, "acme/clap-bin-only", tiny_clap, weights="bin")
    assert not list(snap.glob("*.safetensors")) and (snap / "pytorch_model.bin").is_file()
    scales = read_logit_scales(snap)
    assert scales == read_logit_scales(tiny_clap)

    root, files = library
    index = tmp_path / "idx"
    runner = CliRunner()
    r = runner.invoke(index_cli, ["build", str(root), "--index", str(index), "--model", "acme/clap-bin-only"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(search_cli, ["similar", str(files["sweep"]), "--include-self", "--json", "-n", "2", "--index", str(index),
                                   "--model", "acme/clap-bin-only"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["path"] == str(files["sweep"])

    r = runner.invoke(model_cli, ["list", "--json", "--index", str(index)])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)
    assert row["model_id"] == "acme/clap-bin-only" and row["family"] == "fused"
    assert row["indexes"] == [str(index.resolve())] and Path(row["path"]) == snap
    blobs = snap.parent.parent / "blobs"
    assert row["size"] == sum(p.stat().st_size for p in blobs.iterdir())

    r = runner.invoke(model_cli, ["remove", "acme/clap-bin-only", "--index", str(index)], input="n\n")
    assert r.exit_code == 1 and snap.is_dir() and f"index {index.resolve()} uses acme/clap-bin-only" in r.output
    r = runner.invoke(model_cli, ["remove", "acme/clap-bin-only", "-y"])
    assert r.exit_code == 0, r.output
    assert not snap.exists() and "freed" in r.output
    r = runner.invoke(model_cli, ["list", "--json"])
    assert json.loads(r.stdout) == []


def test_list_skips_what_is_not_clap_and_remove_unknown_is_one_line(tmp_path, tiny_clap):
    hf = Path(os.environ["HF_HOME"])
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "bert"}')
    lay_in_hf_cache(hf, "acme/not-clap", other)
    lay_in_hf_cache(hf, "acme/clap", tiny_clap)
    r = CliRunner().invoke(model_cli, ["list"])
    assert r.exit_code == 0 and "acme/clap " in r.stdout and "acme/not-clap" not in r.stdout and "fused" in r.stdout
    r = CliRunner().invoke(model_cli, ["remove", "acme/nothing", "-y"])
    assert r.exit_code == 1 and "is not in the Hugging Face cache" in r.output and len(r.output.strip().splitlines()) == 1


# --- pull, online once ------------------------------------------------------------------------

def test_pull_offline_says_how_to_get_the_model_there(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = CliRunner().invoke(model_cli, ["pull", "laion/clap-htsat-unfused"])
    assert r.exit_code == 1
    (line,) = r.output.strip().splitlines()
    assert "HF_HUB_OFFLINE" in line and "--model DIR" in line and "sfx-index model pull laion/clap-htsat-unfused" in line


def test_pull_without_network_is_one_line(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused at once
    r = CliRunner().invoke(model_cli, ["pull", "laion/clap-htsat-fused"])
    assert r.exit_code == 1
    (line,) = r.output.strip().splitlines()
    assert line.startswith("Error: cannot download 'laion/clap-htsat-fused'") and "check the network" in line
    assert not (Path(os.environ["HF_HOME"]) / "hub" / "models--laion--clap-htsat-fused" / "snapshots").exists()


# --- every family, end to end -----------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("family", ["fused", "unfused", "larger"])
def test_each_family_builds_and_searches(family, tiny_clap_dirs, tiny_clap_larger, library, tmp_path):
    from indexer.cli import main as index_cli
    from search.cli import main as search_cli

    ckpt = tiny_clap_larger if family == "larger" else tiny_clap_dirs[family]
    root, files = library
    index = tmp_path / f"idx-{family}"
    opts = ["--index", str(index), "--model", str(ckpt)]
    runner = CliRunner()
    r = runner.invoke(index_cli, ["build", str(root), *opts])
    assert r.exit_code == 0, r.output
    r = runner.invoke(search_cli, ["rain", "--json", "-n", "10", "--mode", "semantic", *opts])
    assert r.exit_code == 0, r.output
    assert {row["path"] for row in json.loads(r.stdout)} == {str(p) for p in files.values()}
    r = runner.invoke(search_cli, ["similar", str(files["long"]), "--include-self", "--json", "-n", "1", *opts])
    assert json.loads(r.stdout)[0]["path"] == str(files["long"])
    shutil.rmtree(index)

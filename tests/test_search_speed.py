"""The fast query path gives the same answers as the slow one (no timings here: see
scripts/bench_search.py): the cached text tower (indexer.textcache) against transformers'
ClapTextModelWithProjection and AutoTokenizer, its invalidation, and a query process that
never imports transformers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer import textcache
from indexer.clap import ClapEncoder

from fixtures_clap import _make_random_clap, tiny_clap, tiny_clap_dirs  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [
    "metal scraping in stone room",
    "a",
    "Dog barking far away, rain on a tin roof at night (café) 42",
    "door slam " * 400,  # beyond the tokenizer's maximum length: truncated the same way
]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("SFX_CACHE_DIR", str(d))
    monkeypatch.delenv("SFX_TEXT_CACHE", raising=False)
    return d


def cos(a, b) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return (a * b).sum(-1)


def transformers_text(ckpt, texts, dtype="fp32") -> np.ndarray:
    import torch
    from transformers import AutoTokenizer, ClapTextModelWithProjection

    tok = AutoTokenizer.from_pretrained(ckpt)
    model = ClapTextModelWithProjection.from_pretrained(
        ckpt, dtype=torch.float32 if dtype == "fp32" else torch.bfloat16).eval()
    with torch.inference_mode():
        out = model(**tok(list(texts), padding=True, truncation=True, return_tensors="pt")).text_embeds
    return out.float().numpy()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_first_load_exports_and_every_load_then_uses_the_cached_tower(tiny_clap, cache_dir, precision):
    first = ClapEncoder.load(str(tiny_clap), device="cpu", precision=precision, parts=("text",))
    entries = list((cache_dir / "text-towers").iterdir())
    assert len(entries) == 1 and (entries[0] / "weights.safetensors").is_file()
    # The process that exported it runs it too: the same vectors as every later process, to
    # the bit (in bf16, transformers' own would differ within the tolerance).
    assert isinstance(first._text, textcache.TextTower)
    a = first.embed_text(TEXTS)

    second = ClapEncoder.load(str(tiny_clap), device="cpu", precision=precision, parts=("text",))
    b = second.embed_text(TEXTS)
    assert isinstance(second._text, textcache.TextTower)
    assert b.dtype == np.float32 and b.shape == a.shape
    assert np.array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    if precision == "bf16":
        return
    ref = transformers_text(tiny_clap, TEXTS)
    assert cos(ref, b).min() >= 0.99999
    # one at a time (no padding) equals the padded batch
    alone = np.concatenate([second.embed_text([t]) for t in TEXTS])
    assert cos(alone, b).min() >= 0.99999


def test_tokenization_equals_autotokenizer_including_truncation(tiny_clap, cache_dir):
    from transformers import AutoTokenizer

    ClapEncoder.load(str(tiny_clap), precision="fp32", parts=("text",))
    tower = textcache.load(Path(tiny_clap), "fp32")
    assert tower is not None
    tok = AutoTokenizer.from_pretrained(tiny_clap)
    for batch in (TEXTS, TEXTS[:1], ["", "ünïcödé — “quotes”", "x" * 3000], [TEXTS[3]]):
        ref = tok(batch, padding=True, truncation=True, return_tensors="pt")
        ids, mask = tower.tokenize(batch)
        assert ids.tolist() == ref["input_ids"].tolist()
        assert mask.tolist() == ref["attention_mask"].tolist()
    ids, _ = tower.tokenize([TEXTS[3]])
    assert ids.shape[1] == tok.model_max_length  # truncated at the model's maximum


def test_bf16_tower_matches_bf16_transformers_and_stays_close_to_fp32(tiny_clap, cache_dir):
    ClapEncoder.load(str(tiny_clap), device="cpu", precision="bf16", parts=("text",))
    enc = ClapEncoder.load(str(tiny_clap), device="cpu", precision="bf16", parts=("text",))
    assert isinstance(enc._text, textcache.TextTower) and enc.precision == "bf16"
    ours = enc.embed_text(TEXTS)
    assert cos(ours, transformers_text(tiny_clap, TEXTS, "bf16")).min() >= 0.999
    assert cos(ours, transformers_text(tiny_clap, TEXTS, "fp32")).min() >= 0.999


def test_a_changed_checkpoint_gets_a_new_tower(tmp_path, tiny_clap, cache_dir):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_clap, ckpt)
    ClapEncoder.load(str(ckpt), precision="fp32", parts=("text",))
    before = textcache.load(ckpt, "fp32")
    assert before is not None
    _make_random_clap()(ckpt, tiny=True, fused=True, seed=1)  # new weights, same config
    assert textcache.load(ckpt, "fp32") is None  # the old entry no longer matches
    fresh = ClapEncoder.load(str(ckpt), precision="fp32", parts=("text",))
    assert cos(fresh.embed_text(TEXTS), transformers_text(ckpt, TEXTS)).min() >= 0.99999
    again = ClapEncoder.load(str(ckpt), precision="fp32", parts=("text",))
    assert isinstance(again._text, textcache.TextTower)
    assert cos(again.embed_text(TEXTS), transformers_text(ckpt, TEXTS)).min() >= 0.99999


def test_an_unfaithful_export_is_refused(tiny_clap, cache_dir, monkeypatch):
    real = textcache._tensors

    def broken(sd, n, dtype):
        out = real(sd, n, dtype)
        out["pooler.bias"] = out["pooler.bias"] + 0.5
        return out

    monkeypatch.setattr(textcache, "_tensors", broken)
    enc = ClapEncoder.load(str(tiny_clap), precision="fp32", parts=("text",))
    enc.embed_text(["door"])
    assert textcache.load(Path(tiny_clap), "fp32") is None
    assert not any((cache_dir / "text-towers").glob("*/meta.json"))


def test_disabled_by_environment(tiny_clap, cache_dir, monkeypatch):
    monkeypatch.setenv("SFX_TEXT_CACHE", "0")
    for _ in range(2):
        enc = ClapEncoder.load(str(tiny_clap), precision="fp32", parts=("text",))
        enc.embed_text(["door"])
        assert not isinstance(enc._text, textcache.TextTower)
    assert not (cache_dir / "text-towers").exists()


def test_a_query_process_with_the_cache_never_imports_transformers(tiny_clap, cache_dir):
    ClapEncoder.load(str(tiny_clap), precision="fp32", parts=("text",))  # writes the cache
    code = (
        "import sys\n"
        "from indexer.clap import ClapEncoder\n"
        f"e = ClapEncoder.load({str(tiny_clap)!r}, precision='fp32', parts=('text',))\n"
        "v = e.embed_text(['metal scraping in stone room'])\n"
        "assert v.shape == (1, e.dim), v.shape\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('transformers', 'sympy', 'scipy'))\n"
        "print(len(bad), bad[:5])\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("0 "), out.stdout

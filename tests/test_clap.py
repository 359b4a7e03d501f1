"""The CLAP encoder against plain transformers, on generated random checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from indexer.clap import ClapEncoder, ModelLoadError, cpu_has_fast_bf16, load_frontend
from indexer.config import UserError

from fixtures_clap import full_checkpoint, tiny_clap, tiny_clap_dirs, tiny_clap_unfused  # noqa: F401

SR = 48_000
N = 480_000


def windows(k: int, seed: int = 0) -> np.ndarray:
    """k distinct 10 s windows: tones, sweeps, noise, clicks, gated noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(N) / SR
    out = []
    for i in range(k):
        kind = i % 5
        if kind == 0:
            x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t)
        elif kind == 1:
            f0, f1 = rng.uniform(50, 500), rng.uniform(2000, 12000)
            x = 0.3 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / 20))
        elif kind == 2:
            x = rng.normal(0, rng.uniform(0.01, 0.3), N)
        elif kind == 3:
            x = np.zeros(N)
            x[rng.integers(0, N, 40)] = 0.9
        else:
            x = rng.normal(0, 0.2, N) * (np.sin(2 * np.pi * rng.uniform(0.5, 4) * t) > 0.6)
        out.append(x)
    return np.stack(out).astype(np.float32)


def repeatpad(x: np.ndarray, n: int = N) -> np.ndarray:
    return np.pad(np.tile(x, n // len(x)), (0, n - (n // len(x)) * len(x)))


def cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return (a * b).sum(-1)


def reference_audio(ckpt, clips) -> np.ndarray:
    """ClapFeatureExtractor + ClapModel.get_audio_features, is_longer from the real length."""
    import torch
    from transformers import ClapFeatureExtractor, ClapModel

    fe = ClapFeatureExtractor.from_pretrained(ckpt)
    model = ClapModel.from_pretrained(ckpt).eval()
    feats = fe([np.asarray(c, np.float64) for c in clips], sampling_rate=SR, return_tensors="pt")
    is_longer = torch.tensor([[len(c) > N] for c in clips])  # never transformers' random pick
    with torch.inference_mode():
        out = model.get_audio_features(input_features=feats["input_features"], is_longer=is_longer)
    return out.pooler_output.numpy()


# --- the generated checkpoint -----------------------------------------------------------------

def test_random_checkpoint_loads_through_from_pretrained(tiny_clap_dirs):
    from transformers import AutoTokenizer, ClapModel, ClapProcessor

    for name, d in tiny_clap_dirs.items():
        ClapModel.from_pretrained(d)
        proc = ClapProcessor.from_pretrained(d)
        fe = proc.feature_extractor
        assert (fe.feature_size, fe.sampling_rate, fe.hop_length, fe.fft_window_size) == (64, 48000, 480, 1024)
        assert (fe.frequency_min, fe.frequency_max, fe.max_length_s, fe.padding) == (50, 14000, 10, "repeatpad")
        assert fe.truncation == ("fusion" if name == "fused" else "rand_trunc")
        cfg = json.loads((d / "config.json").read_text())
        assert cfg["audio_config"]["enable_fusion"] is (name == "fused")
        tok = AutoTokenizer.from_pretrained(d)
        assert tok.is_fast
        assert [tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token, tok.mask_token] == \
            ["<s>", "</s>", "<pad>", "<unk>", "<mask>"]
        ids = tok("metal scraping in stone room").input_ids
        assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id and tok.unk_token_id not in ids


def test_random_checkpoint_is_deterministic(tmp_path, tiny_clap):
    from fixtures_clap import _make_random_clap

    again = _make_random_clap()(tmp_path / "again", tiny=True, fused=True, seed=0)
    for f in ("model.safetensors", "config.json", "tokenizer.json", "preprocessor_config.json"):
        assert (again / f).read_bytes() == (tiny_clap / f).read_bytes(), f


def test_importing_clap_does_not_import_torch_or_transformers():
    code = "import sys, indexer.clap; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- audio ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["fused", "unfused"])
def test_audio_agrees_with_transformers(tiny_clap_dirs, kind):
    ckpt = tiny_clap_dirs[kind]
    w = windows(5)
    short = windows(1, seed=3)[0, : 3 * SR + 123]  # a 3 s clip: repeat-padded by both sides
    enc = ClapEncoder.load(str(ckpt), precision="fp32", parts=("audio",))
    ours = enc.embed_audio(np.concatenate([w, repeatpad(short)[None]]), n_real=[N] * 5 + [len(short)])
    ref = reference_audio(ckpt, list(w) + [short])
    assert ours.dtype == np.float32 and ours.shape == (6, enc.dim)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert cos(ours, ref).min() >= 0.9999
    # ...and the vectors are not all alike, so the agreement says something
    assert (ours @ ours.T)[np.triu_indices(6, 1)].min() < 0.99


def test_same_window_alone_or_in_a_mixed_batch(tiny_clap):
    enc = ClapEncoder.load(str(tiny_clap), precision="fp32", parts=("audio",))
    batch = windows(16, seed=7)
    alone = enc.embed_audio(batch[5:6])
    in_batch = enc.embed_audio(batch)
    assert cos(alone[0], in_batch[5]) >= 0.99999
    assert cos(enc.embed_audio(batch[:3])[2], in_batch[2]) >= 0.99999


def test_features_then_embed_features_equals_embed_audio(tiny_clap_dirs):
    w = windows(3)
    for kind, channels in (("fused", 4), ("unfused", 1)):
        enc = ClapEncoder.load(str(tiny_clap_dirs[kind]), precision="fp32", parts=("audio",))
        feats, longer = enc.features(w)
        assert feats.shape == (3, channels, 1001, 64) and feats.dtype == np.float32
        assert not longer.any()
        np.testing.assert_allclose(enc.embed_features(feats, longer), enc.embed_audio(w), atol=1e-5)
        mel = feats[:, 0]
        np.testing.assert_allclose(enc.embed_mel(mel), enc.embed_audio(w), atol=1e-5)


def test_bf16_stays_close_to_fp32(tiny_clap):
    w = windows(5, seed=1)
    fp32 = ClapEncoder.load(str(tiny_clap), precision="fp32", parts=("audio", "text"))
    bf16 = ClapEncoder.load(str(tiny_clap), device="cpu", precision="bf16", parts=("audio", "text"))
    assert bf16.precision == "bf16"
    assert cos(fp32.embed_audio(w), bf16.embed_audio(w)).min() >= 0.999
    texts = ["dog barking in a cave", "metal scraping in stone room"]
    assert cos(fp32.embed_text(texts), bf16.embed_text(texts)).min() >= 0.999
    assert bf16.embed_audio(w).dtype == np.float32


needs_bf16 = pytest.mark.skipif(not cpu_has_fast_bf16(), reason="this CPU has no bf16 instructions")

# A window's vector must not depend on its batch, the batch's order, torch's thread count or
# the run (DESIGN.md invariant 2), in bf16 too: builds use bf16 where the CPU has it.
_BATCH_SIZES = (1, 2, 3, 5, 7, 8, 13, 16)
_LONGER = (2, 6, 7)  # windows marked longer (their channels 1..3 are read) among 13


def _batch_probe(ckpt, precision):
    enc = ClapEncoder.load(str(ckpt), device="cpu", precision=precision, parts=("audio",))
    mel = enc.features(windows(13, seed=11))[0][:, 0]
    n_real = np.full(13, N)
    n_real[list(_LONGER)] = N + 1
    return enc, mel, n_real


def _embed_in_batches(enc, mel, n_real, order, size):
    return np.concatenate([enc.embed_mel(mel[order[i:i + size]], n_real[order[i:i + size]])
                           for i in range(0, len(order), size)])


@pytest.mark.parametrize("precision", [pytest.param("bf16", marks=needs_bf16), "fp32"])
def test_vectors_do_not_depend_on_the_batch(tiny_clap, precision):
    """bf16 to the bit. fp32 to ~1e-7 only: MKL's sgemm picks its kernels by the batch's rows
    (measured up to 1.2e-7 between batch sizes), where oneDNN's bf16 kernels do not."""
    enc, mel, n_real = _batch_probe(tiny_clap, precision)
    assert enc.precision == precision

    def same(a, b):
        return np.array_equal(a, b) if precision == "bf16" else np.allclose(a, b, rtol=0, atol=1e-6)

    alone = np.concatenate([enc.embed_mel(mel[i:i + 1], n_real[i:i + 1]) for i in range(13)])
    rng = np.random.default_rng(0)
    for size in _BATCH_SIZES:
        order = np.arange(13) if size % 2 else rng.permutation(13)
        got = _embed_in_batches(enc, mel, n_real, order, size)
        assert same(got, alone[order]), f"batch size {size}"
    # Short windows alone, beside longer ones, or only with their own kind.
    short = np.setdiff1d(np.arange(13), _LONGER)
    assert same(enc.embed_mel(mel[short], n_real[short]), alone[short])
    longer = np.array(_LONGER)
    assert same(enc.embed_mel(mel[longer], n_real[longer]), alone[longer])
    # embed_features and embed_audio take the same routes.
    feats, is_longer = enc.features(windows(13, seed=11)[:4], n_real[:4])
    assert same(enc.embed_features(feats, is_longer), alone[:4])
    enc.batch_size = 3
    assert same(enc.embed_audio(windows(13, seed=11)[:4], n_real[:4]), alone[:4])


@needs_bf16
def test_bf16_vectors_do_not_depend_on_threads_or_the_run(tiny_clap):
    import torch

    enc, mel, n_real = _batch_probe(tiny_clap, "bf16")
    before = torch.get_num_threads()
    got = {}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            got[threads] = _embed_in_batches(enc, mel, n_real, np.arange(13), 5)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(got[1], got[2])
    # A fresh process, on its own thread count and batch size.
    code = (
        "import sys, numpy as np, torch; sys.path.insert(0, sys.argv[2]); torch.set_num_threads(1)\n"
        "from test_clap import _batch_probe, _embed_in_batches\n"
        "enc, mel, n_real = _batch_probe(sys.argv[1], 'bf16')\n"
        "np.save(sys.stdout.buffer, _embed_in_batches(enc, mel, n_real, np.arange(13)[::-1], 4)[::-1])\n"
    )
    import io
    from pathlib import Path

    out = subprocess.run([sys.executable, "-c", code, str(tiny_clap), str(Path(__file__).parent)],
                         capture_output=True, check=True)
    assert np.array_equal(np.load(io.BytesIO(out.stdout)), got[2])


def test_builds_resolve_auto_precision_like_the_encoder(tiny_clap):
    from indexer.clap import resolve_precision

    # A build hands the asked precision (auto included) to the encoder of the machine that embeds.
    enc = ClapEncoder.load(str(tiny_clap), device="cpu", precision="auto", parts=())
    assert enc.precision == resolve_precision("auto", "cpu") == ("bf16" if cpu_has_fast_bf16() else "fp32")
    assert [ClapEncoder.load(str(tiny_clap), device="cpu", precision=p, parts=()).precision
            for p in ("fp32", "bf16")] == ["fp32", "bf16"]


# --- text -------------------------------------------------------------------------------------

def test_text_equals_get_text_features(tiny_clap):
    import torch
    from transformers import AutoTokenizer, ClapModel

    texts = ["dog barking", "metal scraping in stone room", "rain on a tin roof at night"]
    enc = ClapEncoder.load(str(tiny_clap), precision="fp32", parts=("text",))
    ours = enc.embed_text(texts)
    tok = AutoTokenizer.from_pretrained(tiny_clap)
    model = ClapModel.from_pretrained(tiny_clap).eval()
    with torch.inference_mode():
        ref = model.get_text_features(**tok(texts, padding=True, return_tensors="pt")).pooler_output.numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert (ours @ ours.T)[np.triu_indices(3, 1)].min() < 0.99


def test_text_path_never_builds_the_audio_tower(tiny_clap, monkeypatch):
    from transformers.models.clap import modeling_clap

    def refuse(*a, **k):
        raise AssertionError("the audio tower was built for a text query")

    monkeypatch.setattr(modeling_clap.ClapAudioEncoder, "__init__", refuse)
    enc = ClapEncoder.load(str(tiny_clap), parts=("text",))
    assert enc.embed_text(["door slam"]).shape == (1, enc.dim)


# --- facts ------------------------------------------------------------------------------------

def test_fingerprint_and_logit_scales(tiny_clap_dirs):
    fused = ClapEncoder.load(str(tiny_clap_dirs["fused"]), parts=())
    unfused = ClapEncoder.load(str(tiny_clap_dirs["unfused"]), parts=())
    fp = fused.fingerprint
    assert set(fp) == {"model_id", "config_hash", "frontend"}
    assert fp["model_id"] == str(tiny_clap_dirs["fused"].resolve())
    assert fp["frontend"]["mel_scale"] == "htk" and unfused.fingerprint["frontend"]["mel_scale"] == "slaney"
    assert fp["config_hash"] != unfused.fingerprint["config_hash"]
    frontend, fp2 = load_frontend(str(tiny_clap_dirs["fused"]))
    assert fp2 == fp and frontend["frequency_min"] == 50
    assert fused.logit_scale_a == pytest.approx(1 / 0.07, rel=1e-5)
    assert fused.logit_scale_t == pytest.approx(1 / 0.07, rel=1e-5)
    assert fused.dim == 32


# --- errors -----------------------------------------------------------------------------------

def _one_line_error(model: str) -> str:
    with pytest.raises(ModelLoadError) as info:
        ClapEncoder.load(model)
    msg = str(info.value)
    assert isinstance(info.value, UserError)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_missing_directory(tmp_path):
    msg = _one_line_error(str(tmp_path / "nowhere"))
    assert "does not exist" in msg and "make_random_clap" in msg


def test_not_a_clap_checkpoint(tmp_path):
    d = tmp_path / "bert"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    assert "not CLAP" in _one_line_error(str(d))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no config.json" in _one_line_error(str(empty))


def test_config_but_no_weights(tmp_path, tiny_clap):
    d = tmp_path / "broken"
    d.mkdir()
    for f in ("config.json", "preprocessor_config.json"):
        (d / f).write_bytes((tiny_clap / f).read_bytes())
    assert "no weights" in _one_line_error(str(d))
    (d / "model.safetensors").write_bytes(b"not a safetensors file")
    assert "cannot load" in _one_line_error(str(d))


def test_unknown_id_offline_is_quick_and_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    t0 = time.monotonic()
    msg = _one_line_error("nobody/no-such-clap")
    assert time.monotonic() - t0 < 30  # a generous bound: no network retries
    assert "not in the Hugging Face cache" in msg and "SFX_MODEL" in msg


# --- full size --------------------------------------------------------------------------------

@pytest.mark.slow
def test_full_size_fused_agrees_with_transformers(tmp_path_factory):
    ckpt = full_checkpoint(tmp_path_factory.mktemp("clap-full"))
    w = windows(2)
    enc = ClapEncoder.load(str(ckpt), precision="fp32", parts=("audio",))
    assert enc.dim == 512
    assert cos(enc.embed_audio(w), reference_audio(ckpt, list(w))).min() >= 0.9999

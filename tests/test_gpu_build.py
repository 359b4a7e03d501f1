"""A build whose model runs on a GPU: the decode workers send raw windows and the model's
device computes the log-mel frontend (indexer.runtime.gpu_mel), in large batches.

The raw-window path is the same code on the CPU (ClapEncoder.upload and embed_audio take the
CPU frontend there), so it is tested here against the workers' frontend; the CUDA test runs
where CUDA exists.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

import audiogen
from indexer import builder, decode_worker, pipeline, workers
from indexer.config import Settings
from test_build import _snapshot


def _spy_pool(monkeypatch) -> list:
    """The frontend config each DecodePool of the test was started with."""
    seen = []
    real = builder.DecodePool

    def pool(fe_config, *a, **k):
        seen.append(fe_config)
        return real(fe_config, *a, **k)

    monkeypatch.setattr(builder, "DecodePool", pool)
    return seen


def _compare(a: dict, b: dict, min_cos: float) -> None:
    assert a.keys() == b.keys() and a
    for rel in a:
        *facts_a, vecs_a = a[rel]
        *facts_b, vecs_b = b[rel]
        assert facts_a == facts_b, rel  # status, hash, duration, rate, channels, chunk times
        assert vecs_a.shape == vecs_b.shape and vecs_a.shape[0] >= 1
        assert float((vecs_a * vecs_b).sum(1).min()) >= min_cos, rel


def test_raw_windows_with_the_frontend_on_the_model_embed_as_the_workers_frontend(
        tmp_path, tiny_clap, library, monkeypatch):
    root, _ = library
    seen = _spy_pool(monkeypatch)
    workers_fe = Settings(index_dir=tmp_path / "workers-frontend", model=str(tiny_clap), device="cpu",
                          precision="fp32")
    pipeline.build(workers_fe, [str(root)], workers=1, progress=False)
    assert isinstance(seen[-1], dict)  # the workers compute the log-mel on a CPU model

    # The CPU taken for a GPU: the same wiring as on CUDA, with the CPU frontend in the model.
    monkeypatch.setattr(pipeline, "FRONTEND_ON_DEVICE", ("cuda", "cpu"))
    model_fe = Settings(index_dir=tmp_path / "model-frontend", model=str(tiny_clap), device="cpu",
                        precision="fp32")
    report = pipeline.build(model_fe, [str(root)], workers=2, progress=False)
    assert seen[-1] is None  # workers started without a frontend: raw windows
    assert report.failed == 0 and report.windows >= 8  # the 23 s file has 3 windows
    _compare(_snapshot(workers_fe), _snapshot(model_fe), 0.99999)


def _report_torch(*args):
    """decode_worker.worker_main, then whether torch was imported, into $SFX_TEST_REPORT."""
    decode_worker.worker_main(*args)
    with open(os.environ["SFX_TEST_REPORT"], "w") as f:
        f.write(str("torch" in sys.modules))


def test_a_worker_without_a_frontend_sends_raw_windows_and_never_imports_torch(tmp_path, monkeypatch):
    path = audiogen.write_audio(tmp_path / "long.wav", audiogen.noise(44100, 25.0, seed=3), 44100)
    short = audiogen.write_audio(tmp_path / "short.wav", audiogen.noise(48000, 2.0, seed=4), 48000)
    monkeypatch.setenv("SFX_TEST_REPORT", str(tmp_path / "torch"))
    monkeypatch.setattr(workers.DecodePool, "worker_main", staticmethod(_report_torch))
    pool = workers.DecodePool(None, 1)
    got = []
    try:
        pool.submit(workers.Task(1, str(path), 10.0, False))
        pool.submit(workers.Task(2, str(short), 10.0, False))
        deadline = time.monotonic() + 120
        while sum(isinstance(m, workers.Done) for m in got) < 2 and time.monotonic() < deadline:
            msg = pool.get(timeout=0.5)
            if msg is not None:
                got.append(msg)
    finally:
        pool.close()
    parts = [m for m in got if isinstance(m, workers.Part)]
    assert [m.key for m in parts] == [1, 1, 1, 2] and decode_worker.RAW_PART_WINDOWS == 1  # 3 windows, then 1
    assert all(m.data.dtype == np.float32 and m.data.shape == (1, 480_000) for m in parts[:3])
    # no more bytes a part than eight windows of log-mel: the pool's memory bound holds
    assert parts[0].data.nbytes <= 8 * 1001 * 64 * 4
    assert parts[3].data.shape == (1, 2 * 48_000) and parts[3].n_real == [2 * 48_000]  # real samples alone
    assert (tmp_path / "torch").read_text() == "False"


def test_a_short_file_travels_as_its_real_samples_and_is_padded_as_the_cpu_pads(tmp_path, tiny_clap, monkeypatch):
    import torch

    from indexer.windowing import repeat_pad
    from indexer.clap import ClapEncoder
    from indexer.runtime import gpu_mel

    rng = np.random.default_rng(4)
    for m in (1, 7, 48_000, 100_003, 479_999):
        x = rng.standard_normal((1, m)).astype(np.float32)
        np.testing.assert_array_equal(gpu_mel.repeat_pad(torch.from_numpy(x), 480_000)[0].numpy(),
                                      repeat_pad(x[0]))
    enc = ClapEncoder.load(str(tiny_clap), device="cpu", precision="fp32", parts=())
    short = rng.standard_normal((1, 96_000)).astype(np.float32)
    assert tuple(enc.upload(short).shape) == (1, 480_000)
    full = rng.standard_normal((2, 480_000)).astype(np.float32)
    np.testing.assert_array_equal(enc.upload(full).numpy(), full)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fixed_batches_give_the_model_one_shape_and_the_same_vectors(tiny_clap, precision):
    """What CUDA runs (ClapEncoder.fixed_batch, set there by load): every model call cut or
    zero-padded to one size. On the CPU, where a vector is already independent of its batch,
    the padding must change no vector; the model must see that size alone."""
    from indexer.clap import ClapEncoder

    enc = ClapEncoder.load(str(tiny_clap), device="cpu", precision=precision, runtime="torch", parts=("audio",))
    assert enc.fixed_batch == 0  # the CPU needs no padding
    w = np.random.default_rng(5).standard_normal((7, 480_000)).astype(np.float32)
    enc.batch_size = 16
    plain = enc.embed_audio(w)
    model = enc._audio_model()
    sizes = []
    real_forward = model.forward

    def forward(*a, **k):
        sizes.append(k["input_features"].shape[0])
        return real_forward(*a, **k)

    model.forward = forward
    enc.fixed_batch = 4
    padded = enc.embed_audio(w)
    one = enc.embed_audio(w[2:3])
    assert sizes and set(sizes) == {4}
    if precision == "bf16":
        assert np.array_equal(plain, padded) and np.array_equal(one[0], padded[2])
    else:
        np.testing.assert_allclose(padded, plain, rtol=0, atol=1e-6)
        np.testing.assert_allclose(one[0], padded[2], rtol=0, atol=1e-6)


def test_defaults_follow_the_device(monkeypatch):
    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: 16)
    assert pipeline.default_workers("cpu") == 8 and pipeline.default_workers() == 8
    assert pipeline.default_workers("cuda") == 15 == pipeline.default_workers("mps")
    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: 1)
    assert pipeline.default_workers("cpu") == 1 == pipeline.default_workers("cuda")
    assert pipeline.default_batch_size("cpu") == 16 and pipeline.default_batch_size("cuda") == 128


def _cuda() -> bool:
    """Asked inside the test: importing torch here would import it into the spawned workers
    of the test above too (they import this module for its hook)."""
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def test_a_cuda_build_embeds_as_the_cpu_build(tmp_path, tiny_clap, library, monkeypatch):
    if not _cuda():
        pytest.skip("no CUDA device on this machine (the CUDA build runs where one exists)")
    root, _ = library
    seen = _spy_pool(monkeypatch)
    cpu = Settings(index_dir=tmp_path / "cpu", model=str(tiny_clap), device="cpu", precision="fp32")
    pipeline.build(cpu, [str(root)], workers=1, progress=False)
    gpu = Settings(index_dir=tmp_path / "cuda", model=str(tiny_clap), device="cuda", precision="fp32")
    report = pipeline.build(gpu, [str(root)], workers=2, progress=False)
    assert seen == [seen[0], None] and report.failed == 0
    _compare(_snapshot(cpu), _snapshot(gpu), 0.9999)
    # one batch shape on CUDA: a window's vector is the same alone and inside a batch
    from indexer.clap import ClapEncoder
    from indexer.runtime.gpu_mel import upload

    for precision in ("fp32", "bf16"):
        enc = ClapEncoder.load(str(tiny_clap), device="cuda", precision=precision, parts=("audio",))
        assert enc.fixed_batch == enc.batch_size == ClapEncoder.gpu_batch_size
        w = upload(np.random.default_rng(6).standard_normal((130, 480_000)).astype(np.float32), "cuda")
        batch = enc.embed_audio(w)
        alone = np.concatenate([enc.embed_audio(w[i:i + 1]) for i in (0, 77, 129)])
        assert np.array_equal(alone, batch[[0, 77, 129]]), precision
    # bf16 on the GPU, as `auto` picks there: within the tolerance of fp32 (invariant 2)
    bf16 = Settings(index_dir=tmp_path / "cuda-bf16", model=str(tiny_clap), device="cuda", precision="bf16")
    pipeline.build(bf16, [str(root)], workers=2, progress=False)
    snap = _snapshot(bf16)
    assert np.isfinite(np.concatenate([v[-1] for v in snap.values()])).all()
    _compare(_snapshot(cpu), snap, 0.999)

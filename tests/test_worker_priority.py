"""The decode workers' priority follows the model they feed (workers.DecodePool.set_niceness).

Beside torch on the CPU (ops spread over threads that wait for each other) the workers run
WORKER_NICENESS lower, so they only fill the time the model leaves; beside OpenVINO's
one-thread streams they share the cores as equals (docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

import audiogen
from indexer import clap, workers
from indexer.engine import LocalEngine

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the workers' threads")


def _thread_niceness(pid: int) -> set[int]:
    return {os.getpriority(os.PRIO_PROCESS, int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


def _pool(tiny_clap) -> workers.DecodePool:
    fe_config, _ = clap.load_frontend(str(tiny_clap))
    return workers.DecodePool(dict(fe_config), 1)


def _decode(pool: workers.DecodePool, path, key: int) -> None:
    """Decode one file through the pool and wait for its Done (the worker's queue thread is up)."""
    pool.submit(workers.Task(key, str(path), 10.0, False))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        msg = pool.get(timeout=0.5)
        if isinstance(msg, workers.Fail):
            pytest.fail(msg.reason)
        if isinstance(msg, workers.Done) and msg.key == key:
            return
    pytest.fail("the worker never finished the file")


def test_set_niceness_reaches_every_thread_of_the_workers_and_their_replacements(tiny_clap, tmp_path):
    path = audiogen.write_audio(tmp_path / "tone.wav", audiogen.sine(48000, 3.0), 48000)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    if base + 10 > 19:
        pytest.skip("this test runs too niced to see a rise of 10")
    pool = _pool(tiny_clap)
    try:
        _decode(pool, path, 1)
        (slot,) = pool.slots.values()
        threads = os.listdir(f"/proc/{slot.proc.pid}/task")
        assert len(threads) > 1  # the main thread and its sending and receiving threads at least
        assert _thread_niceness(slot.proc.pid) == {base}

        pool.set_niceness(10)
        assert _thread_niceness(slot.proc.pid) == {base + 10}

        # A worker that dies is replaced at the niceness the pool runs at now.
        slot.proc.kill()
        slot.proc.join(30)
        deadline = time.monotonic() + 30
        while slot.proc.pid in [s.proc.pid for s in pool.slots.values()] and time.monotonic() < deadline:
            pool.get(timeout=0.2)
        (new,) = pool.slots.values()
        assert new.proc.pid != slot.proc.pid
        _decode(pool, path, 2)
        assert _thread_niceness(new.proc.pid) == {base + 10}
    finally:
        pool.close()


class _Model:
    """A stand-in encoder with the one fact the engine asks (a unit test of scheduling)."""

    def __init__(self, span_threads: bool):
        self.span_threads = span_threads

    def audio_ops_span_threads(self) -> bool:
        return self.span_threads

    def embed_mel(self, mel, n_real=None):
        v = np.random.default_rng(0).standard_normal((len(mel), 8)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("span_threads, expected", [(True, workers.WORKER_NICENESS), (False, 0)])
def test_the_engine_sets_the_workers_priority_from_its_model(tiny_clap, tmp_path, span_threads, expected):
    path = audiogen.write_audio(tmp_path / "tone.wav", audiogen.sine(48000, 12.0), 48000)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    if base + workers.WORKER_NICENESS > 19:
        pytest.skip("this test runs too niced to see the workers' rise")
    pools = []

    def pool_factory():
        pools.append(_pool(tiny_clap))
        return pools[-1]

    engine = LocalEngine(pool_factory, lambda: _Model(span_threads), batch_size=4, capacity=2, measure=False)
    try:
        engine.submit(1, str(path))
        results = []
        deadline = time.monotonic() + 120
        while not results and time.monotonic() < deadline:
            results = engine.poll(0.5, final=True)
        (result,) = results
        assert result.error is None and len(result.chunks) == 2
        (pool,) = pools
        assert pool.niceness == expected
        (slot,) = pool.slots.values()
        assert _thread_niceness(slot.proc.pid) == {base + expected}
    finally:
        engine.close()


@pytest.mark.parametrize("runtime", ["torch", "openvino"])
def test_only_the_torch_tower_on_the_cpu_spans_threads(tiny_clap, monkeypatch, runtime):
    import torch

    if runtime == "openvino":
        pytest.importorskip("openvino")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        enc = clap.ClapEncoder.load(str(tiny_clap), device="cpu", precision="fp32", parts=("audio",), runtime=runtime)
        assert enc.audio_runtime() == runtime
        assert enc.audio_ops_span_threads() is (runtime == "torch")
        torch.set_num_threads(1)
        assert enc.audio_ops_span_threads() is False
    finally:
        torch.set_num_threads(threads)

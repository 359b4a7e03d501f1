"""A decoder that crashes while its worker is halfway through sending a part (workers.DecodePool).

The model call in the parent takes a while, the worker's next part fills the pipe and its
sending thread waits halfway through it; then the worker's decoder crashes on the next file.
On a shared multiprocessing.Queue that left the queue's lock held and half a message in the
pipe: the build waited forever. Each worker now has its own pipes, so the death reads as the
end of that worker's pipe: the file it was sending is decoded again from its start, the file
that crashed it fails with the reason, and the run goes on.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import audiogen
from indexer import clap, decode_worker, workers
from indexer.engine import LocalEngine

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the crashes are SIGKILLs")


CRASH_AFTER = "SFX_TEST_CRASH_AFTER"  # a file whose existence lets the crash happen


def _crash_on_probe(*args):
    """decode_worker.worker_main with a decoder that dies on CRASH_* files, once the file named
    by $SFX_TEST_CRASH_AFTER exists (module level: the spawned worker imports it by name)."""
    import signal

    import indexer.audio as audio

    real_probe = audio.probe

    def probe(path):
        if os.path.basename(path).startswith("CRASH_"):
            flag = os.environ.get(CRASH_AFTER)
            while flag and not os.path.exists(flag):
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGKILL)  # a hard crash inside a decoder library
        return real_probe(path)

    audio.probe = probe
    decode_worker.worker_main(*args)


class _SlowModel:
    """Its first call takes long enough for the worker to fill its pipe and crash behind it;
    it lets the crash happen (the flag) once it has started."""

    def __init__(self, first_call_s: float, flag):
        self.first_call_s = first_call_s
        self.flag = flag
        self.calls = 0
        self.rows = 0

    def audio_ops_span_threads(self) -> bool:
        return False

    def embed_mel(self, mel, n_real=None):
        self.calls += 1
        self.rows += len(mel)
        if self.calls == 1:
            self.flag.touch()
            time.sleep(self.first_call_s)
        # A window's vector from its own mel, so a file's vectors show where they came from.
        v = mel.reshape(len(mel), -1)[:, :8].astype(np.float32) + 1.0
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_crash_while_a_part_is_half_sent_costs_only_the_crashing_file(tiny_clap, tmp_path, monkeypatch):
    long_file = audiogen.write_audio(tmp_path / "long.wav", audiogen.noise(48000, 120.0, seed=3), 48000)
    crasher = audiogen.write_audio(tmp_path / "CRASH_decoder.wav", audiogen.sine(48000, 2.0), 48000)
    after = audiogen.write_audio(tmp_path / "after.wav", audiogen.sine(48000, 3.0), 48000)
    monkeypatch.setattr(workers.DecodePool, "worker_main", staticmethod(_crash_on_probe))
    flag = tmp_path / "model-started"
    monkeypatch.setenv(CRASH_AFTER, str(flag))
    fe_config, _ = clap.load_frontend(str(tiny_clap))
    pools = []

    def pool_factory():
        pools.append(workers.DecodePool(dict(fe_config), 1))
        return pools[-1]

    model = _SlowModel(first_call_s=4.0, flag=flag)
    engine = LocalEngine(pool_factory, lambda: model, batch_size=4, capacity=4, measure=False)
    results = {}
    finished = threading.Event()

    def run():
        for key, path in enumerate((long_file, crasher, after)):
            engine.submit(key, str(path))
        deadline = time.monotonic() + 180
        while len(results) < 3 and time.monotonic() < deadline:
            for r in engine.poll(0.5, final=True):
                results[r.key] = r
        finished.set()

    reader = threading.Thread(target=run, daemon=True)
    reader.start()
    try:
        assert finished.wait(240), "the build's reads never returned: it hung on the dead worker's pipe"
        reader.join(5)
        (pool,) = pools
        # The long file's second part (4 windows) is more than a pipe holds: when the decoder
        # crashed, the worker's sender was halfway through it.
        assert 4 * np.zeros(tuple(_mel_shape(fe_config)), np.float32).nbytes > 1 << 16
        assert set(results) == {0, 1, 2}
        assert "crashed" in (results[1].error or ""), results[1].error
        for key, seconds in ((0, 120.0), (2, 3.0)):
            r = results[key]
            assert r.error is None, r.error
            # Whole, once: the part that came before the crash was dropped, not kept twice.
            assert [c[0] for c in r.chunks] == list(range(len(r.chunks)))
            assert r.chunks[-1][2] == pytest.approx(seconds, abs=0.01)
            assert r.vectors.shape == (len(r.chunks), 8)
        assert engine.windows == len(results[0].chunks) + len(results[2].chunks)
        # The long file's first part went through the model before the crash, and again after.
        assert model.rows == engine.windows + 8
        assert len(pool.slots) == 1 and all(s.proc.is_alive() for s in pool.slots.values())
    finally:
        engine.close()


def _mel_shape(fe_config) -> tuple[int, int]:
    from indexer.mel import LogMelFrontend

    frontend = LogMelFrontend.from_config(dict(fe_config))
    import torch

    return tuple(frontend(torch.zeros(1, 480_000)).shape[1:])


def test_a_worker_that_dies_before_it_is_ready_gives_its_files_to_the_next(tiny_clap, tmp_path):
    """A worker killed before its Ready message: its files were never touched, so they go to
    the next worker instead of failing (the Restart tells the engine; there is nothing to drop)."""
    path = audiogen.write_audio(tmp_path / "tone.wav", audiogen.sine(48000, 3.0), 48000)
    fe_config, _ = clap.load_frontend(str(tiny_clap))
    pool = workers.DecodePool(dict(fe_config), 1)
    try:
        (slot,) = pool.slots.values()
        pool.submit(workers.Task(7, str(path), 10.0, False))
        slot.proc.kill()  # at once: long before its imports are done
        slot.proc.join(10)
        got = []
        deadline = time.monotonic() + 120
        while not any(isinstance(m, (workers.Done, workers.Fail)) for m in got) and time.monotonic() < deadline:
            msg = pool.get(timeout=0.5)
            if msg is not None:
                got.append(msg)
        assert [type(m).__name__ for m in got] == ["Restart", "Start", "Part", "Done"]
        assert all(m.key == 7 for m in got)
    finally:
        pool.close()


def test_a_script_without_a_main_guard_gets_one_clear_line_not_a_hang(tiny_clap, tmp_path):
    """Spawned workers import the caller's main module again: without `if __name__ ==
    '__main__':` each dies at start-up, before it is ready, and the build says what to do."""
    import subprocess
    import sys
    from pathlib import Path

    library = tmp_path / "library"
    audiogen.write_audio(library / "tone.wav", audiogen.sine(48000, 2.0), 48000)
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from indexer import pipeline\n"
        "from indexer.config import Settings\n"
        f"settings = Settings(index_dir={str(tmp_path / 'index')!r}, model={str(tiny_clap)!r})\n"
        f"pipeline.build(settings, [{str(library)!r}], workers=1, progress=False)\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0
    assert "guard it with `if __name__ == '__main__':`" in proc.stderr, proc.stderr[-2000:]


def _unpicklable_meta(*args):
    """decode_worker.worker_main whose UNPICKLABLE_* files carry metadata pickle refuses."""
    import indexer.decode as decode

    real = decode.read_facts

    def read_facts(path):
        facts = real(path)
        if os.path.basename(path).startswith("UNPICKLABLE_"):
            facts.meta["x"] = lambda: None
        return facts

    decode.read_facts = read_facts
    decode_worker.worker_main(*args)


def test_a_message_that_cannot_be_sent_fails_its_file_and_the_worker_goes_on(tiny_clap, tmp_path, monkeypatch):
    monkeypatch.setattr(workers.DecodePool, "worker_main", staticmethod(_unpicklable_meta))
    bad = audiogen.write_audio(tmp_path / "UNPICKLABLE_tone.wav", audiogen.sine(48000, 2.0), 48000)
    good = audiogen.write_audio(tmp_path / "tone.wav", audiogen.sine(48000, 2.0), 48000)
    fe_config, _ = clap.load_frontend(str(tiny_clap))
    pool = workers.DecodePool(dict(fe_config), 1)
    try:
        pool.submit(workers.Task(1, str(bad), 10.0, False))
        pool.submit(workers.Task(2, str(good), 10.0, False))
        answers = {}
        deadline = time.monotonic() + 120
        while len(answers) < 2 and time.monotonic() < deadline:
            msg = pool.get(timeout=0.5)
            if isinstance(msg, (workers.Done, workers.Fail)):
                answers[msg.key] = msg
        assert isinstance(answers[1], workers.Fail) and "could not be passed on" in answers[1].reason
        assert isinstance(answers[2], workers.Done) and answers[2].n_windows == 1
        (slot,) = pool.slots.values()
        assert slot.proc.is_alive()
    finally:
        pool.close()


def test_a_worker_stopped_halfway_through_a_message_is_stalled_not_a_hang(tiny_clap, tmp_path):
    """The build's read of a part waits for the whole part: a worker stopped (SIGSTOP) halfway
    through sending one is killed by the read's watchdog after the time limit. It had decoded
    the whole file (it was its sending that stopped), so the file is decoded again, whole."""
    import signal

    path = audiogen.write_audio(tmp_path / "long.wav", audiogen.noise(48000, 120.0, seed=4), 48000)
    fe_config, _ = clap.load_frontend(str(tiny_clap))
    pool = workers.DecodePool(dict(fe_config), 1, file_timeout_s=3.0)
    answers = []
    finished = threading.Event()
    try:
        ((slot_wid, slot),) = pool.slots.items()
        pool.submit(workers.Task(5, str(path), 10.0, False))
        deadline = time.monotonic() + 60
        while slot.current.value != 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.0)  # its first part is decoded; nobody reads, so its sender waits halfway
        assert slot.results.poll()
        os.kill(slot.proc.pid, signal.SIGSTOP)

        def run():
            end = time.monotonic() + 60
            while time.monotonic() < end and not any(isinstance(m, (workers.Done, workers.Fail)) for m in answers):
                msg = pool.get(timeout=0.5)
                if msg is not None:
                    answers.append(msg)
            finished.set()

        threading.Thread(target=run, daemon=True).start()
        assert finished.wait(90), "the read of the stopped worker's part never returned"
        kinds = [type(m).__name__ for m in answers]
        assert kinds[:2] == ["Start", "Restart"] and kinds[-1] == "Done", kinds
        after = answers[kinds.index("Restart") + 1:]
        assert all(m.wid != slot_wid for m in after)  # a new worker did it
        assert sum(len(m.starts) for m in after if isinstance(m, workers.Part)) == answers[-1].n_windows == 12
        assert not slot.proc.is_alive()
    finally:
        if slot.proc.is_alive():
            os.kill(slot.proc.pid, signal.SIGCONT)
        pool.close()

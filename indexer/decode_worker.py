"""One decode worker: a process that turns files into log-mel windows for the model.

It decodes, downmixes, resamples and computes the mel frontend for one file at a time and
sends the result back in parts of a few windows (the raw windows instead, where the model
computes the frontend on its GPU: a pool started without a frontend config), so that memory
stays bounded for an hours-long file and the model (in the parent) is fed while the next file
decodes. Tasks come in on one pipe and messages go out on another, both its own
(indexer.workers.DecodePool starts the workers and watches them); a sending thread lets it
decode on while a part waits for the parent to read it, and a receiving thread takes tasks off
their pipe as they come.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from dataclasses import dataclass

import numpy as np

PART_WINDOWS = 8
RAW_PART_WINDOWS = 1         # a raw window (1.9 MB) weighs about PART_WINDOWS log-mel ones (2 MB)
POLL_S = 1.0                 # a worker's wait on its pipes before it checks it is not orphaned
MESSAGES_PER_WORKER = 4      # decoded messages queued ahead of the model, per worker


@dataclass
class Task:
    key: int
    path: str
    hop_s: float
    measure: bool = True  # measured sound and fingerprint from the same decode (indexer.analysis)


# Messages from a worker to the engine (small dataclasses: a part's mel array is what weighs).
@dataclass
class Start:
    """Worker `wid` took the task `key`."""

    wid: int
    key: int


@dataclass
class Part:
    """Consecutive windows of the file for the model: log-mel, or the raw windows where the
    model computes the frontend itself."""

    wid: int
    key: int
    starts: list[float]
    ends: list[float]
    n_real: list[int]
    data: np.ndarray  # float32 log-mel (k, frames, mels), or raw windows (k, samples): for a
    # file shorter than a window, its real samples alone (1, n_real), repeat-padded by the model


@dataclass
class Done:
    """The file is decoded; its parts (n_windows windows in all) were sent before this."""

    wid: int
    key: int
    info: dict       # audio.AudioInfo fields
    meta: dict       # metadata.read_metadata()
    n_windows: int
    analysis: object = None  # indexer.analysis.FileAnalysis, or None when not measured


@dataclass
class Fail:
    """The file failed; reason is one line (from the pool itself when its worker died on it)."""

    wid: int
    key: int
    reason: str


@dataclass
class Ready:
    """Worker `wid` started (its imports done); the pool keeps this one to itself."""

    wid: int


@dataclass
class Restart:
    """The file is decoded again from its start (its worker died with it unfinished, maybe
    through no fault of its own): forget what came of it so far."""

    wid: int
    key: int


Message = Ready | Start | Part | Done | Fail | Restart


_PARENT_PID: int | None = None


def _exit_if_orphaned() -> None:
    """A worker whose build was killed (kill -9, OOM killer) is re-parented: leave at once."""
    if _PARENT_PID is not None and os.getppid() != _PARENT_PID:
        os._exit(0)


def _put(outbox: queue.Queue, msg) -> None:
    """outbox.put that cannot block forever when the parent is gone."""
    while True:
        try:
            outbox.put(msg, timeout=POLL_S)
            return
        except queue.Full:
            _exit_if_orphaned()


def _send_loop(outbox: queue.Queue, results, wid: int) -> None:
    """The worker's sending thread: messages in order, until None. The decoding thread goes on
    while a part waits for the parent, which reads between model calls. A message that cannot
    be pickled fails its file; any other failure ends the process, which the pool sees as the
    end of the pipe (a worker whose sender died silently would hold its files forever)."""
    from multiprocessing.reduction import ForkingPickler

    while (msg := outbox.get()) is not None:
        try:
            data = ForkingPickler.dumps(msg)
        except Exception as exc:
            data = ForkingPickler.dumps(Fail(wid, msg.key, f"its decoded data could not be passed on ({exc})"))
        try:
            results.send_bytes(data)
        except BaseException:  # the parent is gone, or out of memory
            os._exit(70)


def _receive_loop(tasks, inbox: queue.Queue) -> None:
    """The worker's receiving thread: tasks off the pipe as soon as they come, so that the
    build never waits to send one (it may hold dozens, and a pipe holds 64 KB) while this
    worker waits for the build to read its messages."""
    while True:
        try:
            task = tasks.recv()
        except (EOFError, OSError):  # the parent is gone
            os._exit(0)
        inbox.put(task)
        if task is None:
            return


def worker_main(wid: int, fe_config: dict | None, tasks, results, current, niceness: int = 0,
                 ahead: int = MESSAGES_PER_WORKER) -> None:
    """The worker process: `tasks` and `results` are its ends of its two pipes; `current`
    (shared memory) holds the key of the file it decodes, -1 between files, so that the pool
    knows which file a crash came from even when the messages before it are lost. Without
    `fe_config` it sends raw windows (the model's device computes the frontend)."""
    global _PARENT_PID
    _PARENT_PID = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C for everyone
    if niceness and hasattr(os, "getpriority"):  # every thread, the BLAS pool numpy started included
        renice(os.getpid(), min(19, os.getpriority(os.PRIO_PROCESS, 0) + niceness))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from .analysis import StreamAnalysis, analysis_result
    from .decode import failure_reason, read_facts, window_parts
    from .measure import k_weighting_sos

    torch = frontend = None
    if fe_config is not None:  # a worker that sends raw windows never imports torch (its memory: docs/benchmarks.md)
        import torch

        from .mel import LogMelFrontend

        torch.set_num_threads(1)
        frontend = LogMelFrontend.from_config(fe_config)
        frontend.parallel = 1  # this process is already one of several beside the model
    part_windows = PART_WINDOWS if frontend is not None else RAW_PART_WINDOWS
    # The meter's first use imports scipy.signal and pyloudnorm (a second or more of CPU): pay
    # it now, before a file's stall clock starts, not inside the first file's time limit.
    k_weighting_sos(48000)
    results.send(Ready(wid))  # before any task: a death before it is a start-up failure
    outbox: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    sender = threading.Thread(target=_send_loop, args=(outbox, results, wid), daemon=True)
    sender.start()
    inbox: queue.Queue = queue.Queue()
    threading.Thread(target=_receive_loop, args=(tasks, inbox), daemon=True).start()
    while True:
        try:
            task = inbox.get(timeout=POLL_S)
        except queue.Empty:
            _exit_if_orphaned()
            continue
        if task is None:
            break
        current.value = task.key
        _put(outbox, Start(wid, task.key))
        try:
            facts = read_facts(task.path)
            analysis = StreamAnalysis() if task.measure else None
            n = 0
            for part in window_parts(task.path, task.hop_s, part_windows, analysis, facts):
                _send_part(outbox, wid, task.key, part, frontend, torch)
                n += len(part)
            answer = Done(wid, task.key, facts.info, facts.meta, n, analysis_result(analysis))
        except Exception as exc:  # a decoder bug must not take the run down
            answer = Fail(wid, task.key, failure_reason(exc))
        # Decoded: a death from here on (the answer waiting for room) is not this file's doing.
        current.value = -1
        _put(outbox, answer)
    _put(outbox, None)
    sender.join()


def _send_part(outbox, wid, key, windows, frontend, torch) -> None:
    if frontend is None and len(windows) == 1 and 0 < windows[0].n_real < windows[0].samples.shape[0]:
        # A file shorter than a window, sent raw: its real samples alone (a 1 s sound is a
        # tenth of its padded window); the model's device repeat-pads them (ClapEncoder.upload).
        data = windows[0].samples[None, : windows[0].n_real]
    else:
        data = np.stack([w.samples for w in windows])
    if frontend is not None:
        with torch.inference_mode():
            data = frontend(torch.from_numpy(data)).numpy()
    _put(outbox, Part(wid, key, [w.start_s for w in windows], [w.end_s for w in windows],
                      [w.n_real for w in windows], data))


def renice(pid: int, niceness: int) -> None:
    """Set every thread of process `pid` to `niceness` (on Linux a pid's priority is its main
    thread's alone); a process gone, or a rise not allowed, leaves it as it was. Where the OS
    has no niceness (Windows) the workers keep their priority."""
    if not hasattr(os, "setpriority"):
        return
    try:
        threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        threads = [pid]
    for tid in threads:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, niceness)
        except OSError:
            pass

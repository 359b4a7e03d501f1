"""Decode workers: processes that turn files into log-mel windows for the model.

Each worker decodes, downmixes, resamples and computes the mel frontend for one file at a
time and sends the result back in parts of a few windows, so that memory stays bounded for
an hours-long file and the model (in the parent) is fed while the next file decodes.

The parent watches every worker: a file that makes its worker crash or stall past the
time limit is reported as failed, the worker is replaced, and the run goes on (invariant 4).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import time
from dataclasses import dataclass, field

import numpy as np

from .config import UserError

log = logging.getLogger(__name__)

PART_WINDOWS = 8
WORKER_NICENESS = 10         # beside a model whose ops span threads (DecodePool.set_niceness)
POLL_S = 1.0                 # a worker's wait on its queues before it checks it is not orphaned
DEFAULT_FILE_TIMEOUT_S = 300.0  # a file decoding longer than this is failed as stalled
MESSAGES_PER_WORKER = 4      # decoded messages queued ahead of the model, per worker
EARLY_DEATHS_FATAL = 3       # workers dying before any work: the pool cannot start at all
KILL_JOIN_S = 5.0            # wait for a killed worker to be reaped
LOST_AFTER_IDLE_S = 2.0      # all idle with tasks never announced this long: they were lost
CLOSE_GRACE_S = 2.0          # workers get this long to leave on close before being killed


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
    """Up to PART_WINDOWS consecutive windows of the file, as log-mel for the model."""

    wid: int
    key: int
    starts: list[float]
    ends: list[float]
    n_real: list[int]
    mel: np.ndarray  # float32 (k, frames, mels)


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
    """The file failed (wid -1: the pool gave up on it); reason is one line."""

    wid: int
    key: int
    reason: str


Message = Start | Part | Done | Fail


_PARENT_PID: int | None = None


def _exit_if_orphaned() -> None:
    """A worker whose build was killed (kill -9, OOM killer) is re-parented: leave at once,
    without the queue's exit handlers, which would wait on a pipe nobody reads."""
    if _PARENT_PID is not None and os.getppid() != _PARENT_PID:
        os._exit(0)


def _put(results, msg) -> None:
    """results.put that cannot block forever on a full queue whose reader died."""
    while True:
        try:
            results.put(msg, timeout=POLL_S)
            return
        except queue.Full:
            _exit_if_orphaned()


def _worker_main(wid: int, fe_config: dict, tasks, results, niceness: int = 0) -> None:
    global _PARENT_PID
    _PARENT_PID = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C for everyone
    if niceness and hasattr(os, "getpriority"):  # every thread, the BLAS pool numpy started included
        renice(os.getpid(), min(19, os.getpriority(os.PRIO_PROCESS, 0) + niceness))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from .analysis import StreamAnalysis, analysis_result
    from .decode import failure_reason, read_facts, window_parts
    from .mel import LogMelFrontend

    from .measure import k_weighting_sos

    frontend = LogMelFrontend.from_config(fe_config)
    frontend.parallel = 1  # this process is already one of several beside the model
    # The meter's first use imports scipy.signal and pyloudnorm (a second or more of CPU): pay
    # it now, before a file's stall clock starts, not inside the first file's time limit.
    k_weighting_sos(48000)
    while True:
        try:
            task = tasks.get(timeout=POLL_S)
        except queue.Empty:
            _exit_if_orphaned()
            continue
        if task is None:
            return
        _put(results, Start(wid, task.key))
        try:
            facts = read_facts(task.path)
            analysis = StreamAnalysis() if task.measure else None
            n = 0
            for part in window_parts(task.path, task.hop_s, PART_WINDOWS, analysis, facts):
                _send_part(results, wid, task.key, part, frontend, torch)
                n += len(part)
            _put(results, Done(wid, task.key, facts.info, facts.meta, n, analysis_result(analysis)))
        except Exception as exc:  # a decoder bug must not take the run down
            _put(results, Fail(wid, task.key, failure_reason(exc)))


def _send_part(results, wid, key, windows, frontend, torch) -> None:
    batch = torch.from_numpy(np.stack([w.samples for w in windows]))
    with torch.inference_mode():
        mel = frontend(batch).numpy()
    _put(results, Part(wid, key, [w.start_s for w in windows], [w.end_s for w in windows],
                       [w.n_real for w in windows], mel))


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


class WorkerStartupError(UserError):
    pass


@dataclass
class _Slot:
    proc: mp.Process
    key: int | None = None
    since: float = field(default_factory=time.monotonic)
    worked: bool = False
    ignore: int | None = None


class DecodePool:
    """A fixed set of decode processes with per-file time limits and crash recovery."""

    def __init__(self, fe_config: dict, workers: int, *, file_timeout_s: float = DEFAULT_FILE_TIMEOUT_S,
                 max_messages: int = 0, niceness: int = 0):
        self._ctx = mp.get_context("spawn")  # fork after torch threads start can deadlock
        self._fe_config = fe_config
        self.niceness = niceness  # above this process's own (set_niceness)
        self.tasks = self._ctx.Queue()
        # The workers run ahead of the model by at most this many messages (parts of at most
        # PART_WINDOWS windows): enough for a batch of one-window files (3 messages each)
        # keeps them decoding while the model runs, and bounds memory whatever the file length.
        self.results = self._ctx.Queue(maxsize=max(MESSAGES_PER_WORKER, workers * MESSAGES_PER_WORKER, max_messages))
        self.timeout = file_timeout_s
        self.slots: dict[int, _Slot] = {}
        self._next_wid = 0
        self.outstanding: dict[int, Task] = {}
        self._started: set[int] = set()      # keys some worker announced
        self._attempts: dict[int, int] = {}  # key -> times submitted
        self._early_deaths = 0               # workers that died before doing any work
        self._idle_since: float | None = None
        for _ in range(max(1, workers)):
            self._spawn()

    def _spawn(self) -> None:
        wid = self._next_wid
        self._next_wid += 1
        proc = self._ctx.Process(
            target=_worker_main, args=(wid, self._fe_config, self.tasks, self.results, self.niceness), daemon=True
        )
        proc.start()
        self.slots[wid] = _Slot(proc)

    def set_niceness(self, niceness: int) -> None:
        """Run the workers, these and any that replace them, `niceness` above this process.

        Beside a model whose ops span several threads (torch on the CPU: an OpenMP op waits
        for its slowest thread), the workers should only fill the time the model leaves
        (WORKER_NICENESS): preempting one of its threads stalls all of them, and the queue of
        decoded windows covers the moments the workers wait. Beside OpenVINO's one-thread
        streams they share the cores as equals: at a lower priority they would decode mostly
        while the model waits for them (docs/benchmarks.md). Only a rise takes effect on
        running workers (a process may not lower its own children's niceness unprivileged).
        """
        if niceness == self.niceness:
            return
        self.niceness = niceness
        if not hasattr(os, "getpriority"):
            return
        target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + niceness)
        for slot in self.slots.values():
            renice(slot.proc.pid, target)

    def submit(self, task: Task) -> None:
        self.outstanding[task.key] = task
        self._attempts[task.key] = self._attempts.get(task.key, 0) + 1
        self.tasks.put(task)

    def get(self, timeout: float) -> Message | None:
        """The next message, or None; also yields Fail for crashed or stuck workers."""
        try:
            msg = self.results.get(timeout=timeout)
        except queue.Empty:
            return self._check_health()
        slot = self.slots.get(msg.wid)
        if slot is None:  # a message from a worker we already replaced
            return None
        if isinstance(msg, (Done, Fail)) and msg.key not in self.outstanding:
            return None  # a requeued task answered twice
        slot.worked = True
        if isinstance(msg, Start):
            if msg.key in self._started or msg.key not in self.outstanding:
                # A requeued task that another worker already has: ignore this copy's output.
                slot.key, slot.since, slot.ignore = None, time.monotonic(), msg.key
                return None
            slot.key, slot.since = msg.key, time.monotonic()
            self._started.add(msg.key)
            return msg
        if slot.ignore == msg.key:
            return None
        elif isinstance(msg, Part):
            slot.since = time.monotonic()
        elif isinstance(msg, (Done, Fail)):
            if slot.key != msg.key:
                return None
            slot.key = None
            self.outstanding.pop(msg.key, None)
        return msg

    def _check_health(self) -> Fail | None:
        now = time.monotonic()
        for wid, slot in list(self.slots.items()):
            dead = not slot.proc.is_alive()
            stuck = slot.key is not None and now - slot.since > self.timeout
            if not (dead or stuck):
                continue
            key = slot.key
            if dead and key is None and not slot.worked:
                self._early_deaths += 1
                if self._early_deaths >= EARLY_DEATHS_FATAL:
                    raise WorkerStartupError(
                        f"decode worker processes die at start-up (exit code {slot.proc.exitcode}); "
                        "if you call sfx-index from a script, guard it with `if __name__ == '__main__':`"
                    )
            slot.proc.kill()
            slot.proc.join(KILL_JOIN_S)
            del self.slots[wid]
            self._spawn()
            if key is not None:
                self.outstanding.pop(key, None)
                why = (
                    f"decoding stalled for more than {self.timeout:.0f} s"
                    if stuck and not dead
                    else f"the decoder crashed (exit code {slot.proc.exitcode})"
                )
                return Fail(wid, key, why)
        return self._requeue_lost(now)

    def _requeue_lost(self, now: float) -> Fail | None:
        """Tasks taken by a worker that died before announcing them: send again, or fail."""
        idle = all(slot.key is None for slot in self.slots.values())
        lost = [k for k in self.outstanding if k not in self._started]
        if not (idle and lost and self.tasks.empty()):
            self._idle_since = None
            return None
        if self._idle_since is None:
            self._idle_since = now
            return None
        if now - self._idle_since < LOST_AFTER_IDLE_S:
            return None
        self._idle_since = None
        for key in lost:
            if self._attempts.get(key, 0) >= 2:
                self.outstanding.pop(key, None)
                return Fail(-1, key, "the decoder was lost twice on this file")
            self.submit(self.outstanding[key])
        return None

    def close(self) -> None:
        for _ in self.slots:
            try:
                self.tasks.put_nowait(None)
            except Exception:
                pass
        deadline = time.monotonic() + CLOSE_GRACE_S
        for slot in self.slots.values():
            slot.proc.join(max(0.0, deadline - time.monotonic()))
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join(1)
        for q in (self.tasks, self.results):
            q.cancel_join_thread()
            q.close()

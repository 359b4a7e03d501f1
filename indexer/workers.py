"""The pool of decode workers (indexer.decode_worker) that feeds the model in this process.

The parent watches every worker: a file that makes its worker crash or stall past the
time limit is reported as failed, the worker is replaced, and the run goes on (invariant 4).

Each worker has its own two pipes, tasks in and messages out, never shared with another
worker: a worker that dies in the middle of a message (a decoder crashing while the worker's
sending thread is blocked halfway through a part, the parent busy in a model call) takes only
its own pipe with it. On a shared `multiprocessing.Queue` it left the queue's lock held and
half a message in the pipe, and every later read waited forever. The parent holds no copy of
a worker's writing end, so such a death reads as the end of that pipe.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait

from .config import UserError
from .decode_worker import (MESSAGES_PER_WORKER, Done, Fail, Message, Part, Ready, Restart, Start, Task, renice,
                            worker_main)

# The engine speaks to the pool in the worker's messages: they are this module's too.
__all__ = ["DEFAULT_FILE_TIMEOUT_S", "WORKER_NICENESS", "DecodePool", "Done", "Fail", "Message", "Part", "Restart",
           "Start", "Task", "WorkerStartupError"]

log = logging.getLogger(__name__)

WORKER_NICENESS = 10         # beside a model whose ops span threads (DecodePool.set_niceness)
DEFAULT_FILE_TIMEOUT_S = 300.0  # a file decoding longer than this is failed as stalled
MAX_RESTARTS = 2             # a file decoded again after its worker died, at most this often
HEALTH_EVERY_S = 1.0         # stuck workers are looked for at least this often
EARLY_DEATHS_FATAL = 3       # workers dying before any work: the pool cannot start at all
KILL_JOIN_S = 5.0            # wait for a killed worker to be reaped
CLOSE_GRACE_S = 2.0          # workers get this long to leave on close before being killed


class WorkerStartupError(UserError):
    pass


@dataclass
class _Slot:
    proc: mp.Process
    tasks: object            # this end of the worker's task pipe (Connection)
    results: object          # this end of the worker's message pipe (Connection)
    current: object          # shared with the worker: the key it is decoding now, else -1
    assigned: list[int] = field(default_factory=list)  # keys sent to it and not answered, in order
    key: int | None = None   # the task it announced last
    since: float = field(default_factory=time.monotonic)
    worked: bool = False
    stalled: bool = False    # killed by the watchdog halfway through a message


class DecodePool:
    """A fixed set of decode processes with per-file time limits and crash recovery.

    Each task goes to the worker that holds the fewest. A worker writes the key of the file
    it decodes into memory it shares with this process, so when it dies the file that killed
    it is known exactly, even when its last messages died with it: that file fails with the
    crash; the files it held before it (decoded, their messages maybe lost) and after it are
    decoded again (Restart: the engine forgets what came of them) by the other workers.
    """

    worker_main = staticmethod(worker_main)  # what a worker process runs (tests wrap it)

    def __init__(self, fe_config: dict | None, workers: int, *, file_timeout_s: float = DEFAULT_FILE_TIMEOUT_S,
                 max_messages: int = 0, niceness: int = 0):
        self._ctx = mp.get_context("spawn")  # fork after torch threads start can deadlock
        self._fe_config = fe_config
        self.niceness = niceness  # above this process's own (set_niceness)
        # The workers run ahead of the model by at most this many messages in all (parts of at
        # most decode_worker.PART_WINDOWS windows): enough for a batch of one-window files (3
        # messages each) keeps them decoding while the model runs, and bounds memory whatever
        # the file length.
        total = max(MESSAGES_PER_WORKER, workers * MESSAGES_PER_WORKER, max_messages)
        self._ahead = -(-total // max(1, workers))
        # Files sent ahead to one worker: as many as its messages, so that it never waits for a
        # task while the model runs; the rest wait here for whichever worker frees up first.
        self._depth = max(4, self._ahead)
        self.timeout = file_timeout_s
        self.slots: dict[int, _Slot] = {}
        self._next_wid = 0
        self.outstanding: dict[int, Task] = {}
        self._waiting: deque[Task] = deque()
        self._replies: deque[Message] = deque()  # messages the pool itself has for the engine
        self._early_deaths = 0               # workers that died before doing any work
        self._last_read = -1                 # the worker whose message get() read last
        self._checked = time.monotonic()     # the last health check
        self._restarts: dict[int, int] = {}  # key -> times decoded again after a death
        self._reading: tuple[_Slot, float] | None = None  # the read in progress, for the watchdog
        self._closed = threading.Event()
        threading.Thread(target=self._watch_reads, daemon=True).start()
        for _ in range(max(1, workers)):
            self._spawn()

    def _spawn(self) -> None:
        wid = self._next_wid
        self._next_wid += 1
        task_out, task_in = self._ctx.Pipe(duplex=False)
        msg_out, msg_in = self._ctx.Pipe(duplex=False)
        current = self._ctx.RawValue("q", -1)
        proc = self._ctx.Process(
            target=self.worker_main,
            args=(wid, self._fe_config, task_out, msg_in, current, self.niceness, self._ahead), daemon=True,
        )
        proc.start()
        # The worker's ends are its own: a worker that dies closes its pipe for good.
        task_out.close()
        msg_in.close()
        self.slots[wid] = _Slot(proc, task_in, msg_out, current)
        self._dispatch()

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
        self._waiting.append(task)
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand the waiting tasks out, each to the worker that holds the fewest."""
        open_slots = list(self.slots.values())
        while self._waiting and open_slots:
            slot = min(open_slots, key=lambda sl: len(sl.assigned))
            if len(slot.assigned) >= self._depth:
                return
            try:
                slot.tasks.send(self._waiting[0])
            except OSError:  # the worker is dying: get() will see its pipe end
                open_slots.remove(slot)
                continue
            slot.assigned.append(self._waiting.popleft().key)

    def get(self, timeout: float) -> Message | None:
        """The next message, or None; also yields Fail and Restart for crashed or stuck workers."""
        deadline = time.monotonic() + timeout
        while True:
            if self._replies:
                return self._replies.popleft()
            # Every second at least, busy or not: one worker's flow must not hide another's stall.
            if time.monotonic() - self._checked >= HEALTH_EVERY_S:
                self._check_health()
                if self._replies:
                    continue
            by_conn = {slot.results: wid for wid, slot in self.slots.items()}
            ready = wait(list(by_conn), max(0.0, min(deadline - time.monotonic(), HEALTH_EVERY_S)))
            if not ready:
                if time.monotonic() >= deadline:
                    self._check_health()
                    return self._replies.popleft() if self._replies else None
                continue
            # In turn: a worker whose messages wait must not wait behind a faster one for long.
            wids = sorted(by_conn[c] for c in ready)
            wid = next((w for w in wids if w > self._last_read), wids[0])
            self._last_read = wid
            msg = self._read(wid)
            if msg is not None:
                return msg

    def _read(self, wid: int) -> Message | None:
        """One message of worker `wid`; None for the pool's own (Ready) or when it died."""
        slot = self.slots[wid]
        self._reading = (slot, time.monotonic())
        try:
            msg = slot.results.recv()
        except (EOFError, OSError):  # the worker is gone, maybe halfway through a message
            code = self._reap(slot)
            self._lost(wid, self._stall_reason if slot.stalled else f"the decoder crashed (exit code {code})")
            return None
        finally:
            self._reading = None
        slot.worked = True
        slot.since = time.monotonic()
        if isinstance(msg, Ready):
            return None
        if isinstance(msg, Start):
            slot.key = msg.key
        elif isinstance(msg, (Done, Fail)):
            slot.key = None
            if msg.key in slot.assigned:
                slot.assigned.remove(msg.key)
            self.outstanding.pop(msg.key, None)
            self._restarts.pop(msg.key, None)
            self._dispatch()
        return msg

    def _watch_reads(self) -> None:
        """A read waits for the whole message: a worker stopped halfway through one (SIGSTOP,
        or native code that never lets its sending thread run again) would hold this process,
        and the health check with it. A read longer than the time limit kills the worker; the
        read then ends with its pipe, and the worker's file fails as stalled."""
        while not self._closed.wait(HEALTH_EVERY_S):
            reading = self._reading
            if reading is not None and time.monotonic() - reading[1] > self.timeout:
                reading[0].stalled = True
                reading[0].proc.kill()

    def _reap(self, slot: _Slot) -> int | None:
        slot.proc.join(KILL_JOIN_S)
        if slot.proc.is_alive():
            slot.proc.kill()
            slot.proc.join(1)
        return slot.proc.exitcode

    def _lost(self, wid: int, why: str) -> None:
        """Replace worker `wid`, which died or was killed, and settle what it held (`why` is
        the reason its file fails with)."""
        slot = self.slots.pop(wid)
        for conn in (slot.tasks, slot.results):
            conn.close()
        crasher = slot.current.value if slot.worked else -1
        if not slot.worked:  # it died before it was ready: nothing it held was touched
            self._early_deaths += 1
            if self._early_deaths >= EARLY_DEATHS_FATAL:
                raise WorkerStartupError(
                    f"decode worker processes die at start-up (exit code {slot.proc.exitcode}); "
                    "if you call sfx-index from a script, guard it with `if __name__ == '__main__':`"
                )
        self._settle(wid, slot, crasher, why, counted=slot.worked)
        self._spawn()

    def _settle(self, wid: int, slot: _Slot, culprit: int, why: str, *, counted: bool = True) -> None:
        """Fail `culprit` with `why` if the worker held it; send the rest of what it held again.
        A death that names none of them counts against each (`counted`), and a file that such
        deaths took MAX_RESTARTS + 1 times fails: they cannot repeat forever."""
        anonymous = counted and culprit not in slot.assigned
        again = []
        for key in slot.assigned:
            self._restarts[key] = self._restarts.get(key, 0) + anonymous
            if key == culprit or self._restarts[key] > MAX_RESTARTS:
                self.outstanding.pop(key, None)
                self._restarts.pop(key, None)
                reason = why if key == culprit else f"its decoder died {MAX_RESTARTS + 1} times with it unfinished"
                self._replies.append(Fail(wid, key, reason))
            else:
                again.append(key)
        for key in reversed(again):
            self._waiting.appendleft(self.outstanding[key])
        self._replies.extend(Restart(wid, key) for key in again)
        slot.assigned = []

    def _check_health(self) -> None:
        """Replace workers stuck on a file (or in their start-up) past the time limit; what
        that settles waits in _replies."""
        now = self._checked = time.monotonic()
        for wid, slot in list(self.slots.items()):
            if (slot.key is None and slot.worked) or now - slot.since <= self.timeout:
                continue
            if slot.results.poll():  # its messages wait for this process: it is this one behind
                continue
            slot.proc.kill()
            self._reap(slot)
            self._lost(wid, self._stall_reason)

    @property
    def _stall_reason(self) -> str:
        return f"decoding stalled for more than {self.timeout:.0f} s"

    def close(self) -> None:
        self._closed.set()
        for slot in self.slots.values():
            try:
                slot.tasks.send(None)
            except OSError:
                pass
            # Nobody reads from here on: a worker's sender waiting on its pipe leaves at once.
            slot.results.close()
        deadline = time.monotonic() + CLOSE_GRACE_S
        for slot in self.slots.values():
            slot.proc.join(max(0.0, deadline - time.monotonic()))
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join(1)
            slot.tasks.close()
        self.slots = {}

"""Decode + embed on a Ray cluster (`sfx-index build --ray [ADDRESS]`, the optional `ray` extra).

The Builder stays the one writer of the catalog on this machine; only the engine moves out:
the files to embed become a Ray Data dataset of (key, path) rows, `map_batches` runs them
through actors that decode with indexer.audio, compute the mel frontend and run the CLAP
audio tower (loaded once per actor, on a GPU where the cluster has them), and each output
row is one whole file (its window starts and ends, vectors, audio facts and metadata, or the
reason it failed), streamed back to the Builder, which commits whole files as in a local
build. The numbers come from the same code as a local build, so the catalogs are equal.

Every node must see the library and the model at the same paths as this machine. ray is
imported only here, and only when `--ray` is given.

Runs: the Builder keeps up to `capacity` files in flight; they are sent as one dataset when
half of that is waiting, when the scan has no more, or when the oldest has waited 30 s, and
the next dataset starts when the previous one is done. A file whose actor died (a crash in
a decoder library) is tried once more alone, then recorded as failed (invariant 4).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .config import UserError
from .engine import FileResult

log = logging.getLogger(__name__)

FILES_PER_CALL = 8      # files per actor call (one Ray Data block)
FILES_PER_RUN = 2048    # files in flight on the cluster
START_AFTER_S = 30.0    # a partial run starts when its oldest file has waited this long
BIG_NODE_CPUS = 9       # from this many CPUs an actor gets THREADS_ON_BIG_NODES torch threads
THREADS_ON_BIG_NODES = 4
# Environment the actors need to load the same model the same way as this machine (SFX_RUNTIME
# is where `--runtime` puts its choice: without it an actor decided `auto` on its own).
FORWARD_ENV = ("HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "SFX_MODEL", "SFX_RUNTIME")


class RayUnavailable(UserError):
    pass


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable(
            "--ray needs Ray Data: pip install 'sfx-index[ray]' (or pip install 'ray[data]>=2.9')"
        ) from None
    return ray


class RayCluster:
    """The connection to a Ray cluster for one build: `local` (start or reuse one on this
    machine), `auto` (the cluster `ray start` made here), `ray://HOST:10001` or HOST:PORT."""

    def __init__(self, ray, owned: bool, remote: bool):
        self.ray = ray
        self._owned = owned    # we called ray.init, so we disconnect (and stop a local cluster)
        self.remote = remote

    @classmethod
    def connect(cls, address: str | None = "local") -> "RayCluster":
        ray = _import_ray()
        _raylet_messages_to_stderr()
        if ray.is_initialized():  # a caller (a notebook, a test) already connected this process
            return cls(ray, owned=False, remote=False)
        address = (address or "local").strip()
        local = address == "local"
        env = {k: os.environ[k] for k in FORWARD_ENV if k in os.environ}
        runtime_env: dict = {"env_vars": env}
        if not local:
            # Ship this indexer package, so every actor runs the very code of this build.
            runtime_env["py_modules"] = [str(Path(__file__).resolve().parent)]
        kw = dict(log_to_driver=False, logging_level=logging.WARNING, runtime_env=runtime_env)
        if local:
            kw["include_dashboard"] = False
        try:
            ray.init(address=None if local else address, **kw)
        except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
            raise UserError(
                f"cannot reach the Ray cluster at {address!r} ({str(exc).splitlines()[0][:200]}); "
                "start it with 'ray start --head' and give its address (e.g. --ray ray://HEAD:10001)"
            ) from None
        return cls(ray, owned=True, remote=not local)

    def resources(self) -> tuple[float, float]:
        res = self.ray.cluster_resources()
        return float(res.get("CPU", 0)), float(res.get("GPU", 0))

    def engine(self, *, model: str, device: str, precision: str, batch_size: int, hop_s: float,
               actors: int | None = None, progress: bool = False,
               on_embedder: Callable[[dict], None] | None = None) -> "RayEngine":
        return RayEngine(self, model=model, device=device, precision=precision, batch_size=batch_size,
                         hop_s=hop_s, actors=actors, progress=progress, on_embedder=on_embedder)

    def close(self) -> None:
        if self._owned:
            self.ray.shutdown()
            self._owned = False


def _raylet_messages_to_stderr() -> None:
    """Ray prints the cluster's error messages (a worker died...) on the driver's stdout even
    with log_to_driver=False; stdout is our data (--json), so send them to stderr."""
    try:
        from ray._private import worker
    except ImportError:  # pragma: no cover - another Ray layout: leave it
        return
    orig = getattr(worker, "print_to_stdstream", None)
    if orig is None or getattr(orig, "_sfx_stderr", False):
        return

    def to_stderr(data, *args, **kwargs):
        return orig(dict(data, is_err=True), *args, **kwargs)

    to_stderr._sfx_stderr = True
    worker.print_to_stdstream = to_stderr


class _EmbedFiles:
    """The Ray Data actor: a batch of (key, path) rows in, one row per whole file out."""

    def __init__(self, model: str, device: str, precision: str, batch_size: int, hop_s: float, threads: int):
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        from indexer.clap import ClapEncoder
        from indexer.runtime.builds import runtime_version

        self.encoder = ClapEncoder.load(model, device=device, precision=precision, parts=("audio",))
        # What really embeds here (runtime, precision, version), for the catalog's record.
        facts = self.encoder.embedding_facts()
        self.embedder = json.dumps({**facts, "version": runtime_version(facts["runtime"])}, sort_keys=True)
        self.batch_size = max(1, batch_size)
        self.hop_s = hop_s

    def __call__(self, batch):
        import pyarrow as pa

        from indexer.decode import failure_reason, file_windows, read_facts

        keys = [int(k) for k in batch["key"]]
        paths = [str(p) for p in batch["path"]]
        files = [{"starts": [], "ends": [], "vecs": [], "info": None, "meta": None, "error": ""} for _ in keys]
        buf: list[tuple[int, np.ndarray]] = []  # (file index, window samples), at most one model batch

        def flush():
            if not buf:
                return
            mel = self.encoder.frontend.mel(np.stack([s for _, s in buf]))
            vecs = self.encoder.embed_mel(mel)
            for (i, _), v in zip(buf, vecs):
                files[i]["vecs"].append(np.asarray(v, np.float32))
            buf.clear()

        for i, path in enumerate(paths):
            f = files[i]
            try:
                facts = read_facts(path)
                f["meta"] = facts.meta
                for w in file_windows(path, self.hop_s, facts=facts):
                    f["starts"].append(float(w.start_s))
                    f["ends"].append(float(w.end_s))
                    buf.append((i, w.samples))
                    if len(buf) >= self.batch_size:
                        flush()
                f["info"] = facts.info
            except Exception as exc:  # noqa: BLE001 - one file, never the run (as the local workers)
                f["error"] = failure_reason(exc)
                buf[:] = [b for b in buf if b[0] != i]
        flush()

        dim = self.encoder.dim
        vectors = [
            b"" if f["error"] else np.stack(f["vecs"]).astype("<f4").tobytes() for f in files
        ]
        return pa.table({
            "key": pa.array(keys, pa.int64()),
            "starts": pa.array([f["starts"] if not f["error"] else [] for f in files], pa.list_(pa.float64())),
            "ends": pa.array([f["ends"] if not f["error"] else [] for f in files], pa.list_(pa.float64())),
            "vectors": pa.array(vectors, pa.binary()),
            "dim": pa.array([dim] * len(keys), pa.int32()),
            "info": pa.array([json.dumps(f["info"]) if not f["error"] else "" for f in files], pa.string()),
            "meta": pa.array([json.dumps(f["meta"] or {}) if not f["error"] else "" for f in files], pa.string()),
            "error": pa.array([f["error"] for f in files], pa.string()),
            "embedder": pa.array([self.embedder] * len(keys), pa.string()),
        })


def engine_factory(address: str | None, *, model: str, device: str = "auto", precision: str = "auto",
                   batch_size: int = 16, hop_s: float = 10.0, actors: int | None = None,
                   progress: bool = False, on_embedder: Callable[[dict], None] | None = None):
    """For Builder(engine_factory=...): each call connects to the cluster at `address` and gives
    an engine that disconnects when closed. Checks now that Ray Data is installed; connects
    only when a file needs embedding (a no-op rerun never does). `on_embedder(facts)` hears
    each new {'runtime', 'precision', 'version'} the actors embed with, before the results
    embedded with it are handed on (the catalog records it before their vectors are committed)."""
    _import_ray()

    def make() -> RayEngine:
        return RayCluster.connect(address).engine(
            model=model, device=device, precision=precision, batch_size=batch_size, hop_s=hop_s,
            actors=actors, progress=progress, on_embedder=on_embedder,
        )

    return make


def _model_path(model: str) -> str:
    """A local checkpoint folder as an absolute path (the nodes resolve it the same way)."""
    p = Path(model).expanduser()
    return str(p.resolve()) if p.is_dir() else model


class RayEngine:
    """The engine interface of indexer.engine over Ray Data runs (see the module doc)."""

    def __init__(self, cluster: RayCluster, *, model: str, device: str, precision: str, batch_size: int,
                 hop_s: float, actors: int | None, progress: bool,
                 on_embedder: Callable[[dict], None] | None = None):
        self.cluster = cluster
        self._on_embedder = on_embedder
        self._embedders: set[str] = set()
        self.capacity = FILES_PER_RUN
        self.windows = 0
        self._model = _model_path(model)
        self._device, self._precision = device, precision
        self._batch_size, self._hop_s = batch_size, hop_s
        self._actors = actors
        self._progress = progress
        self._buffer: list[tuple[int, str]] = []
        self._buffer_since: float | None = None
        self._attempts: dict[int, int] = {}
        self._results: queue.Queue = queue.Queue()
        self._run: threading.Thread | None = None

    # -------------------------------------------------------------- engine interface

    def submit(self, key: int, path: str) -> None:
        if not self._buffer:
            self._buffer_since = time.monotonic()
        self._buffer.append((key, path))

    def poll(self, timeout: float, *, final: bool = False) -> list[FileResult]:
        idle = self._run is None or not self._run.is_alive()
        if idle and self._buffer and (
            final or len(self._buffer) >= self.capacity // 2
            or time.monotonic() - (self._buffer_since or 0) > START_AFTER_S
        ):
            self._start(self._buffer)
            self._buffer = []
        out: list[FileResult] = []
        try:
            item = self._results.get(timeout=timeout)
            while True:
                out.extend(self._handle(item))
                item = self._results.get_nowait()
        except queue.Empty:
            pass
        return out

    def close(self) -> None:
        # A run still going (Ctrl-C) ends with the connection: ray.shutdown() ends this
        # driver's actors and tasks on the cluster.
        self._buffer = []
        self.cluster.close()

    # -------------------------------------------------------------- runs

    def _remote_args(self, n_files: int) -> tuple[dict, int]:
        cpus, gpus = self.cluster.resources()
        use_gpu = gpus >= 1 and self._device != "cpu"
        if use_gpu:
            actors, per_actor = max(1, int(gpus)), {"num_gpus": 1, "num_cpus": 1}
            threads = 1
        else:
            # A few torch threads per actor on big nodes; one core left for Ray Data itself.
            threads = THREADS_ON_BIG_NODES if cpus >= BIG_NODE_CPUS else 1
            actors, per_actor = max(1, int(cpus - 1) // threads), {"num_cpus": threads}
        if self._actors:
            actors = self._actors
        actors = max(1, min(actors, -(-n_files // FILES_PER_CALL)))
        return dict(per_actor, threads=threads, device="cuda" if use_gpu else self._device), actors

    def _start(self, items: list[tuple[int, str]]) -> None:
        ray = self.cluster.ray
        from ray.data import ActorPoolStrategy, DataContext

        ctx = DataContext.get_current()
        ctx.enable_progress_bars = self._progress
        ctx.print_on_execution_start = False
        # A block whose actor died is skipped, not fatal: its files are retried alone below.
        ctx.max_errored_blocks = -1
        retry = all(self._attempts.get(k, 0) >= 1 for k, _ in items)
        per_call = 1 if retry else FILES_PER_CALL
        for k, _ in items:
            self._attempts[k] = self._attempts.get(k, 0) + 1
        args, actors = self._remote_args(len(items))
        threads, device = args.pop("threads"), args.pop("device")
        ds = ray.data.from_items(
            [{"key": k, "path": p} for k, p in items],
            override_num_blocks=max(1, -(-len(items) // per_call)),
        ).map_batches(
            _EmbedFiles,
            fn_constructor_kwargs=dict(model=self._model, device=device, precision=self._precision,
                                       batch_size=self._batch_size, hop_s=self._hop_s, threads=threads),
            batch_size=per_call,
            batch_format="pyarrow",
            # On a retry, one file per actor at a time: a crash takes down only its own file.
            compute=ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=1) if retry
            else ActorPoolStrategy(size=actors),
            max_restarts=-1,      # a crashed actor is replaced...
            max_task_retries=0,   # ...and its block is not sent again (see max_errored_blocks)
            **args,
        )
        log.info("ray: %d files on %d actors (%s)", len(items), actors, args)
        paths = dict(items)

        def run():
            seen: set[int] = set()
            try:
                for table in ds.iter_batches(batch_format="pyarrow", batch_size=None, prefetch_batches=1):
                    rows = table.to_pylist()
                    seen.update(r["key"] for r in rows)
                    self._results.put(("rows", rows))
            except Exception as exc:  # noqa: BLE001 - reported to the Builder's thread
                self._results.put(("error", exc))
                return
            self._results.put(("lost", [(k, paths[k]) for k in paths if k not in seen]))

        self._run = threading.Thread(target=run, daemon=True, name="sfx-ray")
        self._run.start()

    def _handle(self, item) -> list[FileResult]:
        kind, payload = item
        if kind == "error":
            first = str(payload).strip().splitlines()[0][:300] if str(payload).strip() else type(payload).__name__
            raise UserError(
                f"the Ray job failed ({first}); the files committed so far are kept: "
                "check the cluster (ray status) and run the same command to continue"
            )
        if kind == "lost":
            out = []
            for key, path in payload:
                if self._attempts.get(key, 0) >= 2:
                    out.append(FileResult(key, error="the Ray worker died on this file (twice)"))
                else:
                    self.submit(key, path)  # once more, alone, in the next run
            if self._buffer:
                self._buffer_since = 0.0    # start it at the next poll
            return out
        out = []
        for r in payload:
            embedder = r.get("embedder")
            if embedder and embedder not in self._embedders:
                self._embedders.add(embedder)
                if self._on_embedder is not None:
                    self._on_embedder(json.loads(embedder))
            if r["error"]:
                out.append(FileResult(r["key"], error=r["error"]))
                continue
            n = len(r["starts"])
            vecs = np.frombuffer(r["vectors"], dtype="<f4").reshape(n, r["dim"]).astype(np.float32)
            chunks = [(i, float(s), float(e)) for i, (s, e) in enumerate(zip(r["starts"], r["ends"]))]
            out.append(FileResult(r["key"], chunks, vecs, json.loads(r["info"]), json.loads(r["meta"])))
            self.windows += n
        return out

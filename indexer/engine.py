"""Decode + embed engines: the Builder hands them files and gets whole files back.

The Builder (builder.py) owns everything around the model: the scan, the reconciliation with
the catalog, hashing, copies of known bytes, and the one writer of the catalog. An engine only
turns a file into its chunks and vectors, or a failure with its reason (invariant 4):

    engine.submit(key, path)                   # a file to embed; key is the Builder's
    engine.poll(timeout, final=...) -> [FileResult, ...]   # whole files, embedded or failed
    engine.capacity                            # files the Builder keeps in flight
    engine.windows                             # windows embedded so far (for the report)
    engine.close()

A result is always a whole file, so the Builder's commit of whole files (invariant 5) is the
same whatever the engine. LocalEngine (decode processes + the model in this process) is the
default; indexer.ray_engine.RayEngine runs the same decode and model code in Ray actors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from .workers import WORKER_NICENESS, Done, Fail, Part, Restart, Task


@dataclass
class FileResult:
    key: int
    chunks: list = field(default_factory=list)   # (idx, start_s, end_s) in window order
    vectors: np.ndarray | None = None            # (len(chunks), d) float32 unit vectors
    info: dict | None = None                     # audio.AudioInfo fields
    meta: dict | None = None                     # metadata.read_metadata()
    error: str | None = None                     # one-line reason when the file failed
    analysis: object = None                      # indexer.analysis.FileAnalysis (measured sound)


class Engine(Protocol):
    capacity: int
    windows: int

    def submit(self, key: int, path: str) -> None: ...

    def poll(self, timeout: float, *, final: bool = False) -> list[FileResult]: ...

    def close(self) -> None: ...


@dataclass
class _InFlight:
    chunks: list = field(default_factory=list)
    vectors: list = field(default_factory=list)
    decoded: int | None = None  # window count once the worker is done
    embedded: int = 0
    info: dict | None = None
    meta: dict | None = None
    analysis: object = None


class LocalEngine:
    """Decode processes (workers.DecodePool) feeding the model in this process in batches.

    `pool_factory()` makes the DecodePool on the first submit and `encoder()` gives the loaded
    ClapEncoder on the first batch, so a run with nothing to embed starts neither. With `raw`
    the pool sends raw windows and the model computes the frontend where it runs (a GPU): each
    part is copied to the model's device as it arrives, and a batch is stacked there.
    """

    def __init__(self, pool_factory: Callable, encoder: Callable, *, batch_size: int, capacity: int,
                 hop_s: float = 10.0, measure: bool = True, raw: bool = False):
        self._pool_factory = pool_factory
        self._encoder = encoder
        self.batch_size = max(1, batch_size)
        self.capacity = capacity
        self.hop_s = hop_s
        self.measure = measure
        self.raw = raw
        self.windows = 0
        self._pool = None
        self._prioritised = False
        self._files: dict[int, _InFlight] = {}
        self._ready: list[tuple[int, object]] = []  # (key, mel or raw window) in arrival order

    def submit(self, key: int, path: str) -> None:
        if self._pool is None:
            self._pool = self._pool_factory()
        self._files[key] = _InFlight()
        self._pool.submit(Task(key, path, self.hop_s, self.measure))

    def poll(self, timeout: float, *, final: bool = False) -> list[FileResult]:
        out: list[FileResult] = []
        # 1. Collect decoded windows.
        msg = self._pool.get(timeout=timeout) if self._pool is not None and self._files else None
        if msg is not None:
            f = self._files.get(msg.key)
            if f is not None:
                if isinstance(msg, Part):
                    base = len(f.chunks)
                    data = self._model().upload(msg.data) if self.raw else msg.data
                    for j, (s, e) in enumerate(zip(msg.starts, msg.ends)):
                        f.chunks.append((base + j, float(s), float(e)))
                        self._ready.append((msg.key, data[j]))
                elif isinstance(msg, Done):
                    f.info, f.meta, f.decoded, f.analysis = msg.info, msg.meta, msg.n_windows, msg.analysis
                elif isinstance(msg, Fail):
                    self._drop(msg.key)
                    del self._files[msg.key]
                    out.append(FileResult(msg.key, error=msg.reason))
                elif isinstance(msg, Restart):  # decoded again from its start
                    self._drop(msg.key)
                    self._files[msg.key] = _InFlight()

        # 2. Run the model on a full batch, or on what there is when the decoders lag.
        if len(self._ready) >= self.batch_size or (self._ready and msg is None):
            batch, self._ready = self._ready[: self.batch_size], self._ready[self.batch_size :]
            if self.raw:
                import torch

                vecs = self._model().embed_audio(torch.stack([w for _, w in batch]))
            else:
                vecs = self._model().embed_mel(np.stack([m for _, m in batch]))
            for (key, _), v in zip(batch, vecs):
                f = self._files[key]
                f.vectors.append(v)
                f.embedded += 1
            self.windows += len(batch)

        # 3. Files fully embedded go back whole.
        for key in [k for k, f in self._files.items() if f.decoded is not None and f.embedded == f.decoded]:
            f = self._files.pop(key)
            out.append(FileResult(key, f.chunks, np.stack(f.vectors), f.info, f.meta, analysis=f.analysis))
        return out

    def _drop(self, key: int) -> None:
        """Forget what came of file `key`: its windows waiting for the model and its count."""
        self.windows -= self._files[key].embedded
        self._ready = [m for m in self._ready if m[0] != key]

    def _model(self):
        """The encoder; on first use, the decode workers' priority is set beside it."""
        encoder = self._encoder()
        if not self._prioritised:
            self._prioritised = True
            self._pool.set_niceness(WORKER_NICENESS if encoder.audio_ops_span_threads() else 0)
        return encoder

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

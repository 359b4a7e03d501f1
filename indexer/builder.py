"""Builder: one run of reconcile and embed over the library's roots (behind `pipeline.build`).

The recipe (rclip's, made crash-safe): stat every file; a file whose size and mtime match the
catalog is left alone (no read, no hash, no model call). A new or changed file is hashed; if
an indexed file has the same bytes (a move, a rename, a duplicate) its vectors are copied.
Everything else is decoded in worker processes and embedded in batches in this process.
Each commit writes whole files with their chunks, so a kill loses at most the batch in flight
(invariant 5). Files gone from disk are swept at the end of a complete scan of their root.
`indexer/pipeline.py` opens the index, takes the build lock and runs a Builder.
"""

from __future__ import annotations

import json
import logging
import operator
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .catalog import Catalog, FileInfo, FileState, ModelRecord, Root, gc_paused
from .config import UserError
from .engine import Engine, LocalEngine
from .hashing import hash_in_order
from .metadata import read_metadata
from .scan import ScannedFile, scan
from .workers import DEFAULT_FILE_TIMEOUT_S, DecodePool

log = logging.getLogger(__name__)

SCAN_BAR_STEP = 64  # files between updates of the scan bar
MAX_KEPT_PROBLEMS = 1000  # scan problems of a root kept for `sfx-index status`


def scan_problems_key(root_id: int) -> str:
    """The catalog meta key holding a root's last scan problems (JSON [{path, reason}])."""
    return f"scan_problems:{root_id}"


@dataclass
class BuildReport:
    new: int = 0
    changed: int = 0
    moved: int = 0
    duplicates: int = 0
    deleted: int = 0
    unchanged: int = 0
    retagged: int = 0  # bytes changed around the same audio (a metadata edit): vectors kept
    failed: int = 0
    windows: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    failures: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # broken links, unreadable folders

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Pending:
    """A file on its way through the engine (decode + model)."""

    root: Root
    item: ScannedFile
    content_hash: str
    is_new: bool
    audio_hash: str | None = None
    chunks: list = field(default_factory=list)   # (idx, start_s, end_s)
    vectors: list = field(default_factory=list)  # (k, d) arrays in window order
    info: dict | None = None
    meta: dict | None = None
    analysis: object = None  # indexer.analysis.FileAnalysis from the same decode


class Builder:
    """One build run over some roots of one catalog."""

    def __init__(
        self,
        catalog: Catalog,
        vectors,  # indexer.vectors.VectorIndex kept in step with each commit
        *,
        encoder_loader: Callable,
        fe_config: dict,
        model_record: ModelRecord,
        batch_size: int = 16,
        workers: int = 1,
        hop_s: float = 10.0,
        exclude: Iterable[Path] = (),
        progress: bool = True,
        file_timeout_s: float = DEFAULT_FILE_TIMEOUT_S,
        commit_every_s: float = 5.0,
        engine_factory: Callable[[], Engine] | None = None,
        measure: bool = True,
        frontend_on_model: bool = False,
    ):
        self.catalog = catalog
        self.vectors = vectors
        self._encoder_loader = encoder_loader
        self._encoder = None
        self.fe_config = fe_config
        self.model_record = model_record
        self.batch_size = max(1, batch_size)
        self.workers = max(1, workers)
        self.hop_s = hop_s
        self.exclude = [Path(p) for p in exclude]
        self.progress = progress
        self.file_timeout_s = file_timeout_s
        self.commit_every_s = commit_every_s
        self.measure = measure
        self.frontend_on_model = frontend_on_model  # a GPU model: the workers send raw windows
        self._engine_factory = engine_factory or self._local_engine
        self.report = BuildReport()
        # Written files whose vectors are not yet in FAISS: applied right after each commit.
        self._faiss_add: list[tuple[np.ndarray, np.ndarray]] = []
        self._faiss_remove: list[int] = []
        self._moved_from: set[int] = set()  # catalog ids whose file turned up at another path

    # ------------------------------------------------------------------ public

    def run(self, roots: list[str | Path]) -> BuildReport:
        t0 = time.monotonic()
        self.catalog.ensure_model(self.model_record)
        try:
            for root_path in roots:
                self._build_root(Path(root_path))
        except KeyboardInterrupt:
            self.report.interrupted = True
        finally:
            self.report.seconds = round(time.monotonic() - t0, 3)
        return self.report

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = self._encoder_loader()
        return self._encoder

    def _local_engine(self) -> Engine:
        # Files in flight: enough that two batches of windows are decoded ahead even when
        # every file is one window, so the model never waits on a decoder.
        fe_config = None if self.frontend_on_model else self.fe_config
        return LocalEngine(
            lambda: DecodePool(fe_config, self.workers, file_timeout_s=self.file_timeout_s,
                               max_messages=3 * self.batch_size + 4 * self.workers),
            lambda: self.encoder, batch_size=self.batch_size,
            capacity=self.workers * 3 + 2 * self.batch_size, hop_s=self.hop_s, measure=self.measure,
            raw=self.frontend_on_model,
        )

    # ------------------------------------------------------------------ one root

    def _build_root(self, root_path: Path) -> None:
        if not root_path.is_dir():
            raise UserError(f"'{root_path}' is not a folder; give the folder that holds your sounds")
        root = self.catalog.add_root(root_path)
        unreadable: list[str] = []

        problems: list[dict] = []

        def problem(p):
            log.info("skipping %s: %s", p.path, p.reason)
            self.report.skipped.append({"path": str(p.path), "reason": p.reason})
            problems.append({"path": str(p.path), "reason": p.reason})
            if p.reason.startswith("cannot read folder"):
                unreadable.append(p.rel.rstrip("/") + "/")

        # A million new objects would set off full collections over and over: none until done.
        # (The catalog read is not overlapped with the walk on a thread: each of the walk's
        # million stat calls gives up the GIL and would then wait for the reader's slice.)
        with gc_paused():
            found: list[ScannedFile] = []
            bar = self._bar(desc=f"scan {root_path.name or root_path}", unit=" files")
            for item in scan(root.path, exclude=self.exclude, on_problem=problem):
                found.append(item)
                if len(found) % SCAN_BAR_STEP == 0:  # tqdm costs more than the rest of a file's step
                    bar.update(SCAN_BAR_STEP)
            bar.update(len(found) % SCAN_BAR_STEP)
            bar.refresh()  # the count found, even when the walk took less than the bar's interval
            bar.close()
            known = self.catalog.file_stats(root.id)  # {(rel, size, mtime_ns)}
            key = operator.attrgetter("rel", "size", "mtime_ns")
            looks = [item for item in found if key(item) not in known]  # new or changed
            unchanged = len(found) - len(looks)
            self.report.unchanged += unchanged
            gone_rels: list[str] = []
            if unchanged < len(known):  # some catalogued files were not found as they were
                seen = {item.rel for item in found}
                gone_rels = [
                    rel for rel, _, _ in known
                    if rel not in seen and not any(rel.startswith(u) or u == "/" for u in unreadable)
                ]
            n_known, emptied = len(known), bool(known) and not found
            # What the walk could not follow (broken or looping symlinks, unreadable folders)
            # stays listed in `sfx-index status` until a later walk no longer meets it.
            self.catalog.set_meta(scan_problems_key(root.id), json.dumps(problems[:MAX_KEPT_PROBLEMS]))
            # Freed while collection is still off: turned on with them alive, it would first walk
            # them all (a full collection is due after so many new objects; docs/benchmarks.md).
            del found, known
        log.debug("%d files up to date by size and mtime, %d to look at", unchanged, len(looks))
        states = {}
        if looks or gone_rels:
            states = self.catalog.file_states_for(root.id, [item.rel for item in looks] + gone_rels)
        todo: list[tuple[ScannedFile, FileState | None]] = [(item, states.get(item.rel)) for item in looks]
        gone = [states[rel].id for rel in gone_rels if rel in states]
        if emptied:
            # An empty root that had files is far more often an unmounted drive than a
            # deleted library: keep the catalog and say how to really forget it.
            log.warning(
                "%s holds no sound files now (%d indexed before); nothing removed. If the drive is "
                "unmounted, mount it and rerun; to forget this library use 'sfx-index remove %s'",
                root.path, n_known, root.path,
            )
            self.report.skipped.append({"path": root.path, "reason": "empty root: kept its catalog entries"})
            gone = []
        gone_ids = set(gone)
        if todo or gone:
            # Mark the FAISS file stale before the first write: a kill from here on makes the
            # next open rebuild it from the catalog instead of trusting an old cache.
            self.catalog.bump_generation()
        self._embed_all(root, todo, gone_ids)
        if gone and not self.report.interrupted:
            removed = self.catalog.delete_files(gone)
            self.catalog.bump_generation()
            self.vectors.remove(np.asarray(removed, dtype=np.int64))
            # A moved file's old entry goes too, but it was reported as moved, not deleted.
            self.report.deleted += len(gone_ids - self._moved_from)

    # ------------------------------------------------------------------ embedding

    def _embed_all(self, root: Root, todo, gone_ids: set[int]) -> None:
        if not todo:
            return
        hashed: queue.Queue = queue.Queue(maxsize=256)
        stop = threading.Event()

        threading.Thread(target=hash_in_order, args=(todo, hashed, stop), daemon=True, name="sfx-hash").start()
        files_bar = self._bar(total=len(todo), desc="index", unit=" files")
        engine: Engine | None = None
        pending: dict[int, _Pending] = {}
        inflight_hashes: dict[str, int] = {}
        waiting_for_hash: dict[str, list] = {}
        ready: list[_Pending] = []
        windows_before = self.report.windows
        key_seq = 0
        fed_all = False
        last_commit = time.monotonic()

        def copy_or_note(item, state, h, src_id):
            rep = self.report
            fid, new_ids, old_ids = self.catalog.copy_file(
                src_id, root.id, item.rel, size=item.size, mtime_ns=item.mtime_ns
            )
            self._faiss_remove += old_ids
            vecs = self.catalog.vectors_for_chunks(new_ids)
            self._faiss_add.append((np.asarray(new_ids, np.int64), vecs))
            if src_id in gone_ids:
                rep.moved += 1
                self._moved_from.add(src_id)
            elif state is not None:
                rep.changed += 1
            else:
                rep.duplicates += 1
            files_bar.update(1)

        try:
            while True:
                # 1. Feed: take hashed files; copy known bytes, send the rest to the engine.
                while not fed_all and (engine is None or len(pending) < engine.capacity):
                    try:
                        got = hashed.get(timeout=0.05 if pending else 1.0)
                    except queue.Empty:
                        break
                    if got is None:
                        fed_all = True
                        break
                    item, state, h, ah, err = got
                    if err:
                        self._fail(root, item, err, None, state)
                        files_bar.update(1)
                        continue
                    if state and state.status == "ok" and state.content_hash == h:
                        self.catalog.update_stat(state.id, size=item.size, mtime_ns=item.mtime_ns)
                        self.report.unchanged += 1
                        files_bar.update(1)
                        continue
                    if (state and state.status == "ok" and ah is not None
                            and self.catalog.audio_hash_of(state.id) == ah):
                        # Only metadata changed (bext, iXML, tags...): new metadata and keywords,
                        # the same chunks and vectors, no model.
                        self.catalog.refresh_metadata(state.id, size=item.size, mtime_ns=item.mtime_ns,
                                                      content_hash=h, metadata=read_metadata(item.path))
                        self.report.retagged += 1
                        files_bar.update(1)
                        continue
                    src = self.catalog.find_embedded_by_hash(h)
                    if src is not None and (state is None or src != state.id):
                        copy_or_note(item, state, h, src)
                        continue
                    if h in inflight_hashes:  # same bytes already on their way: copy later
                        waiting_for_hash.setdefault(h, []).append((item, state))
                        continue
                    if engine is None:
                        engine = self._engine_factory()
                    key_seq += 1
                    pending[key_seq] = _Pending(root, item, h, is_new=state is None, audio_hash=ah)
                    inflight_hashes[h] = key_seq
                    engine.submit(key_seq, str(item.path))

                if fed_all and not pending:
                    break

                # 2. Decode + embed (the engine): whole files come back, embedded or failed.
                done = engine.poll(0.2, final=fed_all) if engine is not None and pending else []
                for r in done:
                    p = pending.pop(r.key, None)
                    if p is None:
                        continue
                    if r.error is not None:
                        self._fail(root, p.item, r.error, p.content_hash, None)
                        inflight_hashes.pop(p.content_hash, None)
                        for item, state in waiting_for_hash.pop(p.content_hash, []):
                            self._fail(root, item, r.error, p.content_hash, state)
                            files_bar.update(1)
                        files_bar.update(1)
                    else:
                        p.chunks, p.vectors, p.info, p.meta = r.chunks, r.vectors, r.info, r.meta
                        p.analysis = getattr(r, "analysis", None)
                        ready.append(p)
                if engine is not None:
                    self.report.windows = windows_before + engine.windows
                    files_bar.set_postfix(windows=self.report.windows, refresh=False)

                # 3. Files fully embedded are ready; commit them together now and then.
                now = time.monotonic()
                if ready and (now - last_commit > self.commit_every_s or (fed_all and not pending)):
                    batch, ready = ready, []  # a commit that raises is not tried again below
                    self._commit(batch, inflight_hashes, waiting_for_hash, copy_or_note, files_bar)
                    last_commit = now
        except KeyboardInterrupt:
            self.report.interrupted = True
        finally:
            stop.set()  # the hashing threads, whatever ended the loop (Ctrl-C, an error)
            try:
                if ready:
                    self._commit(ready, inflight_hashes, waiting_for_hash, copy_or_note, files_bar)
            finally:
                if engine is not None:
                    engine.close()
                files_bar.close()
        if self.report.interrupted:
            raise KeyboardInterrupt

    def _commit(self, ready, inflight_hashes, waiting_for_hash, copy_or_note, bar) -> None:
        adds, removes, new, changed = [], [], 0, 0
        with self.catalog.transaction():
            for p in ready:
                info = FileInfo(
                    duration_s=float(p.info["duration_s"]),
                    sample_rate=int(p.info["samplerate"]),
                    channels=int(p.info["channels"]),
                    subtype=str(p.info.get("subtype") or ""),
                    container=str(p.info.get("container") or ""),
                    decoder=p.info.get("decoder"),
                    truncated_at_s=p.info.get("truncated_at_s"),
                )
                fid, new_ids, old_ids = self.catalog.write_file(
                    p.root.id, p.item.rel, size=p.item.size, mtime_ns=p.item.mtime_ns,
                    content_hash=p.content_hash, info=info, chunks=p.chunks,
                    vectors=np.stack(p.vectors), metadata=p.meta or {}, audio_hash=p.audio_hash,
                )
                if p.analysis is not None:
                    a = p.analysis
                    self.catalog.store_analysis(fid, a.measurements, a.fingerprint, a.version)
                removes += old_ids
                adds.append((np.asarray(new_ids, np.int64), np.stack(p.vectors)))
                if p.is_new:
                    new += 1
                else:
                    changed += 1
            self.catalog.bump_generation()
        # Only a committed transaction reaches FAISS: after a failed commit (disk full) the FAISS
        # file saved at the end of the run would hold chunk ids the catalog never got, under the
        # catalog's current generation, so nothing would ever rebuild it.
        self._faiss_remove += removes
        self._faiss_add += adds
        self.report.new += new
        self.report.changed += changed
        bar.update(len(ready))
        for p in ready:
            inflight_hashes.pop(p.content_hash, None)
            for item, state in waiting_for_hash.pop(p.content_hash, []):
                src = self.catalog.find_embedded_by_hash(p.content_hash)
                copy_or_note(item, state, p.content_hash, src)
        self.sync_vectors()

    def _fail(self, root: Root, item: ScannedFile, reason: str, h: str | None, state) -> None:
        log.info("failed %s: %s", item.path, reason)
        old = self.catalog.mark_failed(root.id, item.rel, reason, size=item.size, mtime_ns=item.mtime_ns, content_hash=h)
        if old:
            self._faiss_remove += old
            self.catalog.bump_generation()
        self.report.failed += 1
        self.report.failures.append({"path": str(item.path), "reason": reason})

    def sync_vectors(self) -> None:
        if self._faiss_remove:
            self.vectors.remove(np.asarray(self._faiss_remove, dtype=np.int64))
            self._faiss_remove = []
        if self._faiss_add:
            ids = np.concatenate([a for a, _ in self._faiss_add])
            vecs = np.concatenate([v for _, v in self._faiss_add]).astype(np.float32)
            self.vectors.add(ids, vecs)
            self._faiss_add = []

    def _bar(self, **kw):
        from tqdm import tqdm

        return tqdm(disable=not self.progress, dynamic_ncols=True, leave=False, mininterval=0.5, **kw)

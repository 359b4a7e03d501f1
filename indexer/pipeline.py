"""build(): reconcile the library on disk with the catalog, embed what is new, keep FAISS in step.

This module opens the index, takes the build lock, runs a `indexer.builder.Builder` over the
roots (the reconcile-and-embed recipe is described there), fills in what older catalogs lack
(`indexer.backfill`), and saves or retrains the vector index at the end.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from .builder import BuildReport, Builder, scan_problems_key
from .catalog import ModelRecord
from .config import UserError
from .locking import BuildLock
from .workers import DEFAULT_FILE_TIMEOUT_S

__all__ = ["BuildReport", "Builder", "build", "default_workers", "scan_problems_key"]

log = logging.getLogger(__name__)


def build(
    settings,
    roots: list[str | Path],
    *,
    batch_size: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    wait: bool = False,
    file_timeout_s: float = DEFAULT_FILE_TIMEOUT_S,
    commit_every_s: float | None = None,
    ray_address: str | None = None,
    vector_dtype: str | None = None,
    measure: bool = True,
) -> BuildReport:
    """Index `roots` into the index of `settings`; the library entry point behind `sfx-index build`.

    `commit_every_s` (default `$SFX_COMMIT_EVERY_S`, else 5 s) is the longest time embedded files
    wait for their commit; 0 commits as soon as a file is ready (crash tests use it).
    `ray_address` ("local", "auto", "ray://HOST:10001") decodes and embeds on a Ray cluster
    (indexer/ray_engine.py, with `workers` actors if given); this process stays the one writer.
    `batch_size` and `workers` default to what suits the device (`default_batch_size`,
    `default_workers`): on CUDA the model also computes the log-mel frontend, so the decode
    workers only decode and send raw windows.
    """
    from . import clap
    from .index import Index
    from .runtime.builds import encoder_for_build

    if commit_every_s is None:
        commit_every_s = _env_seconds(ENV_COMMIT_EVERY_S, 5.0)
    roots = [Path(r).expanduser() for r in roots]
    for r in roots:
        if not r.is_dir():
            raise UserError(f"'{r}' is not a folder; give the folder that holds your sounds")
    device = "cpu" if ray_address is not None or settings.precision == "int8" else clap.resolve_device(settings.device)
    batch_size = batch_size or default_batch_size(device)
    actors, workers = workers, workers or default_workers(device)  # on Ray, None lets the cluster decide
    fe_config, fingerprint = clap.load_frontend(settings.model)
    record = ModelRecord.from_fingerprint(fingerprint, _checkpoint_dim(clap, settings.model))
    # The integrity check (O(catalog size)) runs beside the walk; the catalog makes the first
    # write wait for it, so a damaged catalog is still never written to.
    index = Index.open(settings, create=True)
    index.catalog.verify_in_background()
    try:
        with BuildLock(settings.index_dir, wait=wait):
            index.catalog.ensure_model(record)
            index.catalog.check_embedder(settings.precision)  # int8 and float never mix
            if ray_address is not None:
                if settings.precision == "int8":
                    raise UserError("--precision int8 runs on this machine's OpenVINO; drop --ray or build in float")
            if vector_dtype:
                index.catalog.ensure_vector_dtype(vector_dtype)
            generation = index.catalog.generation
            # A run killed after its last commit leaves a stale FAISS file; vectors() catches up in
            # memory, so this run must write it even when it changes nothing itself.
            from .vectors import saved_generation

            file_current = settings.faiss_path.exists() and saved_generation(settings.faiss_path) == generation
            if not file_current:
                index.catalog.verify()  # vectors() rebuilds from the catalog: not from a damaged one
            vectors = index.vectors()
            builder = Builder(
                index.catalog,
                vectors,
                encoder_loader=lambda: encoder_for_build(settings, index.catalog, roots),
                fe_config=dict(fe_config),
                model_record=record,
                batch_size=batch_size,
                workers=workers,
                exclude=[settings.index_dir],
                progress=progress,
                file_timeout_s=file_timeout_s,
                commit_every_s=commit_every_s,
                engine_factory=_ray_engines(ray_address, settings, batch_size, actors, progress, index.catalog),
                measure=measure,
                frontend_on_model=device in FRONTEND_ON_DEVICE,
            )
            try:
                report = builder.run(roots)
                from .backfill import hash_unhashed, measure_unmeasured

                # Files indexed before audio hashes or measurements existed, without the model.
                hash_unhashed(index.catalog, progress=progress)
                if measure:
                    measure_unmeasured(index.catalog, workers=workers, progress=progress)
                index.catalog.verify()  # a run that wrote nothing still reports a damaged catalog
            except Exception as exc:
                why = _storage_problem(exc)
                if why is None:
                    raise
                raise UserError(
                    f"cannot write the index in {settings.index_dir} ({why}); the files committed so far "
                    "are kept: free some space (or fix the permissions) and run the same command to continue"
                ) from None
            finally:
                builder.sync_vectors()
                if vectors.needs_retrain():
                    # Grown past what the index was trained for (or past the exact
                    # threshold): choose and train again under the recorded budget.
                    log.info("retraining the vector index: %s", vectors.retrain_reason())
                    vectors = index.rebuild_vectors(save=False)
                    generation = None
                # A run that changed no vector (a no-op rerun) leaves the FAISS file alone:
                # rewriting it costs as much as the index is big (200 MB per 100 000 chunks).
                if index.catalog.generation != generation or not file_current:
                    index.save_vectors(vectors)
    finally:
        index.close()
    return report


def _ray_engines(address, settings, batch_size, workers, progress, catalog):
    """None (the local engine), or a factory of engines on the Ray cluster at `address`. The
    catalog records what the actors embed with (runtime, precision, version), as they report it."""
    if address is None:
        return None
    from .ray_engine import engine_factory

    def record(facts: dict) -> None:
        catalog.record_embedder(facts["runtime"], facts["precision"], facts.get("version"))

    return engine_factory(address, model=settings.model, device=settings.device, precision=settings.precision,
                          batch_size=batch_size, actors=workers, progress=progress, on_embedder=record)

def _storage_problem(exc: BaseException) -> str | None:
    """'disk full' / 'read-only' when a write of the catalog failed for want of storage, else None."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "the disk is full"
        if isinstance(exc, OSError) and exc.errno == errno.EROFS:
            return "the file system is read-only"
        text = str(exc).lower()
        if "database or disk is full" in text:
            return "the disk is full"
        if "readonly database" in text or "read-only file system" in text:
            return "the index is read-only"
        exc = getattr(exc, "orig", None) or exc.__cause__
        seen += 1
    return None


ENV_COMMIT_EVERY_S = "SFX_COMMIT_EVERY_S"


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise UserError(f"{name}={raw!r} is not a number of seconds; unset it or give e.g. {name}=5")
    return value


GPU_DEVICES = ("cuda", "mps")
# Where a build computes the log-mel beside the model: float64 as on the CPU (mps has none).
FRONTEND_ON_DEVICE = ("cuda",)


def default_batch_size(device: str = "cpu") -> int:
    """Windows per model call: small on a CPU (its cores are as busy at 16), large on a GPU."""
    from .clap import ClapEncoder

    return ClapEncoder.gpu_batch_size if device in GPU_DEVICES else ClapEncoder.batch_size


def default_workers(device: str = "cpu") -> int:
    """Decode processes. Beside a model on the CPU decoding is cheap: one per two cores, the
    rest for the model. Beside a GPU the cores have nothing else to do, and decoding is what
    keeps the GPU fed: all but one, which feeds the GPU and writes the catalog."""
    cores = os.cpu_count() or 2
    return max(1, cores - 1) if device in GPU_DEVICES else max(1, cores // 2)


def _checkpoint_dim(clap, model: str) -> int:
    import json

    config = json.loads((clap.resolve_checkpoint(model) / "config.json").read_text())
    return int(config.get("projection_dim", 512))


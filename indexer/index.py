"""The index as one object: settings, catalog and the FAISS cache of its vectors.

`Index.open()` is the entry point for both command-line tools and the Python API. It keeps
invariant 1: the FAISS file is used only when its recorded generation equals the catalog's;
otherwise (missing, stale, corrupt) it is rebuilt from the catalog vectors and saved
atomically when the index folder is writable.
"""

from __future__ import annotations

import logging
import os
import threading

import numpy as np

from .catalog import Catalog
from .config import Settings, UserError
from .vectors import SortedIds, kind_of, map_pages, read_rows, saved_generation

log = logging.getLogger(__name__)

SYNC_ROWS = 65_536  # catalog vectors read per step when catching the FAISS index up
DEFAULT_DIM = 512   # vector size of an index with no model recorded yet (CLAP's)


class Index:
    def __init__(self, settings: Settings, catalog: Catalog):
        self.settings = settings
        self.catalog = catalog
        self._vectors = None
        self._vectors_generation: int | None = None
        # A long-running reader (`sfx-search serve`) sets this: each exact copy it opens has
        # its pages mapped in the background, so re-ranking pays no page faults.
        self.keep_warm = False

    @classmethod
    def open(cls, settings: Settings | None = None, *, create: bool = False, verify: bool = False) -> "Index":
        """Open the index; writers pass verify=True so a damaged catalog is refused, not written."""
        settings = settings or Settings()
        if create:
            settings.index_dir.mkdir(parents=True, exist_ok=True)
        elif not settings.db_url and not (settings.index_dir / "catalog.sqlite").exists():
            raise UserError(
                f"no index at {settings.index_dir}; run 'sfx-index build LIBRARY' first "
                "(or point --index / SFX_INDEX_DIR at an existing index)"
            )
        return cls(settings, Catalog.open(settings.catalog_url, create=create, verify=verify))

    def close(self) -> None:
        self.catalog.close()

    # ------------------------------------------------------------------ vectors

    @property
    def vectors_loaded(self) -> bool:
        """Whether a FAISS index is in memory already (a query may load it beside other work)."""
        return self._vectors is not None

    def vectors(self, *, refresh: bool = True):
        """The FAISS index, current with the catalog's last commit.

        The file on disk is used when its generation is the catalog's (a builder renames a
        new one into place at the end of each run); otherwise whatever index we have is
        brought up to date from the catalog by id difference, which is cheap next to a
        rebuild and correct whatever generation it was labelled with.
        """
        gen = self.catalog.generation
        if self._vectors is not None and (not refresh or self._vectors_generation == gen):
            return self._vectors
        from .vectors import IndexCorrupt, VectorIndex

        path = self.settings.faiss_path
        vi = self._vectors
        if path.exists() and (vi is None or saved_generation(path) == gen):
            try:
                vi = VectorIndex.load(path)
            except IndexCorrupt as exc:
                log.warning("the FAISS file is unusable (%s); rebuilding it from the catalog", exc)
                vi = None
        if vi is None:
            vi = self.rebuild_vectors(save=os.access(path.parent, os.W_OK))
        elif int(vi.meta.get("generation") if vi.meta.get("generation") is not None else -1) != gen:
            log.info("the vector index is older than the catalog; catching up")
            self.sync_vectors(vi)
            vi.meta["generation"] = gen
            if vi.needs_retrain():
                vi = self.rebuild_vectors(save=os.access(path.parent, os.W_OK))
        vi.rerank = self._exact_vectors(vi)
        self._vectors, self._vectors_generation = vi, gen
        return vi

    def _exact_vectors(self, vi):
        """Where a compressed (SQ/PQ) index re-ranks its candidates: a float16 copy of the
        vectors beside the FAISS file (written at each rebuild, remade if missing), and the
        catalog for chunks added since."""
        if not vi.kind.compressed:
            return None
        ev = ExactVectors(self.settings.index_dir, self.catalog)
        if not ev.loaded and os.access(self.settings.index_dir, os.W_OK):
            ev.write_from_catalog()
        if self.keep_warm and ev.loaded:
            threading.Thread(target=ev.warm, name="sfx-map-exact", daemon=True).start()
        return ev

    def sync_vectors(self, vi) -> tuple[int, int]:
        """Make `vi` hold exactly the catalog's chunks: (added, removed)."""
        catalog_ids = self.catalog.all_chunk_ids()
        have = vi.ids()
        extra = np.setdiff1d(have, catalog_ids, assume_unique=True)
        missing = np.setdiff1d(catalog_ids, have, assume_unique=True)
        if len(extra):
            vi.remove(extra)
        for i in range(0, len(missing), SYNC_ROWS):
            part = missing[i : i + SYNC_ROWS]
            vi.add(part, self.catalog.vectors_for_chunks(part.tolist()))
        return len(missing), len(extra)

    def rebuild_vectors(self, *, save: bool = True, memory: str | None = None, kind: str | None = None):
        """Build the vector index from the catalog under the index's memory budget.

        The budget and kind (`sfx-index reindex --memory 2G --kind auto`) are recorded in the
        catalog so that every later rebuild, by any process, makes the same choice.
        """
        from .vectors import DEFAULT_MEMORY, VectorIndex, parse_memory, plan_index

        if memory is not None:
            parse_memory(memory)  # validate before recording
            self.catalog.set_meta("index_memory", str(memory))
        if kind is not None:
            self.catalog.set_meta("index_kind", kind)
        gen = self.catalog.generation
        model = self.catalog.get_model()
        dim = model.dim if model else DEFAULT_DIM
        vi = VectorIndex(
            dim,
            memory=self.catalog.get_meta("index_memory", DEFAULT_MEMORY),
            kind=self.catalog.get_meta("index_kind", "auto"),
        )
        n = self.catalog.chunk_count()
        plan = plan_index(n, dim, vi.meta["memory"], kind=vi.meta["kind_request"],
                          exact_threshold=vi.meta["exact_threshold"])
        writable = os.access(self.settings.index_dir, os.W_OK)
        if kind_of(plan["kind"]).compressed and writable:
            # Compressed kinds re-rank against the float16 copy; it is written by streaming
            # the catalog and the index is built from it, so RAM never holds every vector
            # (10M x 512 float32 would be 20 GB).
            ev = ExactVectors(self.settings.index_dir, self.catalog)
            ev.write_from_catalog()
            ids, vecs = np.asarray(ev.ids), ev.vecs
        else:
            parts = list(self.catalog.iter_vectors())
            if parts:
                ids = np.concatenate([p[0] for p in parts])
                vecs = np.concatenate([p[1] for p in parts])
            else:
                ids, vecs = np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
        # Tuned on text-like queries beside held-out audio: text vectors sit apart from audio
        # vectors, and held-out audio alone over-states recall (indexer.tuning_queries).
        queries, source = self._tuning_queries(vecs) if kind_of(plan["kind"]).tuned else (None, None)
        vi.build(ids, vecs, queries=queries, queries_from=source)
        vi.rerank = self._exact_vectors(vi)
        if save:
            self.save_vectors(vi, gen)
        self._vectors, self._vectors_generation = vi, gen
        return vi

    def _tuning_queries(self, vecs):
        from .tuning_queries import tuning_queries

        return tuning_queries(self.settings, self.catalog, vecs)

    def retune_vectors(self, *, save: bool = True):
        """Tune the current vector index's search settings again, without retraining it (e.g.
        once text queries are cached: indexer.tuning_queries). An exact index is left as is."""
        vi = self.vectors()
        if not vi.kind.tuned:
            return vi
        ev = vi.rerank
        if isinstance(ev, ExactVectors) and ev.loaded and len(ev.ids) == vi.ntotal \
                and np.array_equal(np.sort(vi.ids()), np.asarray(ev.ids)):
            ids, vecs = np.asarray(ev.ids), ev.vecs  # the float16 copy holds exactly the index
        else:
            parts = list(self.catalog.iter_vectors())
            ids = np.concatenate([p[0] for p in parts])
            vecs = np.concatenate([p[1] for p in parts])
        queries, source = self._tuning_queries(vecs)
        vi.tune(ids, vecs, queries=queries, queries_from=source)
        if save:
            self.save_vectors(vi, self._vectors_generation)
        return vi

    def save_vectors(self, vi, generation: int | None = None) -> None:
        vi.meta["generation"] = self.catalog.generation if generation is None else generation
        try:
            vi.save(self.settings.faiss_path)
        except OSError as exc:
            raise UserError(
                f"cannot write the vector index in {self.settings.index_dir} ({exc.strerror or exc}); "
                "free some space or check permissions; the catalog is intact and the next run rebuilds it"
            ) from None

    def check(self, *, repair: bool = False) -> dict:
        """Compare FAISS ids with catalog chunk ids; with repair, rebuild from the catalog."""
        from .vectors import IndexCorrupt, VectorIndex

        path = self.settings.faiss_path
        problems: list[str] = []
        integrity = self.catalog.integrity_check()
        if integrity != "ok":
            # Nothing else can be trusted, and nothing may be written: report and stop.
            first = next((ln for ln in integrity.splitlines() if ln.strip() and not ln.startswith("***")), integrity)
            return {"ok": False, "problems": [f"the catalog is corrupt (integrity check: {first.strip()[:200]})"],
                    "chunks": 0, "faiss_vectors": 0, "repaired": False, "corrupt": True}
        catalog_ids = set(self.catalog.all_chunk_ids().tolist())
        faiss_ids: set[int] = set()
        if not path.exists():
            problems.append("the FAISS file is missing")
        else:
            try:
                vi = VectorIndex.load(path)
                faiss_ids = set(vi.ids().tolist())
                if int(vi.meta.get("generation", -1)) != self.catalog.generation:
                    problems.append("the FAISS file is older than the catalog")
            except IndexCorrupt as exc:
                problems.append(f"the FAISS file is corrupt: {exc}")
        only_faiss = len(faiss_ids - catalog_ids)
        only_catalog = len(catalog_ids - faiss_ids)
        if only_faiss:
            problems.append(f"{only_faiss} vectors in FAISS have no chunk row")
        if only_catalog:
            problems.append(f"{only_catalog} chunks are missing from FAISS")
        repaired = False
        if problems and repair and integrity == "ok":
            self.rebuild_vectors(save=True)
            repaired = True
        return {
            "ok": not problems,
            "problems": problems,
            "chunks": len(catalog_ids),
            "faiss_vectors": len(faiss_ids),
            "repaired": repaired,
        }


class ExactVectors:
    """float16 vectors by chunk id in `exact.f16.npy` / `exact.ids.npy` (memory-mapped).

    Chunk ids are never reused and a chunk's vector never changes, so the copy stays valid
    for every id it holds; ids added after it was written are read from the catalog.
    """

    def __init__(self, index_dir, catalog):
        from pathlib import Path

        self.dir = Path(index_dir)
        self.catalog = catalog
        self.ids = self.vecs = self.lookup = None
        try:
            self.ids = np.load(self.dir / "exact.ids.npy", mmap_mode="r")
            self.vecs = np.load(self.dir / "exact.f16.npy", mmap_mode="r")
            if len(self.ids) != len(self.vecs):
                self.ids = self.vecs = None
        except (OSError, ValueError):
            self.ids = self.vecs = None
        if self.ids is not None:
            self.lookup = SortedIds(self.ids)

    @property
    def loaded(self) -> bool:
        return self.ids is not None

    def warm(self) -> None:
        """Map the copy's pages now, for a long-running reader (see vectors.map_pages)."""
        if self.ids is not None:
            map_pages(self.ids)
            map_pages(self.vecs)

    def write_from_catalog(self) -> None:
        """Stream the catalog's vectors (in id order) into the copy, part by part."""
        model = self.catalog.get_model()
        if model is None:
            return
        self._write_parts(self.catalog.iter_vectors(), self.catalog.chunk_count(), model.dim)

    def _write_parts(self, parts, n: int, dim: int) -> None:
        names = ("exact.f16.npy", "exact.ids.npy")
        tmp = {name: self.dir / (name + ".tmp") for name in names}
        try:
            vecs = np.lib.format.open_memmap(tmp[names[0]], "w+", np.float16, (n, dim))
            ids = np.lib.format.open_memmap(tmp[names[1]], "w+", np.int64, (n,))
            at = 0
            for part_ids, part_vecs in parts:
                m = min(len(part_ids), n - at)  # chunks committed meanwhile are read from the catalog
                ids[at:at + m], vecs[at:at + m] = part_ids[:m], part_vecs[:m]
                at += m
            vecs.flush()
            ids.flush()
            if at < n:  # chunks removed meanwhile: the files must hold exactly what was read
                for name, arr, dtype in ((names[0], vecs, np.float16), (names[1], ids, np.int64)):
                    short = np.lib.format.open_memmap(self.dir / (name + ".short"), "w+", dtype,
                                                      (at,) + arr.shape[1:])
                    short[:] = arr[:at]
                    short.flush()
                    del short
                    os.replace(self.dir / (name + ".short"), tmp[name])
            del vecs, ids
            for name in names:
                os.replace(tmp[name], self.dir / name)
        except BaseException:
            for path in tmp.values():
                path.unlink(missing_ok=True)
            raise
        self.__init__(self.dir, self.catalog)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int64)
        found = np.zeros(len(ids), bool)
        if self.ids is not None and len(self.ids):
            pos, found = self.lookup(ids)
            if found.all():  # the usual case
                return read_rows(self.vecs, pos)
        out = np.zeros((len(ids), self.catalog.get_model().dim), np.float32)
        if found.any():
            out[found] = read_rows(self.vecs, pos[found])
        if not found.all():  # chunks committed after the copy was written
            out[~found] = self.catalog.vectors_for_chunks(ids[~found].tolist(), missing_ok=True)
        return out


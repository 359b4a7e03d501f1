"""Text or audio -> vector -> candidate chunks -> files ranked by their best chunk.

`Library` is the Python API behind `sfx-search` and the audition server:

    from search import Library
    lib = Library.open()
    for r in lib.search("metal scraping in stone room", n=20):
        print(r.path, r.score, r.offset_s)

Semantic ranking is exact with respect to the FAISS index: enough chunks are fetched that
`n` distinct files come back whenever the (filtered) library has them. Keyword ranking uses
the catalog's full-text index; hybrid mode fuses both with reciprocal rank fusion.
Byte-identical duplicates are grouped under their best-ranked copy.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from indexer.catalog import ChunkRow
from indexer.catalog.keyword_query import uses_operators
from indexer.config import Settings, UserError, resolve_index_dir, resolve_model
from indexer.index import Index

from .filters import Filters
from .fusion import finish, fuse, result_rows
from .results import NoMatches, Result

log = logging.getLogger(__name__)

NEGATIVE_WEIGHT = 0.5
MAX_QUERY_CHARS = 2000
MODES = ("semantic", "keyword", "hybrid")


class Library:
    """An open index for searching. Models load lazily; text vectors are cached in the catalog."""

    def __init__(self, index: Index, model: str):
        self.index = index
        self.catalog = index.catalog
        self.model = model
        self._text_encoder = None
        self._audio_encoder = None
        self._workers = None
        rec = self.catalog.get_model()
        self._model_key = rec.key() if rec else None

    @property
    def text_cache_key(self) -> str:
        """The key this library's text vectors are cached under in the catalog."""
        return self._model_key or self.model

    @classmethod
    def open(
        cls,
        index_dir: str | Path | None = None,
        *,
        model: str | None = None,
        db_url: str | None = None,
        device: str = "auto",
        precision: str = "auto",
    ) -> "Library":
        settings = Settings(
            index_dir=resolve_index_dir(index_dir), model=resolve_model(model), device=device, precision=precision
        )
        if db_url:
            settings.db_url = db_url
        return cls.from_settings(settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Library":
        index = Index.open(settings)
        rec = index.catalog.get_model()
        # The index knows which model made it: query with the same one unless told otherwise.
        model = settings.model
        if rec is not None and model != rec.model_id and settings.model == resolve_model(None):
            model = rec.model_id
        lib = cls(index, model)
        lib.settings = settings
        return lib

    def close(self) -> None:
        if self._workers is not None:
            self._workers.shutdown(wait=True)
        self.index.close()

    def _in_background(self, fn, *args, **kwargs):
        """Run fn on a worker thread; .result() gives its value or raises its error."""
        if self._workers is None:
            from concurrent.futures import ThreadPoolExecutor

            # One per query in flight (the audition server searches on several threads).
            self._workers = ThreadPoolExecutor(4, thread_name_prefix="sfx-search")
        return self._workers.submit(fn, *args, **kwargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ encoders

    def encoder(self, part: str):
        """The CLAP encoder of one tower ("text" or "audio"), loaded on first use and checked
        against the catalog's model."""
        from indexer.clap import ClapEncoder

        s = getattr(self, "settings", None)
        device = s.device if s else "auto"
        precision = s.precision if s else "auto"
        if part == "text":
            if self._text_encoder is None:
                self._text_encoder = ClapEncoder.load(self.model, device=device, precision=precision, parts=("text",))
                self._check_model(self._text_encoder)
            return self._text_encoder
        if self._audio_encoder is None:
            self._audio_encoder = ClapEncoder.load(self.model, device=device, precision=precision, parts=("audio",))
            self._check_model(self._audio_encoder)
        return self._audio_encoder

    def _check_model(self, encoder) -> None:
        rec = self.catalog.get_model()
        from indexer.catalog import ModelRecord

        if rec is not None and ModelRecord.from_fingerprint(encoder.fingerprint, encoder.dim).key() != rec.key():
            raise UserError(
                f"this index was built with '{rec.model_id}'; query it with the same model (--model {rec.model_id})"
            )

    def text_vectors(self, texts: Sequence[str], *, shared: bool = False, progress: bool = False) -> np.ndarray:
        """Unit text vectors, from the catalog's cache when this model has seen the text before.

        `shared`: also look in (and fill) the machine-wide cache every index of this model
        reads (label sets: search.shared_text_vectors). `progress`: a bar on stderr while
        many texts are embedded.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        key = self.text_cache_key
        cached = self.catalog.cached_text_vectors(key, texts)
        missing = [t for t in dict.fromkeys(texts) if t not in cached]
        store = list(missing)
        machine = None
        if missing and shared and self._model_key:
            from .shared_text_vectors import SharedTextVectors

            machine = SharedTextVectors(self._model_key)
            cached.update(machine.get(missing))
            missing = [t for t in missing if t not in cached]
        if missing:
            # Caching the new vectors waits for the catalog's integrity check (never write
            # into damage): it runs while the tower computes, not after it.
            self.catalog.expect_text_vectors()
            vecs = self._embed_texts(missing, progress)
            cached.update(zip(missing, vecs))
            if machine is not None:
                machine.put(missing, vecs)
        if store:
            vecs = np.stack([cached[t] for t in store])
            try:
                self.catalog.store_text_vectors(key, store, vecs)
            except Exception as exc:  # a read-only index still answers queries
                if self.catalog.damage is not None:  # a corrupt one says so instead
                    raise self.catalog.damage from None
                log.debug("could not cache text vectors: %s", exc)
        return np.stack([cached[t] for t in texts]).astype(np.float32)

    TEXT_BATCH = 32

    def _embed_texts(self, texts: list[str], progress: bool) -> np.ndarray:
        encoder = self.encoder("text")
        if not progress or len(texts) <= 2 * self.TEXT_BATCH:
            return encoder.embed_text(texts)
        from tqdm import tqdm

        out = []
        with tqdm(total=len(texts), desc="embedding label prompts", unit="prompt", file=sys.stderr,
                  dynamic_ncols=True) as bar:
            for i in range(0, len(texts), self.TEXT_BATCH):
                out.append(encoder.embed_text(texts[i:i + self.TEXT_BATCH]))
                bar.update(len(out[-1]))
        return np.concatenate(out)

    @property
    def dim(self) -> int:
        rec = self.catalog.get_model()
        return rec.dim if rec else 512

    # ------------------------------------------------------------------ queries

    def search(
        self,
        text: str,
        n: int = 20,
        *,
        filters: Filters | None = None,
        mode: str = "hybrid",
        not_text: str | None = None,
        collapse_copies: bool = False,
    ) -> list[Result]:
        """The n files that best match `text`; `collapse_copies` folds near-duplicates of the
        list into the best-ranked copy's row ("+N copies", search/hygiene.py)."""
        from indexer.catalog import safe_text

        # A non-UTF-8 argv reaches us as lone surrogates: keep what can be read of it.
        text = safe_text((text or "").strip())
        not_text = safe_text(not_text) if not_text else not_text
        if not text:
            raise UserError('give a description to search for, e.g. sfx-search "metal scraping in stone room"')
        if len(text) > MAX_QUERY_CHARS:
            raise UserError(f"the description is {len(text)} characters long; keep it under {MAX_QUERY_CHARS}")
        if mode not in MODES:
            raise UserError(f"--mode must be one of {', '.join(MODES)}")
        allowed = self._allowed_files(filters)
        syntax = mode != "semantic" and uses_operators(text)
        if syntax:
            # Soundminer syntax: its -words leave the results of both halves; the sound half
            # hears the words without the operators.
            excluded = self.catalog.keyword_excluded(text)
            if excluded:
                base = allowed if allowed is not None else self.catalog.filter_file_ids()
                allowed = set(base) - excluded
                if not allowed:
                    raise NoMatches("no results: every file matches a -word of the query")
        keyword_job = None
        if mode == "hybrid":
            # The keyword half (full-text search over the catalog, which releases the GIL)
            # runs beside the text tower and the vector search instead of after them.
            keyword_job = self._in_background(self.keyword_files, text, allowed, limit=max(n * 3, 50))
        semantic: list[tuple[int, float, int]] = []
        if mode in ("semantic", "hybrid"):
            # A first query reads the FAISS file while the text tower computes (a cold command
            # waits there for the tower to load) instead of after it.
            loading = None if self.index.vectors_loaded else self._in_background(self.index.vectors)
            q = self.text_vectors([sound_text(text) if syntax else text])[0]
            if not_text:
                q = q - NEGATIVE_WEIGHT * self.text_vectors([not_text])[0]
            if loading is not None:
                loading.result()
            semantic = self.rank_files(q, self.candidates_for(n) if mode == "semantic" else max(n * 3, 50), allowed)
        if mode == "semantic":
            return finish(self.catalog, semantic, n, collapse_copies)
        # Keyword mode shows n files; hybrid fuses a longer keyword list with the semantic one.
        if keyword_job is not None:
            keyword = keyword_job.result()
        else:
            keyword = self.keyword_files(text, allowed, limit=max(n * 3, 50), need=n, all_words_first=True)
        if mode == "keyword":
            q = None
            scored = [(fid, s, None) for fid, s in keyword]
            return finish(self.catalog, scored, n, collapse_copies, found={fid: ("keyword", None, s) for fid, s in keyword})
        fused, found = fuse(semantic, keyword)
        return finish(self.catalog, fused, n, collapse_copies, found=found, best_for=q)

    def similar(
        self,
        path: str | Path | None = None,
        *,
        file_id: int | None = None,
        start_s: float | None = None,
        n: int = 20,
        filters: Filters | None = None,
        collapse_copies: bool = False,
        include_self: bool = False,
    ) -> list[Result]:
        """Sounds like a file (in the catalog: stored vectors, no model call) or a moment of it.

        The file itself (and its byte-identical copies) would rank first with score 1: it is
        left out unless `include_self`.
        """
        q = self.file_vector(path, file_id=file_id, start_s=start_s)
        skip = set() if include_self else self._same_file_ids(path, file_id)
        ranked = self.rank_files(q, self.candidates_for(n) + len(skip), self._allowed_files(filters))
        return finish(self.catalog, [r for r in ranked if r[0] not in skip], n, collapse_copies)

    def _same_file_ids(self, path, file_id) -> set[int]:
        row = self.catalog.files_by_ids([file_id]).get(file_id) if file_id is not None else None
        if row is None and path is not None:
            row = self.catalog.file_by_path(path)
        if row is None:
            return set()
        same = {row.id}
        if row.content_hash:
            same.update(self.catalog.files_with_hash(row.content_hash))
        return same

    def search_vector(self, q: np.ndarray, n: int = 20, *, filters: Filters | None = None) -> list[Result]:
        """Files ranked by their best chunk against a query vector (relevance feedback, search.feedback)."""
        return result_rows(self.catalog, self.rank_files(q, self.candidates_for(n), self._allowed_files(filters)), n)

    def file_vector(self, path=None, *, file_id=None, start_s=None) -> np.ndarray:
        row = self.catalog.files_by_ids([file_id]).get(file_id) if file_id is not None else None
        if row is None and path is not None:
            row = self.catalog.file_by_path(path)
        if row is not None and row.status == "ok":
            chunks, vecs = self.catalog.chunks_for(row.id)
        else:
            if path is None or not Path(path).is_file():
                raise UserError(f"'{path or file_id}' is neither in the index nor a readable file")
            chunks, vecs = self._embed_outside(Path(path))
        if not len(vecs):
            raise UserError(f"no audio windows in '{path or file_id}'")
        if start_s is not None:
            i = _chunk_at(chunks, start_s)
            return vecs[i]
        v = vecs.mean(axis=0)
        return v / (np.linalg.norm(v) or 1.0)

    def _embed_outside(self, path: Path):
        from indexer.decode import decode_errors_for_user, file_windows

        with decode_errors_for_user(path):
            windows = list(file_windows(path))
        enc = self.encoder("audio")
        vecs = enc.embed_audio(np.stack([w.samples for w in windows]), [w.n_real for w in windows])
        chunks = [ChunkRow(-1, -1, w.index, w.start_s, w.end_s) for w in windows]
        return chunks, vecs

    def rank_files(self, q: np.ndarray, n: int, allowed_files: set[int] | None = None) -> list[tuple[int, float, int]]:
        """(file id, best chunk score, best chunk id) for the n best files, exact w.r.t. the index."""
        vi = self.index.vectors()
        total = int(vi.ntotal)
        if total == 0 or n <= 0:
            return []
        allowed_chunks = None
        if allowed_files is not None:
            allowed_chunks = self.catalog.chunk_ids_for_files(allowed_files)
            if len(allowed_chunks) == 0:
                return []
            total = len(allowed_chunks)
        # Enough chunks for n distinct files in one search when files have many windows
        # (a long take's windows tend to neighbour each other); widened below if still short.
        k = min(total, max(4 * n * self._windows_per_file(int(vi.ntotal)), 64))
        q = np.ascontiguousarray(q, dtype=np.float32).reshape(1, -1)
        while True:
            scores, ids = vi.search(q, k, allowed_ids=allowed_chunks)
            pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
            # Walk the chunks best first and look up their files a slice at a time: a file's
            # first chunk is its best, and once n files are seen no other file can rank above
            # them, so the rest of the list need not be read from the catalog.
            best: dict[int, tuple[float, int]] = {}
            at, step = 0, max(self._chunk_step, 4 * n)
            while at < len(pairs) and len(best) < n:
                part = pairs[at:at + step]
                rows = self.catalog.chunk_files([i for i, _ in part])
                for cid, s in part:
                    fid = rows.get(cid)
                    if fid is None:  # FAISS ahead of this reader's view of the catalog
                        continue
                    if fid not in best:
                        best[fid] = (s, cid)
                at, step = at + len(part), step * 4
            if len(best) >= n or k >= total:
                break
            k = min(total, k * 4)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return [(fid, s, cid) for fid, (s, cid) in ranked[:n]]

    # ------------------------------------------------------------------ pieces

    _chunk_step = 64  # chunks whose files are looked up at a time (grows x4), see rank_files

    def _windows_per_file(self, chunks: int) -> int:
        gen = self.catalog.generation
        if getattr(self, "_wpf", (None, 1))[0] != gen:
            files = max(1, self.catalog.indexed_file_count())
            self._wpf = (gen, max(1, min(16, round(chunks / files))))
        return self._wpf[1]

    @staticmethod
    def candidates_for(n: int) -> int:
        """Files ranked for n results: extra rows so that grouping byte-identical duplicates
        still leaves n."""
        return n * 2 + 8

    def _allowed_files(self, filters: Filters | None) -> set[int] | None:
        if filters is None or filters.empty():
            return None
        ids = filters.file_ids(self.catalog)
        if not ids:
            raise NoMatches(f"no results: no indexed file matches the filters ({filters.describe()})")
        return ids

    def keyword_files(
        self, text: str, allowed: set[int] | None, limit: int, need: int | None = None, all_words_first: bool = False
    ) -> list[tuple[int, float]]:
        """Up to `limit` keyword matches that pass the filter; at least `need` when there are."""
        extra = {"all_words_first": True} if all_words_first else {}
        if allowed is None:
            return self.catalog.keyword_search(text, limit=limit, **extra)
        # A filter keeps only some of the best matches (at a million files, a folder's sounds
        # may all rank below the first few hundred): widen until enough pass or none are left.
        need = limit if need is None else min(need, limit)
        want = limit * 4
        while True:
            hits = self.catalog.keyword_search(text, limit=want, **extra)
            kept = [h for h in hits if h[0] in allowed]
            if len(kept) >= need or len(hits) < want:
                return kept[:limit]
            want *= 64  # each round scores every match again: few rounds (3 at a million files)

def sound_text(text: str) -> str:
    """What CLAP hears of a query written in the keyword syntax: its words, without -words,
    quotes, commas and stars ('door -metal, "car door"' -> 'door car door')."""
    kept = [w for w in re.findall(r'-?"[^"]*"?|\S+', text) if not w.startswith("-")]
    return " ".join(w.replace('"', "").replace("*", "").replace(",", " ") for w in kept).strip() or text


def _chunk_at(chunks: list[ChunkRow], t: float) -> int:
    """The window that best covers time t: the last one starting at or before it."""
    best = 0
    for i, c in enumerate(chunks):
        if c.start_s <= t + 1e-6:
            best = i
    return best

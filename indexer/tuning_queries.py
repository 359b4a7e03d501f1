"""Text-like queries for tuning an approximate index (the tuner also uses held-out audio).

Text vectors sit apart from audio vectors (CLAP's modality gap): settings tuned on held-out
audio vectors alone reached recall@10 0.961 on them and 0.703 on fresh text queries at 1M
(docs/benchmarks.md). So the tuner requires its target on queries where text queries land,
taken in this order until there are TUNING_QUERIES of them:

1. the catalog's cached text vectors of its model: queries people asked;
2. generic sound descriptions (the UCS descriptions shipped in `indexer.data`, a fixed
   sample) embedded by the index's own text tower, when its checkpoint is at hand. Whatever
   the weights, that is where this tower puts text, and none of it comes from the library;
3. without the model, and with at least MIN_FOR_SHIFT cached text vectors: held-out data
   vectors moved by the mean offset from the data to those text vectors, renormalised.

With none of these the tuner uses held-out data alone, as before, and the log says so.
Nothing is computed for an exact index (it is not tuned).
"""

from __future__ import annotations

import csv
import io
import logging

import numpy as np

from .config import UserError

log = logging.getLogger(__name__)

TUNING_QUERIES = 500   # text-like queries at most
MIN_FOR_SHIFT = 8      # cached text vectors needed to estimate the data-to-text offset
DESCRIPTIONS_SEED = 20  # fixes the sample of descriptions, so every rebuild tunes on the same
SHIFT_SEED = 21


def descriptions(n: int) -> list[str]:
    """n generic sound descriptions (all there are when n exceeds them), a fixed sample."""
    from .resources import read_data_text

    rows = csv.DictReader(io.StringIO(read_data_text("taxonomies", "ucs.csv")))
    texts = list(dict.fromkeys(r["description"].strip() for r in rows if r.get("description", "").strip()))
    if n >= len(texts):
        return texts
    pick = np.random.default_rng(DESCRIPTIONS_SEED).choice(len(texts), n, replace=False)
    return [texts[i] for i in sorted(pick)]


def embed_descriptions(settings, catalog, n: int) -> np.ndarray | None:
    """n descriptions through the text tower of the catalog's model, or None when that tower
    cannot be had here (no checkpoint, another model than the catalog's, no runtime)."""
    from .catalog import ModelRecord
    from .clap import ClapEncoder
    from .config import resolve_model

    rec = catalog.get_model()
    if rec is None or n <= 0:
        return None
    model = settings.model
    if model != rec.model_id and model == resolve_model(None):  # as Library picks its model
        model = rec.model_id
    if not at_hand(model):  # never a download for tuning's sake
        log.info("tuning without embedded descriptions: %s is not on this machine", model)
        return None
    try:
        enc = ClapEncoder.load(model, device=settings.device, precision=settings.precision, parts=("text",))
        if ModelRecord.from_fingerprint(enc.fingerprint, enc.dim).key() != rec.key():
            log.info("tuning without embedded descriptions: %s is not the catalog's model", model)
            return None
        return np.asarray(enc.embed_text(descriptions(n)), np.float32)
    except (UserError, OSError, ImportError, RuntimeError, ValueError) as exc:
        log.info("tuning without embedded descriptions: the text tower is not at hand (%s)",
                 str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
        return None


def at_hand(model: str) -> bool:
    """Whether `model` is a checkpoint folder or already in the Hugging Face cache."""
    from pathlib import Path

    from .checkpoint import cached_snapshot

    if Path(model).expanduser().is_dir():
        return True
    try:
        return cached_snapshot(model) is not None
    except ImportError:  # no hub library: nothing is cached
        return False


def shifted(data: np.ndarray, text: np.ndarray, n: int) -> np.ndarray:
    """n data vectors moved by the mean offset from the data to `text`, renormalised."""
    rng = np.random.default_rng(SHIFT_SEED)
    pos = np.sort(rng.choice(len(data), min(n, len(data)), replace=False))
    sample = np.asarray(data[pos], np.float32)
    moved = sample + (text.mean(0) - sample.mean(0))
    norms = np.linalg.norm(moved, axis=1, keepdims=True)
    return (moved / np.maximum(norms, 1e-12)).astype(np.float32)


def tuning_queries(settings, catalog, data: np.ndarray, *, embed=embed_descriptions) -> tuple[np.ndarray | None, str | None]:
    """(text-like queries or None, where they came from) for tuning over `data` (see above)."""
    cached = catalog.sample_text_vectors(TUNING_QUERIES)
    parts, source = [], []
    if len(cached):
        parts.append(cached)
        source.append(f"{len(cached)} cached text queries")
    need = TUNING_QUERIES - len(cached)
    if need > 0:
        made = embed(settings, catalog, need)
        if made is not None and len(made):
            parts.append(made)
            source.append(f"{len(made)} sound descriptions embedded by the text tower")
        elif len(cached) >= MIN_FOR_SHIFT and len(data):
            parts.append(shifted(data, cached, need))
            source.append(f"{len(parts[-1])} data vectors moved toward the cached text vectors")
    if not parts:
        log.warning("no text queries cached and no text tower at hand: the vector index is tuned "
                    "on held-out audio alone, which over-states the recall of text queries")
        return None, None
    return np.concatenate(parts).astype(np.float32), " + ".join(source)

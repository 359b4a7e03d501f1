"""The CLAP text tower on OpenVINO: exported once per checkpoint, run with numpy and `tokenizers`.

A query that runs this tower imports neither torch nor transformers: the tokenizer is the
checkpoint's fast tokenizer saved as `tokenizer.json` (with the truncation and padding
AutoTokenizer applies), the model an OpenVINO IR. Each text is one request (no padding, so a
text's vector does not depend on the other texts of the call); the compiled model is cached by
OpenVINO beside the IR, which makes the next process's compile a read of that blob. The blob is
weightless (CACHE_MODE=OPTIMIZE_SIZE, where this OpenVINO's CPU plugin has it): the weights are
memory-mapped from the IR's own .bin instead of kept a second time in the blob, and the load
takes as long as with a full blob (docs/benchmarks.md).

The word-embedding table (vocabulary x width, ~150 MB of laion/clap-htsat-fused's ~500 MB)
is kept beside the IR as a float32 .npy, memory-mapped: a query gathers its few rows in numpy
and feeds them to the IR (which still takes the token ids, for the position ids). A cold
query then neither reads nor compiles the table; only the pages of its rows are touched.

The export is checked before it is trusted, as the torch text cache is: on probe texts the
tokenizer must give AutoTokenizer's ids and the tower the transformers fp32 vectors (cosine
>= VERIFY_COSINE); otherwise nothing is kept.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from . import cache
from .openvino_common import compiled_precision, convert_model, core, hint, min_cosine, version

log = logging.getLogger(__name__)


# 2: the word-embedding table beside the IR (an entry of layout 1 holds it inside).
LAYOUT = 2
# OpenVINO's cache of the compiled tower, inside the entry. "compiled" held full blobs (a second
# copy of the weights) and is removed when found.
COMPILED = "compiled-weightless"
OLD_COMPILED = "compiled"
# Beyond textcache.PROBE_TEXTS: special tokens written in the text, whose position ids
# transformers derives from the token ids (the IR must do the same).
EXTRA_PROBES = ("a <pad> in the </s> text <s>",)


def facts(ckpt: Path, precision: str) -> dict:
    return dict(cache.key_facts(ckpt, "text", "openvino", version(), precision), layout=LAYOUT)


class OvTextTower:
    """Texts -> (n, d) CLAP text embeddings (not normalised), same numbers as transformers."""

    def __init__(self, folder: Path, precision: str, meta: dict | None = None):
        from tokenizers import Tokenizer

        self.path = Path(folder)
        self.meta = meta or {}
        self.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self.table = np.load(self.path / "embeddings.npy", mmap_mode="r")
        config = {"INFERENCE_PRECISION_HINT": hint(precision), "PERFORMANCE_HINT": "LATENCY",
                  "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}
        if (self.path / COMPILED).is_dir():
            config["CACHE_DIR"] = str(self.path / COMPILED)
            if weightless_cache():
                config["CACHE_MODE"] = "OPTIMIZE_SIZE"
        self.compiled = core().compile_model(str(self.path / "model.xml"), "CPU", config)
        self.precision = compiled_precision(self.compiled)
        self.dim = int(self.compiled.output(0).get_partial_shape()[1].get_length())
        self._request = None
        self._primed: dict[str, np.ndarray] = {}

    def prime(self, texts: list[str]) -> None:
        """Embed `texts` now and keep their vectors for the next `embed` that asks for them
        (indexer.runtime.prefetch: a cold query's text, embedded while the catalog opens).
        The vectors are the ones `embed` computes: one request per text, whatever the call."""
        for text, vec in zip(texts, self.embed(texts)):
            self._primed[text] = vec

    def tokenize(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        e = self.tokenizer.encode(text)
        return np.asarray([e.ids], np.int64), np.asarray([e.attention_mask], np.int64)

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._request is None:
            self._request = self.compiled.create_infer_request()
        out = np.empty((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            primed = self._primed.pop(text, None)
            if primed is not None:
                out[i] = primed
                continue
            ids, mask = self.tokenize(text)
            out[i] = self._request.infer({0: ids, 1: mask, 2: np.asarray(self.table[ids])})[0][0]
        return out


def weightless_cache() -> bool:
    """Whether this OpenVINO's CPU plugin can cache a compiled model without its weights
    (CACHE_MODE=OPTIMIZE_SIZE; the plugin lists ENABLE_WEIGHTLESS); an older one keeps full blobs."""
    try:
        return "ENABLE_WEIGHTLESS" in core().get_property("CPU", "SUPPORTED_PROPERTIES")
    except RuntimeError:
        return False


def _wrap(model):
    """ClapTextModelWithProjection's forward fed the word embeddings of the ids: the ids
    still give the position ids, by transformers' own function."""
    import torch

    embeddings = model.text_model.embeddings

    class Text(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, inputs_embeds):
            position_ids = embeddings.create_position_ids_from_input_ids(input_ids, embeddings.padding_idx)
            out = self.m.text_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                    position_ids=position_ids)
            return self.m.text_projection(out.pooler_output)

    return Text(model).eval()


def export(ckpt: Path, precision: str, load_fp32: Callable, hf_tokenizer) -> tuple[Path, dict]:
    """Convert the fp32 text tower of `ckpt`, check it on the probe texts, write the cache entry.
    Raises RuntimeError (nothing written) when it does not agree with transformers."""
    import warnings

    import openvino as ov
    import torch

    from ..textcache import PROBE_TEXTS, fast_tokenizer

    key = facts(ckpt, precision)
    tok = fast_tokenizer(hf_tokenizer)
    if tok is None:
        raise RuntimeError("this checkpoint's tokenizer has no fast (tokenizers) form")
    model = load_fp32()
    texts = list(PROBE_TEXTS) + list(EXTRA_PROBES)
    with torch.inference_mode():
        ref = np.concatenate([model(**hf_tokenizer([t], truncation=True, return_tensors="pt")).text_embeds.float().numpy()
                              for t in texts])
    table = model.text_model.embeddings.word_embeddings.weight.detach().float().numpy()
    example = hf_tokenizer(["metal scraping in stone room"], return_tensors="pt")
    embeds = torch.from_numpy(table[example["input_ids"].numpy()])
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        ir = convert_model(_wrap(model), example_input=(example["input_ids"], example["attention_mask"], embeds),
                           input=[ov.PartialShape([-1, -1]), ov.PartialShape([-1, -1]),
                                  ov.PartialShape([-1, -1, table.shape[1]])])

    def fill(tmp: Path) -> dict:
        ov.save_model(ir, str(tmp / "model.xml"), compress_to_fp16=False)
        np.save(tmp / "embeddings.npy", table)
        tok.save(str(tmp / "tokenizer.json"))
        tower = OvTextTower(tmp, precision)
        same = all(tower.tokenize(t)[0][0].tolist() == hf_tokenizer([t], truncation=True)["input_ids"][0]
                   for t in texts)
        got = tower.embed(texts)
        cos = min_cosine(got, ref)
        verified = {"ok": bool(same and cos >= cache.VERIFY_COSINE), "tokens_equal": same, "min_cosine": cos,
                    "texts": len(texts), "reference": "transformers fp32"}
        if not verified["ok"]:
            raise RuntimeError(f"the OpenVINO text export differs from transformers fp32 ({verified})")
        return {"verified": verified, "precision": tower.precision, "dim": tower.dim}

    try:
        return cache.write_entry(key, fill)
    except RuntimeError as exc:
        cache.record_failure(key, str(exc))
        raise


def precisions(precision: str) -> tuple[str, ...]:
    """The precisions to try, in order, for a text tower asked for at `precision`: bf16 falls
    back to fp32 when its export fails the check (towers.text_tower)."""
    return ("bf16", "fp32") if precision == "bf16" else (precision,)


def usable_precision(ckpt: Path, precision: str) -> str:
    """The precision whose export a query should load: `precision`, or fp32 where the bf16
    export of this checkpoint failed its check here."""
    for prec in precisions(precision):
        if not cache.failed_before(facts(ckpt, prec)):
            return prec
    return precision


def load(ckpt: Path, precision: str, use_prefetch: bool = True) -> OvTextTower | None:
    """The verified export of this checkpoint's text tower at `precision`, compiled (the one a
    prefetch thread loaded when there is one: indexer.runtime.prefetch); None when not made yet."""
    if use_prefetch:
        from .prefetch import take_text_tower

        tower = take_text_tower(ckpt, precision)
        if tower is not None:
            return tower
    found = cache.read_entry(facts(ckpt, precision))
    if found is None:
        return None
    dest, meta = found
    try:  # OpenVINO's own cache of the compiled model: made by the first load, read by the next
        (dest / COMPILED).mkdir(exist_ok=True)
    except OSError:
        pass
    if (dest / OLD_COMPILED).is_dir():  # a full blob of an earlier version: a copy of the weights
        shutil.rmtree(dest / OLD_COMPILED, ignore_errors=True)
    return OvTextTower(dest, precision, meta)

"""The query-time text tower: CLAP's text model exported once from transformers, run in plain torch.

`sfx-search "..."` spends most of a cold start importing transformers' modeling stack (torch
distributed, dynamo, sympy, the hub...) and building the model in `from_pretrained`, not in
the forward. So the first time a checkpoint's text tower is loaded through `from_pretrained`,
its state dict and its tokenizer are exported into a cache folder:

    <cache>/text-towers/<key>/weights.safetensors   the tensors the text path reads, in the
                                                    encoder's precision (q, k, v fused)
                                      tokenizer.json  the fast tokenizer with the truncation
                                                    and padding AutoTokenizer applies
                                      meta.json       architecture numbers, the key's facts,
                                                    the verification figures

and later processes compute the same vectors with `import torch`, a memory-mapped
safetensors file and `tokenizers.Tokenizer` only (no transformers import). The exporting
process switches to the export too, so every process gives a text the same vector. The export is
kept only when, on probe texts, the tokenizer gives AutoTokenizer's ids and the tower gives
the transformers model's vectors (cosine >= VERIFY_COSINE); otherwise nothing is written and
the encoder stays on transformers.

The key covers this module's format, the torch version, the precision, the checkpoint path,
the contents of its config and tokenizer files, and the size and mtime of its weight files:
a changed checkpoint gets a new entry. Old entries are pruned (those of checkpoints that are
gone, and all but the MAX_ENTRIES most recently used).

The cache lives in $SFX_CACHE_DIR, else the platform cache dir (~/.cache/sfx-index).
SFX_TEXT_CACHE=0 turns it off (the encoder then always uses transformers).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from .runtime.cache import prune

log = logging.getLogger(__name__)

FORMAT = 1
MAX_ENTRIES = 4
VERIFY_COSINE = {"fp32": 0.99999, "bf16": 0.999}
ENV_CACHE_DIR = "SFX_CACHE_DIR"
ENV_ENABLE = "SFX_TEXT_CACHE"
_ACTS = ("gelu", "relu", "gelu_new", "gelu_pytorch_tanh", "silu", "swish", "tanh")
_CKPT_SMALL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                     "vocab.json", "merges.txt", "added_tokens.json")
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")
PROBE_TEXTS = [
    "metal scraping in stone room",
    "a",
    "",
    "Dog barking, far away — rain on a tin roof at night (café ambience) 123",
    "footsteps on gravel " * 200,  # longer than any model's maximum: truncation must agree
]


def enabled() -> bool:
    return os.environ.get(ENV_ENABLE, "1").strip().lower() not in ("0", "off", "no", "false")


def cache_root() -> Path:
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser() / "text-towers"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sfx-index", appauthor=False)) / "text-towers"


def _key_facts(ckpt: Path, precision: str) -> dict:
    import torch

    facts: dict = {"format": FORMAT, "torch": torch.__version__.split("+")[0], "precision": precision,
                   "checkpoint": str(ckpt.resolve()), "files": {}}
    for name in _CKPT_SMALL_FILES:
        p = ckpt / name
        if p.is_file():
            facts["files"][name] = hashlib.sha256(p.read_bytes()).hexdigest()
    for name in sorted(os.listdir(ckpt)):
        if name in _WEIGHT_FILES or name.endswith((".safetensors", ".bin")):
            st = (ckpt / name).stat()
            facts["files"][name] = [st.st_size, st.st_mtime_ns]
    return facts


def cache_dir_for(ckpt: Path, precision: str) -> tuple[Path, dict]:
    facts = _key_facts(ckpt, precision)
    key = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:24]
    return cache_root() / key, facts


# ------------------------------------------------------------------ the tower

class TextTower:
    """Texts -> CLAP text embeddings (not normalised), same numbers as ClapTextModelWithProjection."""

    def __init__(self, weights: dict, arch: dict, tokenizer, path: Path | None = None):
        import torch

        self.w = weights
        self.arch = arch
        self.tokenizer = tokenizer
        self.path = path
        self.dtype = next(iter(weights.values())).dtype if weights else torch.float32
        self.layers = [
            {n: weights[f"layers.{i}.{n}"] for n in ("qkv.weight", "qkv.bias", "attn_out.weight", "attn_out.bias",
                                                     "ln1.weight", "ln1.bias", "ffn_in.weight", "ffn_in.bias",
                                                     "ffn_out.weight", "ffn_out.bias", "ln2.weight", "ln2.bias")}
            for i in range(arch["num_hidden_layers"])
        ]

    def tokenize(self, texts: list[str]):
        """(input_ids, attention_mask) int64 tensors, padded to the longest, truncated at the maximum."""
        import torch

        enc = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long)
        return ids, mask

    def __call__(self, input_ids, attention_mask=None):
        import torch
        import torch.nn.functional as F

        a, w = self.arch, self.w
        hidden, heads, eps = a["hidden_size"], a["num_attention_heads"], a["layer_norm_eps"]
        act, proj_act = _act(a["hidden_act"]), _act(a["projection_hidden_act"])
        pad = a["pad_token_id"]
        b, n = input_ids.shape
        # Position ids as RoBERTa makes them: padding keeps the padding index, others count from it.
        m = input_ids.ne(pad).int()
        pos = (torch.cumsum(m, dim=1).type_as(m) * m).long() + pad
        x = F.embedding(input_ids, w["word_embeddings"]) + w["token_type_embedding"]
        x = x + F.embedding(pos, w["position_embeddings"])
        x = F.layer_norm(x, (hidden,), w["emb_ln.weight"], w["emb_ln.bias"], eps)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask.bool()[:, None, None, :]
        hd = hidden // heads
        for L in self.layers:
            qkv = F.linear(x, L["qkv.weight"], L["qkv.bias"]).view(b, n, 3, heads, hd)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=hd ** -0.5)
            o = o.transpose(1, 2).reshape(b, n, hidden)
            x = F.layer_norm(F.linear(o, L["attn_out.weight"], L["attn_out.bias"]) + x, (hidden,),
                             L["ln1.weight"], L["ln1.bias"], eps)
            h = act(F.linear(x, L["ffn_in.weight"], L["ffn_in.bias"]))
            x = F.layer_norm(F.linear(h, L["ffn_out.weight"], L["ffn_out.bias"]) + x, (hidden,),
                             L["ln2.weight"], L["ln2.bias"], eps)
        pooled = torch.tanh(F.linear(x[:, 0], w["pooler.weight"], w["pooler.bias"]))
        h = proj_act(F.linear(pooled, w["proj1.weight"], w["proj1.bias"]))
        return F.linear(h, w["proj2.weight"], w["proj2.bias"])

    def embed(self, texts: list[str]):
        """Texts -> (n, projection_dim) embeddings in the tower's dtype."""
        import torch

        ids, mask = self.tokenize(texts)
        with torch.inference_mode():
            return self(ids, mask)


def _act(name: str):
    import torch
    import torch.nn.functional as F

    return {
        "gelu": F.gelu, "relu": F.relu, "silu": F.silu, "swish": F.silu, "tanh": torch.tanh,
        "gelu_new": lambda t: F.gelu(t, approximate="tanh"),
        "gelu_pytorch_tanh": lambda t: F.gelu(t, approximate="tanh"),
    }[name]


# ------------------------------------------------------------------ export and load

def _arch(config) -> dict | None:
    """The numbers the tower needs, or None when the config is outside what it implements."""
    get = lambda k, d=None: getattr(config, k, d)  # noqa: E731
    if get("model_type") != "clap_text_model" or get("is_decoder", False) or get("add_cross_attention", False):
        return None
    if get("position_embedding_type", "absolute") != "absolute":
        return None
    if get("hidden_act") not in _ACTS or get("projection_hidden_act") not in _ACTS:
        return None
    if get("hidden_size") % get("num_attention_heads"):
        return None
    return {k: get(k) for k in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
                                "layer_norm_eps", "hidden_act", "projection_hidden_act", "pad_token_id",
                                "max_position_embeddings", "projection_dim")}


def _tensors(sd: dict, n_layers: int, dtype) -> dict:
    import torch

    p = "text_model."
    out = {
        "word_embeddings": sd[p + "embeddings.word_embeddings.weight"],
        "position_embeddings": sd[p + "embeddings.position_embeddings.weight"],
        "token_type_embedding": sd[p + "embeddings.token_type_embeddings.weight"][0],
        "emb_ln.weight": sd[p + "embeddings.LayerNorm.weight"], "emb_ln.bias": sd[p + "embeddings.LayerNorm.bias"],
        "pooler.weight": sd[p + "pooler.dense.weight"], "pooler.bias": sd[p + "pooler.dense.bias"],
        "proj1.weight": sd["text_projection.linear1.weight"], "proj1.bias": sd["text_projection.linear1.bias"],
        "proj2.weight": sd["text_projection.linear2.weight"], "proj2.bias": sd["text_projection.linear2.bias"],
    }
    for i in range(n_layers):
        L = f"{p}encoder.layer.{i}."
        s = L + "attention.self."
        out[f"layers.{i}.qkv.weight"] = torch.cat([sd[s + "query.weight"], sd[s + "key.weight"], sd[s + "value.weight"]])
        out[f"layers.{i}.qkv.bias"] = torch.cat([sd[s + "query.bias"], sd[s + "key.bias"], sd[s + "value.bias"]])
        for ours, theirs in (("attn_out", "attention.output.dense"), ("ln1", "attention.output.LayerNorm"),
                             ("ffn_in", "intermediate.dense"), ("ffn_out", "output.dense"),
                             ("ln2", "output.LayerNorm")):
            out[f"layers.{i}.{ours}.weight"] = sd[L + theirs + ".weight"]
            out[f"layers.{i}.{ours}.bias"] = sd[L + theirs + ".bias"]
    return {k: v.detach().to(dtype).contiguous().clone() for k, v in out.items()}


def fast_tokenizer(hf_tokenizer):
    """A `tokenizers.Tokenizer` that pads and truncates as `hf_tokenizer(texts, padding=True, truncation=True)`."""
    from tokenizers import Tokenizer

    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    tok = Tokenizer.from_str(backend.to_str())
    tok.no_truncation()
    tok.no_padding()
    max_len = getattr(hf_tokenizer, "model_max_length", None)
    if max_len and max_len < 1_000_000:
        tok.enable_truncation(max_length=int(max_len), direction=getattr(hf_tokenizer, "truncation_side", "right"))
    tok.enable_padding(direction=getattr(hf_tokenizer, "padding_side", "right"),
                       pad_id=int(hf_tokenizer.pad_token_id), pad_token=str(hf_tokenizer.pad_token))
    return tok


def export(hf_model, hf_tokenizer, ckpt: Path, precision: str) -> Path | None:
    """Write the cache entry for a loaded transformers text tower; None when it cannot be made faithful."""
    import torch

    if not enabled():
        return None
    try:
        arch = _arch(hf_model.config)
        tok = fast_tokenizer(hf_tokenizer)
        if arch is None or tok is None:
            log.debug("text cache: this text model or tokenizer is not supported; staying on transformers")
            return None
        dest, facts = cache_dir_for(ckpt, precision)
        if (dest / "meta.json").is_file():
            return dest
        dtype = next(hf_model.parameters()).dtype
        tensors = _tensors(hf_model.state_dict(), arch["num_hidden_layers"], dtype)
        tower = TextTower(tensors, arch, tok)
        check = verify(tower, hf_model, hf_tokenizer)
        if check["tokens_equal"] is not True or check["min_cosine"] < VERIFY_COSINE[precision]:
            log.warning("text cache: the exported text tower differs from transformers (%s); not used", check)
            return None
        from safetensors.torch import save_file

        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".tmp-"))
        try:
            save_file(tensors, str(tmp / "weights.safetensors"))
            tok.save(str(tmp / "tokenizer.json"))
            meta = dict(arch=arch, key=facts, verified=check, dtype=str(dtype).replace("torch.", ""),
                        created_at=time.time())
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            os.replace(tmp, dest)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (dest / "meta.json").is_file():  # another process may have won the race
                raise
        prune(dest, MAX_ENTRIES)
        return dest
    except (OSError, KeyError, ValueError, RuntimeError, torch.OutOfMemoryError) as exc:
        log.debug("text cache: not written (%s: %s)", type(exc).__name__, exc)
        return None


def verify(tower: TextTower, hf_model, hf_tokenizer, texts=None) -> dict:
    """Compare tokenization and vectors of `tower` with the transformers tokenizer and model."""
    import torch

    texts = list(texts or PROBE_TEXTS)
    ref = hf_tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    ids, mask = tower.tokenize(texts)
    same = bool(torch.equal(ids, ref["input_ids"]) and torch.equal(mask, ref["attention_mask"]))
    with torch.inference_mode():
        a = hf_model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]).text_embeds.float()
        b = tower(ref["input_ids"], ref["attention_mask"]).float()
        single = torch.cat([tower(*tower.tokenize([t])).float() for t in texts[:2]])
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    cos_single = torch.nn.functional.cosine_similarity(a[:2], single, dim=-1)
    return {"tokens_equal": same, "min_cosine": float(torch.cat([cos, cos_single]).min()),
            "max_tokens": int(ids.shape[1]), "texts": len(texts)}


def load(ckpt: Path, precision: str, device: str = "cpu") -> TextTower | None:
    """The cached tower of this checkpoint and precision, or None (not made yet, disabled, other device)."""
    if device != "cpu" or not enabled():
        return None
    try:
        dest, facts = cache_dir_for(ckpt, precision)
        meta = json.loads((dest / "meta.json").read_text())
        if meta.get("key") != facts:
            return None
        from tokenizers import Tokenizer

        weights = _mmap_safetensors(dest / "weights.safetensors")
        tok = Tokenizer.from_file(str(dest / "tokenizer.json"))
        try:
            os.utime(dest / "meta.json")  # most recently used, for pruning
        except OSError:
            pass
        return TextTower(weights, meta["arch"], tok, dest)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:
        log.debug("text cache: unusable entry (%s: %s)", type(exc).__name__, exc)
        return None


_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "I64": "int64"}


def _mmap_safetensors(path: Path) -> dict:
    """The tensors of a safetensors file as views of a private memory map (nothing read up front)."""
    import mmap
    import struct

    import torch

    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = getattr(torch, _DTYPES[info["dtype"]])
        start, end = info["data_offsets"]
        count = (end - start) // dtype.itemsize
        t = torch.frombuffer(mm, dtype=dtype, count=count, offset=base + start) if count else torch.empty(0, dtype=dtype)
        out[name] = t.view(info["shape"])
    return out

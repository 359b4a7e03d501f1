"""CLAP checkpoints in the Hugging Face cache: download once online, list, remove, use offline.

A checkpoint is fetched with `huggingface_hub.snapshot_download` into the standard cache
(`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`), where
`from_pretrained` and every other Hugging Face tool find it again. The cache location is
read from the environment at each call, not at import, so that HF_HOME set by a caller
(or a test) is honoured.

Only the files a CLAP checkpoint needs are fetched: configs, tokenizer files and one copy of
the weights, safetensors when the repository has them, else `pytorch_model.bin` (the
`laion/larger_clap_*` repositories have only the latter).

Families, read from a checkpoint's config.json: `fused` (HTSAT-tiny with the fusion branch,
laion/clap-htsat-fused), `unfused` (HTSAT-tiny without it, laion/clap-htsat-unfused) and
`larger` (HTSAT-base, laion/larger_clap_*: its third Swin stage is 6 times as deep as the
first, against 3 times in HTSAT-tiny).
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .config import UserError

# The checkpoints transformers' ClapModel loads, with what they are for (README, docs/models.md).
KNOWN = {
    "laion/clap-htsat-fused": "fused",
    "laion/clap-htsat-unfused": "unfused",
    "laion/larger_clap_general": "larger",
    "laion/larger_clap_music": "larger",
    "laion/larger_clap_music_and_speech": "larger",
}
_OFFLINE_STEPS = ("on a machine with network run `sfx-index model pull {id}`, copy the folder it prints "
                  "to this machine and pass it as --model DIR (or SFX_MODEL)")


class ModelCacheError(UserError):
    """A checkpoint cannot be fetched, found or removed (one line, says what to do)."""


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache as the environment says now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def endpoint() -> str | None:
    """HF_ENDPOINT (a mirror) as the environment says now; None for huggingface.co."""
    return os.environ.get("HF_ENDPOINT") or None


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def download_patterns(files: list[str]) -> list[str]:
    """allow_patterns for a repository holding `files`: configs, tokenizer, one copy of the weights."""
    patterns = ["*.json", "*.txt"]
    if any(f.endswith(".safetensors") for f in files):
        patterns.append("*.safetensors")
    else:
        patterns += ["pytorch_model.bin", "pytorch_model-*.bin"]
    return patterns


def family(config: dict) -> str:
    """fused, unfused or larger, from a CLAP config.json dict."""
    audio = config.get("audio_config") or {}
    if audio.get("enable_fusion"):
        return "fused"
    depths = list(audio.get("depths") or [2, 2, 6, 2])
    return "larger" if len(depths) >= 3 and depths[2] >= 4 * max(depths[0], 1) else "unfused"


def human_size(n: int | float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


# ---------------------------------------------------------------------------- pull

def pull(model_id: str, *, progress: bool = True, echo=None) -> Path:
    """Download `model_id` into the cache (size said first) and return its snapshot folder."""
    say = echo or (lambda msg: print(msg, file=sys.stderr))
    if Path(model_id).expanduser().is_dir():
        raise ModelCacheError(f"'{model_id}' is a local folder already; use it as --model {model_id}")
    if offline():
        raise ModelCacheError(f"HF_HUB_OFFLINE is set, so '{model_id}' cannot be downloaded; unset it, or "
                              + _OFFLINE_STEPS.format(id=model_id))
    from huggingface_hub import HfApi, snapshot_download

    try:
        info = HfApi(endpoint=endpoint()).model_info(model_id, files_metadata=True)
    except Exception as exc:
        raise ModelCacheError(_hub_failure(model_id, exc)) from None
    sizes = {s.rfilename: (s.size or 0) for s in info.siblings or []}
    patterns = download_patterns(list(sizes))
    chosen = [f for f in sizes if any(fnmatch.fnmatch(f, p) for p in patterns)]
    if "config.json" not in sizes:
        raise ModelCacheError(f"'{model_id}' has no config.json; it is not a transformers checkpoint")
    say(f"{model_id}: {len(chosen)} files, {human_size(sum(sizes[f] for f in chosen))} "
        f"into {hub_cache_dir()}")
    if not progress:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    try:
        snap = Path(snapshot_download(model_id, allow_patterns=patterns, cache_dir=hub_cache_dir(), endpoint=endpoint()))
    except Exception as exc:
        raise ModelCacheError(_hub_failure(model_id, exc)) from None
    config = _config(snap)
    if config.get("model_type") != "clap":
        raise ModelCacheError(f"'{model_id}' is a '{config.get('model_type')}' checkpoint, not CLAP; "
                              f"remove it with `sfx-index model remove {model_id}`")
    return snap


def _hub_failure(model_id: str, exc: Exception) -> str:
    kind = type(exc).__name__
    if "RepositoryNotFound" in kind or "RevisionNotFound" in kind:
        return f"no model '{model_id}' on the Hugging Face Hub (or it is private); check the id, e.g. laion/clap-htsat-unfused"
    if "GatedRepo" in kind:
        return f"'{model_id}' is gated; accept its terms on huggingface.co and log in with `hf auth login`"
    return (f"cannot download '{model_id}' from the Hugging Face Hub ({kind}); check the network, or "
            + _OFFLINE_STEPS.format(id=model_id))


# ---------------------------------------------------------------------------- list

@dataclass
class CachedModel:
    model_id: str
    family: str
    size: int
    path: Path  # the newest snapshot folder: what to copy to an offline machine
    revisions: int
    indexes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"model_id": self.model_id, "family": self.family, "size": self.size, "path": str(self.path),
                "revisions": self.revisions, "indexes": self.indexes}


def _config(snapshot: Path) -> dict:
    try:
        return json.loads((snapshot / "config.json").read_text())
    except (OSError, ValueError):
        return {}


def _scan():
    from huggingface_hub import scan_cache_dir

    cache = hub_cache_dir()
    if not cache.is_dir():
        return None
    try:
        return scan_cache_dir(cache)
    except Exception as exc:
        raise ModelCacheError(f"cannot read the Hugging Face cache {cache} ({type(exc).__name__})") from None


def cached_models(index_dirs=()) -> list[CachedModel]:
    """The CLAP checkpoints in the cache, each with the indexes (of `index_dirs`) built with it."""
    info = _scan()
    if info is None:
        return []
    users = index_models(index_dirs)
    out = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        newest = max(repo.revisions, key=lambda r: r.last_modified)
        config = _config(Path(newest.snapshot_path))
        if config.get("model_type") != "clap":
            continue
        snaps = [str(Path(r.snapshot_path)) for r in repo.revisions]
        used = [ix for ix, mid in users.items() if mid == repo.repo_id or any(mid.startswith(s) for s in snaps)]
        out.append(CachedModel(repo.repo_id, family(config), repo.size_on_disk, Path(newest.snapshot_path),
                               len(repo.revisions), used))
    return out


def index_models(index_dirs) -> dict[str, str]:
    """{index folder: model id recorded by its catalog} for the SQLite indexes among `index_dirs`."""
    from .catalog import Catalog

    out = {}
    for d in dict.fromkeys(Path(p).expanduser().resolve() for p in index_dirs):
        db = d / "catalog.sqlite"
        if not db.is_file():
            continue
        try:
            cat = Catalog.open(f"sqlite:///{db}", create=False)
        except Exception:  # an unreadable or newer catalog says nothing about the cache
            continue
        try:
            rec = cat.get_model()
        finally:
            cat.close()
        if rec is not None:
            out[str(d)] = rec.model_id
    return out


# ---------------------------------------------------------------------------- remove

def find_cached(model_id: str):
    info = _scan()
    repo = next((r for r in (info.repos if info else ()) if r.repo_id == model_id and r.repo_type == "model"), None)
    if repo is None:
        raise ModelCacheError(f"'{model_id}' is not in the Hugging Face cache {hub_cache_dir()}; "
                              "`sfx-index model list` shows what is")
    return info, repo


def remove(model_id: str) -> int:
    """Delete every cached revision of `model_id`; return the bytes freed."""
    info, repo = find_cached(model_id)
    strategy = info.delete_revisions(*[r.commit_hash for r in repo.revisions])
    strategy.execute()
    return strategy.expected_freed_size

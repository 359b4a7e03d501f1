"""Where runtime exports of a checkpoint live, how they are keyed, written and trusted.

An export (an OpenVINO IR of the audio or the text tower) is made once per checkpoint and
kept in

    <cache>/exports/<key>/model.xml, model.bin   the IR (float32 weights, as in the checkpoint)
                          tokenizer.json          the text tower's fast tokenizer (text only)
                          meta.json               the key's facts, the probe's verification
                                                  figures and its timing against torch

<cache> is $SFX_CACHE_DIR, else the platform cache dir (~/.cache/sfx-index). The key covers
this format, the tower, the runtime's version, the precision, the checkpoint's path, the
contents of its config, preprocessor and tokenizer files (the config hash the catalog records
is computed from the first two) and the size and mtime of its weight files: a changed
checkpoint gets a new entry. An entry is written to a temporary folder and renamed into place,
and only after the export agreed with the torch fp32 path on a probe batch (cosine >=
VERIFY_COSINE); an entry that failed is never written, so its absence means "use torch".
Computing the key imports nothing heavy (a cold query reads it).
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
from typing import Callable

log = logging.getLogger(__name__)

FORMAT = 1
MAX_ENTRIES = 6
VERIFY_COSINE = 0.9999
ENV_CACHE_DIR = "SFX_CACHE_DIR"
_SMALL_FILES = ("config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".index.json")


def cache_root() -> Path:
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser() / "exports"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sfx-index", appauthor=False)) / "exports"


def key_facts(ckpt: Path, tower: str, runtime: str, runtime_version: str, precision: str) -> dict:
    facts: dict = {"format": FORMAT, "tower": tower, "runtime": runtime, "version": runtime_version,
                   "precision": precision, "checkpoint": str(Path(ckpt).resolve()), "files": {}}
    for name in _SMALL_FILES:
        p = Path(ckpt) / name
        if p.is_file():
            facts["files"][name] = hashlib.sha256(p.read_bytes()).hexdigest()
    for name in sorted(os.listdir(ckpt)):
        if name.endswith(_WEIGHT_SUFFIXES) and name not in _SMALL_FILES:
            st = (Path(ckpt) / name).stat()
            facts["files"][name] = [st.st_size, st.st_mtime_ns]
    return facts


def entry_dir(facts: dict) -> Path:
    key = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:24]
    return cache_root() / f"{facts['tower']}-{key}"


def read_entry(facts: dict) -> tuple[Path, dict] | None:
    """(folder, meta) of the verified entry for these facts, or None."""
    dest = entry_dir(facts)
    try:
        meta = json.loads((dest / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("key") != facts or not meta.get("verified", {}).get("ok"):
        return None
    try:
        os.utime(dest / "meta.json")  # most recently used, for pruning
    except OSError:
        pass
    return dest, meta


def write_entry(facts: dict, fill: Callable[[Path], dict]) -> tuple[Path, dict]:
    """Make the entry: `fill(tmp_folder)` writes the files and returns the meta to record (it
    raises to abandon the entry). Atomic: readers see the whole entry or none."""
    dest = entry_dir(facts)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".tmp-"))
    try:
        meta = fill(tmp)
        meta = dict(meta, key=facts, created_at=time.time())
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.replace(tmp, dest)
        except OSError:
            if not (dest / "meta.json").is_file():  # another process may have won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prune(keep=dest)
    return dest, json.loads((dest / "meta.json").read_text())


def record_failure(facts: dict, reason: str) -> None:
    """Remember (beside the cache, not as an entry) that this export failed, with why, so that
    the next process does not pay for a failing export again."""
    dest = entry_dir(facts)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        (dest.parent / f"{dest.name}.failed").write_text(json.dumps({"key": facts, "reason": reason}))
    except OSError:
        pass


def failed_before(facts: dict) -> str | None:
    dest = entry_dir(facts)
    try:
        info = json.loads((dest.parent / f"{dest.name}.failed").read_text())
    except (OSError, ValueError):
        return None
    return info.get("reason") if info.get("key") == facts else None


def prune(keep: Path, max_entries: int = MAX_ENTRIES) -> None:
    """Drop entries of checkpoints that are gone, stale temporary folders, and all but the
    `max_entries` most recently used (any cache of per-checkpoint folders with a meta.json
    whose key names the checkpoint: the exports here, the text towers of indexer.textcache)."""
    root = keep.parent
    entries = []
    for d in root.iterdir():
        if d == keep or not d.is_dir():
            continue
        if d.name.startswith(".tmp-"):
            if time.time() - d.stat().st_mtime > 3600:
                shutil.rmtree(d, ignore_errors=True)
            continue
        try:
            meta = json.loads((d / "meta.json").read_text())
            gone = not Path(meta["key"]["checkpoint"]).is_dir()
            entries.append((0 if gone else (d / "meta.json").stat().st_mtime, d))
        except (OSError, ValueError, KeyError):
            entries.append((0, d))
    entries.sort(reverse=True)
    for i, (mtime, d) in enumerate(entries):
        if mtime == 0 or i >= max_entries - 1:
            shutil.rmtree(d, ignore_errors=True)

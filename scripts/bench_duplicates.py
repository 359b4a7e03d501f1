#!/usr/bin/env python3
"""The near-duplicates pass at library scale, next to one semantic search over the same index.

    python scripts/bench_duplicates.py [--files 100000] [--families 2000] [--copies 4] [--queries 5]

Builds (and caches under ~/.cache/sfx-index-bench/dups-N) a synthetic catalog of N files:
one 512-d chunk vector each (a mixture of clustered unit vectors, as bench_search makes), and
a fingerprint each. The fingerprints are synthetic but shaped like real ones: a length drawn
from a log-normal around 3 s (47 frames a second, at most 4096), spectrum shapes from 3000
clusters of similar sounds, random sub-band bits, level envelopes; `--families` originals
get `--copies` copies each (the bits with 3 % flipped, a gain, some trimmed at the head).

Then, in one run, interleaved:
  (a) the duplicates pass as `sfx-search duplicates` runs it (read the fingerprints from the
      catalog, candidates, confirmation, groups), and how many families it found whole;
  (b) `Library.search` (semantic) with the full-size random CLAP checkpoint, a text new to
      the catalog each time (text tower included; the model load is done before timing).
Wall and CPU time of both, and the load average, are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import indexer  # noqa: E402,F401  (the product's thread settings before numpy loads)
import numpy as np  # noqa: E402

BENCH = Path.home() / ".cache" / "sfx-index-bench"
CKPT = BENCH / "clap-full-fused"
DIM = 512
DATA_VERSION = 1
WORDS = "metal scraping stone door slam wood creak glass rain roof thunder wind engine hum".split()


def checkpoint() -> Path:
    if not (CKPT / "model.safetensors").is_file():
        print(f"writing the full-size random checkpoint to {CKPT} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_random_clap.py"), str(CKPT)], check=True)
    return CKPT


def synthetic_fingerprint(rng, frames: int, shape: np.ndarray):
    from indexer.fingerprint import Fingerprint

    bits = rng.integers(0, 2 ** 32, frames, dtype=np.uint32)
    strong = bits & rng.integers(0, 2 ** 32, frames, dtype=np.uint32) | rng.integers(0, 2 ** 32, frames, dtype=np.uint32)
    env = np.cumsum(rng.normal(0, 1.5, frames)) - 25
    cdb = (np.clip(env, -65, -3) * 100).astype(np.int16)
    return Fingerprint(bits, strong, cdb, shape.astype(np.float32), frames * 1024 / 48000)


def copy_of(rng, fp, trim: int, gain_db: float):
    from indexer.fingerprint import Fingerprint

    flips = np.zeros(len(fp.bits), np.uint32)
    for _ in range(1):  # ~3 % of the bits of each frame
        flips |= np.uint32(1) << rng.integers(0, 32, len(fp.bits)).astype(np.uint32)
    keep = slice(trim, None)
    return Fingerprint((fp.bits ^ flips)[keep], fp.strong[keep], (fp.energy_cdb[keep] + int(gain_db * 100)).astype(np.int16),
                       fp.shape + rng.normal(0, 0.02, len(fp.shape)).astype(np.float32),
                       fp.duration_s - trim * 1024 / 48000)


def make_index(index_dir: Path, n: int, families: int, copies: int, seed: int = 0) -> dict:
    from indexer.catalog import Catalog, ModelRecord
    from indexer.catalog import tables as T
    from indexer.catalog.keywords import insert_keyword_rows, keyword_columns
    from indexer.clap import load_frontend
    from indexer.config import Settings
    from indexer.index import Index

    from indexer.fingerprint import VERSION

    # A new fingerprint version reads the cached ones as absent: build anew then.
    tag = json.dumps(dict(v=DATA_VERSION, fp=VERSION, n=n, families=families, copies=copies, seed=seed))
    db = index_dir / "catalog.sqlite"
    if db.exists():
        try:
            cat = Catalog.open(f"sqlite:///{db}", create=False)
        except Exception as e:  # a catalog cached by an older schema: build it anew
            print(f"  cached catalog unusable ({type(e).__name__}): rebuilding", file=sys.stderr)
            cat = None
        if cat is not None:
            ok = cat.get_meta("bench_dups") == tag and (index_dir / "vectors.faiss").exists()
            truth = json.loads(cat.get_meta("bench_dups_truth") or "[]")
            cat.close()
            if ok:
                return {"families": truth}
        shutil.rmtree(index_dir)
    index_dir.mkdir(parents=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    _fe, fpr = load_frontend(str(checkpoint()))
    cat = Catalog.open(f"sqlite:///{db}", create=True)
    cat.ensure_model(ModelRecord.from_fingerprint(fpr, DIM))
    root = cat.add_root(f"/bench/dups-{n}")
    centres = rng.standard_normal((3000, DIM)).astype(np.float32)
    shape_centres = rng.normal(0, 0.5, (3000, 33))
    originals = n - families * copies
    truth, fid, rows = [], 0, []
    family_of: dict[int, list[int]] = {}
    for i in range(originals):
        c = int(rng.integers(3000))
        frames = int(np.clip(rng.lognormal(np.log(140), 0.9), 12 if i >= families else 100, 4096))
        fp = synthetic_fingerprint(rng, frames, shape_centres[c] + rng.normal(0, 0.15, 33))
        v = centres[c] + rng.normal(0, 0.05, DIM).astype(np.float32) * np.sqrt(DIM) * 0.05
        rows.append((fp, v / np.linalg.norm(v), "PCM_24"))
        if i < families:
            family_of[len(rows)] = [len(rows)]
    for head in list(family_of):
        fp, v, _ = rows[head - 1]
        for k in range(copies):
            trim = int(rng.integers(5, 30)) if k == copies - 1 else 0
            rows.append((copy_of(rng, fp, trim, float(rng.choice([0.0, -6.0, 3.0]))), v, "VORBIS" if k == 0 else "PCM_16"))
            family_of[head].append(len(rows))
    truth = sorted(sorted(ids) for ids in family_of.values())
    f_tab, c_tab, fp_tab = T["files"], T["chunks"], T["fingerprints"]
    for s in range(0, len(rows), 20000):
        files, chunks, fps, fts = [], [], [], []
        for j, (fp, v, subtype) in enumerate(rows[s:s + 20000], s + 1):
            words = " ".join(rng.choice(WORDS, 3))
            rel = f"{words.replace(' ', '_')}/{j:07d}.wav"
            files.append(dict(id=j, root_id=root.id, rel=rel, size=1000 + j, mtime_ns=j, content_hash=f"{j:064x}",
                              duration_s=fp.duration_s, sample_rate=48000, channels=2, subtype=subtype,
                              container="OGG" if subtype == "VORBIS" else "WAV", status="ok", indexed_at=0.0, measured=1))
            chunks.append(dict(id=j, file_id=j, idx=0, start_s=0.0, end_s=10.0, vector=v.astype(np.float32).tobytes()))
            fps.append(dict(file_id=j, data=fp.to_bytes()))
            fts.append((j, keyword_columns(rel, {"bext.description": words})))
        with cat.transaction() as conn:
            conn.execute(f_tab.insert(), files)
            conn.execute(c_tab.insert(), chunks)
            conn.execute(fp_tab.insert(), fps)
            insert_keyword_rows(conn, cat.dialect, fts)
        print(f"  {s + len(files)} files written ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    cat.set_meta("bench_dups", tag)
    cat.set_meta("bench_dups_truth", json.dumps(truth))
    cat.bump_generation()
    cat.close()
    idx = Index.open(Settings(index_dir=index_dir, model=str(CKPT)))
    try:
        idx.rebuild_vectors(save=True)
    finally:
        idx.close()
    print(f"  index built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return {"families": truth}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--families", type=int, default=2000)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--queries", type=int, default=5)
    ap.add_argument("--reps", type=int, default=2, help="duplicates passes (interleaved with the searches)")
    args = ap.parse_args()
    index_dir = BENCH / f"dups-{args.files}"
    truth = make_index(index_dir, args.files, args.families, args.copies)["families"]

    from indexer.config import Settings
    from search.hygiene import duplicate_groups
    from search.query import Library

    lib = Library.from_settings(Settings(index_dir=index_dir, model=str(CKPT)))
    lib.search("warm up the text tower", n=20, mode="semantic")
    dup_times, dup_cpu, search_times, search_cpu, groups = [], [], [], [], []
    q = 0
    run = time.time_ns()  # the catalog caches text vectors: texts new to it, so the tower runs
    for rep in range(args.reps):
        for _ in range(args.queries):
            q += 1
            t, c = time.perf_counter(), time.process_time()
            lib.search(f"{WORDS[q % len(WORDS)]} {WORDS[(3 * q) % len(WORDS)]} number {run}-{rep}-{q}", n=20, mode="semantic")
            search_times.append(time.perf_counter() - t)
            search_cpu.append(time.process_time() - c)
        t, c = time.perf_counter(), time.process_time()
        groups = duplicate_groups(lib.catalog)
        dup_times.append(time.perf_counter() - t)
        dup_cpu.append(time.process_time() - c)
    lib.close()
    found = sorted(sorted([g.keeper.file_id, *(c.file.file_id for c in g.copies)]) for g in groups)
    whole = len({tuple(f) for f in found} & {tuple(t) for t in truth})
    print(f"files {args.files}, families {len(truth)} x {args.copies + 1} files; load average {os.getloadavg()[0]:.1f}")
    print(f"duplicates pass: {statistics.median(dup_times):.2f} s median of {len(dup_times)} "
          f"({', '.join(f'{t:.2f}' for t in dup_times)}), CPU {statistics.median(dup_cpu):.2f} s; "
          f"groups {len(groups)}, families found whole {whole}/{len(truth)}, groups that are not a family {len(groups) - whole}")
    print(f"semantic search (same index, same run): {1000 * statistics.median(search_times):.1f} ms median of "
          f"{len(search_times)}, CPU {1000 * statistics.median(search_cpu):.1f} ms; "
          f"ratio {statistics.median(dup_times) / statistics.median(search_times):.0f}x wall, "
          f"{statistics.median(dup_cpu) / statistics.median(search_cpu):.0f}x CPU")


if __name__ == "__main__":
    main()

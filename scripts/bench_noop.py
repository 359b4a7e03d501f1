#!/usr/bin/env python3
"""A no-op rerun over a big library of small files, and the files/s of its first run.

Generates N tiny WAV files (default 100 000; 8 kHz mono 16-bit, 25 ms of distinct noise,
about 450 bytes each) in nested folders of a temporary directory, by writing one WAV header
and varied sample bytes (no soundfile call per file). Then:

  1. the first `build()`: every file is new, so each is hashed, decoded, resampled and
     repeat-padded to one 10 s window, turned into log-mel, embedded and written to the
     catalog. The model is the *tiny* random checkpoint (scripts/make_random_clap.py --tiny):
     this measures the catalog + decode path, not the model (bench_build.py measures that);
  2. the rerun, twice: nothing changed, so it only stats files (no hashing, no decoding, no
     model: the bench checks that the model is never loaded). Next to it, the same run's
     references: the bare walk (`scan`) and the catalog's `file_states` query.

The generated files are removed at the end (they are never committed). The load average is
printed with the figures: the machine may be shared.

    python scripts/bench_noop.py [--files 100000] [--first-run-files N] [--batch-size 64]
                                 [--workers W] [--keep DIR]

--first-run-files M < N times the first run on M files only, then writes the catalog rows of
the other files directly (random vectors; said in the output) so that the rerun still stats a
catalog of N files: for a shared machine where embedding N windows would take hours.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sfx-index-bench"
SR, FRAMES = 8000, 200


def tiny_checkpoint() -> Path:
    d = CACHE / "clap-tiny-fused"
    if not (d / "model.safetensors").is_file():
        sys.path.insert(0, str(ROOT / "scripts"))
        from make_random_clap import make_random_clap

        make_random_clap(d, tiny=True, fused=True, seed=0)
    return d


def wav_bytes_header(frames: int) -> bytes:
    data = frames * 2
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SR, SR * 2, 2, 16)
            + b"data" + struct.pack("<I", data))


def make_files(root: Path, n: int, seed: int = 0, start: int = 0) -> list[Path]:
    """n distinct tiny WAVs as root/dNN/dNN/sound NNNNNN.wav (100 files per folder)."""
    header = wav_bytes_header(FRAMES)
    rng = np.random.default_rng([seed, start])
    paths = []
    block = 10_000
    for b0 in range(0, n, block):
        k = min(block, n - b0)
        samples = rng.integers(-8000, 8000, (k, FRAMES), dtype=np.int16)
        for j in range(k):
            i = start + b0 + j
            d = root / f"d{i // 10_000:02d}" / f"d{i // 100 % 100:02d}"
            if i % 100 == 0 or j == 0:
                d.mkdir(parents=True, exist_ok=True)
            p = d / f"sound {i:06d}.wav"
            with open(p, "wb") as f:
                f.write(header + samples[j].tobytes())
            paths.append(p)
    return paths


def catalog_directly(settings, lib: Path) -> int:
    """Write catalog rows for the files of `lib` not yet in it, as a build would (one
    10 s window each, a random unit vector), then rebuild the FAISS cache. Only for timing
    the rerun over a big catalog on a machine too slow to embed 100 000 windows."""
    from indexer.catalog import FileInfo
    from indexer.index import Index
    from indexer.scan import content_hash, scan

    index = Index.open(settings)
    cat = index.catalog
    root = cat.add_root(lib)
    known = cat.file_states(root.id)
    dim = cat.get_model().dim
    rng = np.random.default_rng(0)
    info = FileInfo(duration_s=FRAMES / SR, sample_rate=SR, channels=1, subtype="PCM_16", container="WAV")
    n = 0
    todo = [it for it in scan(lib) if it.rel not in known]
    for i in range(0, len(todo), 5000):
        with cat.transaction():
            for it in todo[i : i + 5000]:
                v = rng.standard_normal((1, dim)).astype(np.float32)
                cat.write_file(root.id, it.rel, size=it.size, mtime_ns=it.mtime_ns,
                               content_hash=content_hash(it.path), info=info,
                               chunks=[(0, 0.0, FRAMES / SR)], vectors=v / np.linalg.norm(v), metadata={})
                n += 1
    cat.bump_generation()
    index.rebuild_vectors(save=True)
    index.close()
    return n


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=100_000)
    p.add_argument("--first-run-files", type=int, default=None,
                   help="time the first run on this many files only (the rest are indexed untimed)")
    p.add_argument("--model", help="checkpoint dir (default: the tiny random one, cached in ~/.cache/sfx-index-bench)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--progress", action="store_true", help="show the build's progress bars")
    p.add_argument("--keep", help="generate the library and index here and keep them")
    args = p.parse_args(argv)

    from indexer import clap, pipeline
    from indexer.catalog import Catalog
    from indexer.config import Settings
    from indexer.scan import scan

    model = args.model or str(tiny_checkpoint())
    workers = args.workers or pipeline.default_workers()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sfx-bench-noop-"))
    lib = tmp / "library"
    settings = Settings(index_dir=tmp / "index", model=model, device="cpu", precision="fp32")
    first_n = min(args.files, args.first_run_files or args.files)

    def build(**kw):
        return pipeline.build(settings, [lib], batch_size=args.batch_size, workers=workers,
                              progress=args.progress, **kw)

    try:
        t0 = time.perf_counter()
        make_files(lib, first_n)
        print(f"generated {first_n} files of {44 + 2 * FRAMES} bytes in {time.perf_counter() - t0:.1f} s "
              f"({tmp}); model {model}, batch {args.batch_size}, {workers} decode worker(s)")

        print(f"[{load()}]")
        model_s = [0.0]
        orig_embed = clap.ClapEncoder.embed_mel

        def timed_embed(enc, mel, n_real=None):
            t = time.perf_counter()
            try:
                return orig_embed(enc, mel, n_real)
            finally:
                model_s[0] += time.perf_counter() - t

        clap.ClapEncoder.embed_mel = timed_embed
        t0 = time.perf_counter()
        try:
            r = build()
        finally:
            clap.ClapEncoder.embed_mel = orig_embed
        wall = time.perf_counter() - t0
        print(f"first run: {r.new} new, {r.failed} failed, {r.windows} windows in {wall:.1f} s: "
              f"{r.new / wall:.1f} files/s with the tiny model; of the wall time {model_s[0]:.1f} s "
              f"({model_s[0] / wall:.0%}) in its forward (100 ms/window-class even tiny: HTSAT keeps "
              f"the 1001x64 input), so without it {r.new / (wall - model_s[0]):.1f} files/s")
        if first_n < args.files:
            print(f"    extrapolated to {args.files} files: {args.files / (r.new / wall) / 60:.0f} min")
        print(f"[{load()}]")
        if first_n < args.files:
            make_files(lib, args.files - first_n, start=first_n)
            t0 = time.perf_counter()
            n = catalog_directly(settings, lib)
            print(f"catalogued the other {n} files directly (Catalog.write_file, the rows a build writes, "
                  f"random vectors; FAISS rebuilt) in {time.perf_counter() - t0:.1f} s: not a build figure")

        # The references, same run: the bare walk and the catalog query a no-op needs.
        t0 = time.perf_counter()
        n_scan = sum(1 for _ in scan(lib))
        scan_s = time.perf_counter() - t0
        cat = Catalog.open(settings.catalog_url)
        t0 = time.perf_counter()
        states = cat.file_states(cat.roots()[0].id)
        states_s = time.perf_counter() - t0
        cat.close()
        print(f"references: scan of {n_scan} files {scan_s:.2f} s; file_states query {states_s:.2f} s "
              f"({len(states)} rows)")

        loads = []
        orig_load = clap.ClapEncoder.load
        clap.ClapEncoder.load = classmethod(lambda cls, *a, **k: loads.append(1) or orig_load.__func__(cls, *a, **k))
        try:
            for attempt in (1, 2):
                print(f"[{load()}]")
                t0 = time.perf_counter()
                r = build()
                wall = time.perf_counter() - t0
                print(f"no-op rerun {attempt}: {r.unchanged} unchanged, {r.new} new, {r.changed} changed, "
                      f"{r.windows} windows, model loaded {len(loads)} times: {wall:.2f} s "
                      f"({r.unchanged / wall:.0f} files/s)")
        finally:
            clap.ClapEncoder.load = orig_load
        print(f"[{load()}]")
        print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

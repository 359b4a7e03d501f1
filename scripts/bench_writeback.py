"""Benchmark: metadata written into N generated files (write-meta --apply), next to file copies.

Generates N short WAV files (or --format flac/mp3...), then in interleaved rounds of --round
files times, on the same files in the same run:
  copy        shutil.copyfile of each file into another folder (the plain reference)
  copy+fsync  a copy to a temporary file beside the original, fsync, rename over it: the floor
              for any atomic replace
  write-meta  plan + atomic journaled write of cat_id, description and keywords (our path)
Prints files/s of each and write-meta's ratio to both references.

    python scripts/bench_writeback.py --files 10000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.writeback import Journal, plan_file, write_files  # noqa: E402

FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III"),
           "ogg": ("OGG", "VORBIS"), "aiff": ("AIFF", "PCM_16")}


def generate(folder: Path, n: int, seconds: float, ext: str) -> list[Path]:
    fmt, subtype = FORMATS[ext]
    rng = np.random.default_rng(0)
    frames = int(48000 * seconds)
    out = []
    for i in range(n):
        p = folder / f"{i // 1000:03d}" / f"take_{i:05d}.{ext}"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, (rng.standard_normal(frames) * 0.1).astype("float32"), 48000, format=fmt, subtype=subtype)
        out.append(p)
    return out


def copy_plain(files: list[Path], dest: Path) -> None:
    for p in files:
        shutil.copyfile(p, dest / p.name)


def copy_fsync_rename(files: list[Path]) -> None:
    for p in files:
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as dst, open(p, "rb") as src:
            shutil.copyfileobj(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, p)


def write_meta(files: list[Path], journal: Journal, salt: int) -> None:
    plans = [plan_file(p, {"cat_id": "DOORWood", "description": f"Wooden door creak, take {i} ({salt})",
                           "keywords": f"door, wood, creak, {salt}"}) for i, p in enumerate(files)]
    _, rows = write_files(plans, journal)
    bad = [r for r in rows if r["status"] != "written"]
    if bad:
        raise SystemExit(f"write failed: {bad[0]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=0.25, help="length of each generated file")
    ap.add_argument("--format", default="wav", choices=sorted(FORMATS))
    ap.add_argument("--round", type=int, default=1000, help="files per interleaved round")
    ap.add_argument("--work", type=Path, help="work folder (default: a temp dir, removed after)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_writeback_", dir=args.work))
    try:
        t0 = time.perf_counter()
        files = generate(work / "lib", args.files, args.seconds, args.format)
        size = sum(p.stat().st_size for p in files)
        print(f"generated {len(files)} {args.format} files, {size / 1e6:.0f} MB, in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        journal = Journal(work / "journal")
        copies = work / "copies"
        copies.mkdir()
        spent = {"copy": 0.0, "copy+fsync": 0.0, "write-meta": 0.0}
        for r, start in enumerate(range(0, len(files), args.round)):
            batch = files[start : start + args.round]
            for name in (["copy", "copy+fsync", "write-meta"] if r % 2 == 0 else ["write-meta", "copy+fsync", "copy"]):
                t = time.perf_counter()
                if name == "copy":
                    copy_plain(batch, copies)
                elif name == "copy+fsync":
                    copy_fsync_rename(batch)
                else:
                    write_meta(batch, journal, r)
                spent[name] += time.perf_counter() - t
        n = len(files)
        rate = {k: n / v for k, v in spent.items()}
        print(f"{n} files of {size / n / 1e3:.0f} kB ({args.format}), same run, interleaved rounds of {args.round}:")
        for k in spent:
            print(f"  {k:<11} {rate[k]:8.0f} files/s  ({spent[k]:.1f} s)")
        print(f"  write-meta / copy = {rate['write-meta'] / rate['copy']:.2f}x, "
              f"write-meta / copy+fsync = {rate['write-meta'] / rate['copy+fsync']:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The GPU build path measured on a machine with CUDA: the model, its fidelity, and builds.

Run where torch sees a GPU (`--device cuda`); `--device cpu` runs the same code on the CPU
(the raw-window path with the CPU frontend), which checks the script, not the speed.

  (a) the model as a GPU build calls it: `ClapEncoder.embed_audio` on windows already on the
      GPU (log-mel frontend and model there), per precision and batch size, in interleaved
      rounds; beside it `embed_mel` on log-mel from the CPU (the model step alone, as a build
      whose workers compute the frontend calls it);
  (b) fidelity: each precision's minimum cosine to torch fp32 on the CPU, and how far a
      window's vector moves with its batch (alone, in a batch of 128, in reversed order);
  (c) whole builds of a generated library (WAV 16/24-bit and FLAC; 44.1, 48 and 96 kHz; mono
      and stereo; 10 to 60 s), interleaved after one untimed build, in variants: the default
      (the frontend on the GPU, the workers send raw windows; files hashed on several threads),
      hashing on one thread, and the frontend in the decode workers; each one's windows/s end to
      end and in steady state, next to the same run's model rate (a).

    python scripts/bench_gpu.py [--device cuda] [--files 1000] [--batch-size 128] [--workers W]
                                [--rounds 2] [--variants gpu,gpu-1hash,workers] [--precision bf16]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_build as bb  # noqa: E402  (library, clocks, checkpoint)

FORMATS = [("wav", "WAV", "PCM_16"), ("wav", "WAV", "PCM_24"), ("flac", "FLAC", "PCM_16")]
RATES = [48000, 44100, 96000]


def _write_one(job) -> tuple[float, int]:
    import soundfile as sf

    from indexer.windowing import window_starts

    out, i, seed, min_s, max_s = job
    rng = np.random.default_rng([seed, i])
    ext, fmt, subtype = FORMATS[i % len(FORMATS)]
    sr, ch = RATES[(i // len(FORMATS)) % len(RATES)], 1 + (i % 4 == 0)
    dur = float(np.round(rng.uniform(min_s, max_s), 2))
    t = np.arange(int(sr * dur)) / sr
    x = 0.3 * np.sin(2 * np.pi * rng.uniform(80, 4000) * t) + 0.05 * rng.standard_normal(t.size)
    x = np.stack([x, np.roll(x, 7)], 1) if ch == 2 else x
    path = Path(out) / f"folder{i % 8}" / f"sound {i:04d} {sr // 1000}k {ch}ch {dur:.0f}s.{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x.astype(np.float32), sr, subtype=subtype, format=fmt)
    return dur, len(window_starts(dur))


def make_library(out: Path, n: int, seed: int, min_s: float, max_s: float) -> tuple[float, int]:
    """n files written by every core; returns (seconds of audio, windows)."""
    jobs = [(str(out), i, seed, min_s, max_s) for i in range(n)]
    with mp.get_context("spawn").Pool(os.cpu_count()) as pool:
        done = pool.map(_write_one, jobs, chunksize=8)
    return sum(d for d, _ in done), sum(w for _, w in done)


def model_rates(model: str, device: str, precisions: list[str], sizes: list[int], rounds: int) -> dict:
    """(a) and (b): windows/s per (precision, batch size, step) and each precision's fidelity."""
    import torch

    from indexer.clap import ClapEncoder

    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_embed import windows

    host = windows(max(sizes))
    encs = {p: ClapEncoder.load(model, device=device, precision=p, parts=("audio",), runtime="torch")
            for p in precisions}
    on_device = encs[precisions[0]].upload(host)
    mel = encs[precisions[0]].frontend.mel(host[: max(sizes)]).numpy()  # the CPU frontend's log-mel
    cpu = ClapEncoder.load(model, device="cpu", precision="fp32", parts=("audio",), runtime="torch")
    ref = cpu.embed_audio(host[:16])
    out = {"rates": {}, "fidelity": {}}
    for p, enc in encs.items():
        enc.batch_size = max(sizes)
        for bs in sizes:  # warm-up: cuDNN and cuBLAS choose their kernels per shape
            enc.fixed_batch = bs if enc.fixed_batch else 0
            enc.embed_audio(on_device[:bs])
            enc.embed_mel(mel[:bs])
        enc.fixed_batch = 128 if enc.fixed_batch else 0  # as a build runs: one shape, 128 windows
        got = enc.embed_audio(on_device[:16])
        alone = np.concatenate([enc.embed_audio(on_device[i:i + 1]) for i in range(8)])
        batch = enc.embed_audio(on_device[:128])
        flipped = enc.embed_audio(torch.flip(on_device[:128], [0]))[::-1]
        out["fidelity"][p] = dict(
            cos_fp32_cpu=float((got * ref).sum(1).min()),
            alone_vs_batch=float(np.abs(alone - batch[:8]).max()),
            reversed_vs_batch=float(np.abs(flipped - batch).max()),
            cos_alone_batch=float((alone * batch[:8]).sum(1).min()))
    for r in range(rounds):
        line = []
        for p, enc in encs.items():
            for bs in sizes:
                enc.fixed_batch = bs if enc.fixed_batch else 0  # CUDA's one call shape, at this size
                for step, fn, x in (("gpu-frontend", enc.embed_audio, on_device), ("model-only", enc.embed_mel, mel)):
                    t0 = time.perf_counter()
                    fn(x[:bs])  # returns vectors on the host: the GPU's work is done
                    rate = bs / (time.perf_counter() - t0)
                    out["rates"].setdefault((p, bs, step), []).append(rate)
                    line.append(f"{p}/{bs}/{step} {rate:.0f}")
        print(f"  round {r + 1}: " + "  ".join(line) + " windows/s", flush=True)
    del encs, on_device
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


VARIANTS = {  # name: (frontend on the model's device, hashing threads)
    "gpu": (True, None),         # what a build does on a GPU (hashing.HASH_THREADS threads)
    "gpu-1hash": (True, 1),      # hashed on one thread, as before
    "workers": (False, None),    # the log-mel computed by the decode workers
}


def build_round(lib: Path, tmp: Path, model: str, args, variant: str, name: str) -> dict:
    from indexer import hashing, pipeline
    from indexer.config import Settings

    raw, threads = VARIANTS[variant]
    # Which side computes the frontend: what pipeline.build decides for a GPU, or the workers.
    pipeline.FRONTEND_ON_DEVICE = ("cuda", "cpu") if raw else ()
    default_threads, real_hash = hashing.HASH_THREADS, hashing.hash_one
    hashed_at: list[float] = []

    def timed_hash(item, state):
        out = real_hash(item, state)
        hashed_at.append(time.perf_counter())
        return out

    hashing.HASH_THREADS, hashing.hash_one = threads or default_threads, timed_hash
    settings = Settings(index_dir=tmp / name, model=model, device=args.device, precision=args.precision)
    clock, kids = bb.ModelClock(), bb.ChildMemory()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        report = pipeline.build(settings, [lib], batch_size=args.batch_size, workers=args.workers, progress=False)
    finally:
        clock.restore()
        hashing.HASH_THREADS, hashing.hash_one = default_threads, real_hash
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = kids.stop()
    calls = clock.calls
    steady = calls[-1][1] - calls[0][0]
    shutil.rmtree(settings.index_dir, ignore_errors=True)
    return dict(windows=report.windows, failed=report.failed, wall=wall, e2e=report.windows / wall,
                steady=report.windows / steady, busy=sum(e - s for s, e, _ in calls) / steady,
                first=calls[0][0] - t0, calls=len(calls), rss=rss, hashed=max(hashed_at) - t0,
                worker_ms=1e3 * ((c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)) / max(report.windows, 1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--model", help="checkpoint dir (default: full-size random, generated once)")
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--min-s", type=float, default=10.0)
    p.add_argument("--max-s", type=float, default=60.0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=None, help="decode processes (default: the build's default)")
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"], help="of the builds")
    p.add_argument("--sizes", default="64,128,256", help="batch sizes of (a)")
    p.add_argument("--model-rounds", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2, help="build rounds (each: every variant)")
    p.add_argument("--variants", default="gpu,gpu-1hash,workers", help=", ".join(VARIANTS))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    from indexer import pipeline

    model = args.model or str(bb.full_checkpoint())
    args.workers = args.workers or pipeline.default_workers("cuda")
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else "none (CPU run)"
    print(f"GPU {gpu}; torch {torch.__version__}; {os.cpu_count()} CPUs; [{bb.load()}]")
    print(f"model {model}\n(a) model rate, windows/s (median, range over {args.model_rounds} interleaved rounds)")
    sizes = [int(s) for s in args.sizes.split(",")]
    m = model_rates(model, args.device, ["bf16", "fp32"], sizes, args.model_rounds)
    for (prec, bs, step), rs in m["rates"].items():
        print(f"    {prec:>4} batch {bs:>3} {step:<12} {statistics.median(rs):8.0f}  ({min(rs):.0f}-{max(rs):.0f})")
    print("(b) fidelity")
    for prec, f in m["fidelity"].items():
        print(f"    {prec}: min cosine to CPU fp32 {f['cos_fp32_cpu']:.6f}; a window alone vs in a batch of 128: "
              f"max |diff| {f['alone_vs_batch']:.2e} (min cosine {f['cos_alone_batch']:.7f}); reversed order: "
              f"{f['reversed_vs_batch']:.2e}")

    tmp = Path(tempfile.mkdtemp(prefix="sfx-bench-gpu-"))
    try:
        t0 = time.perf_counter()
        audio_s, expect = make_library(tmp / "library", args.files, args.seed, args.min_s, args.max_s)
        print(f"(c) library: {args.files} files, {audio_s / 3600:.1f} h of audio, {expect} windows "
              f"(written in {time.perf_counter() - t0:.1f} s); batch {args.batch_size}, {args.workers} decode "
              f"workers, precision {args.precision}")
        model_rate = statistics.median(m["rates"][(args.precision, args.batch_size, "gpu-frontend")]) \
            if (args.precision, args.batch_size, "gpu-frontend") in m["rates"] else None
        variants = args.variants.split(",")
        w = build_round(tmp / "library", tmp, model, args, variants[0], "warm-up")
        print(f"    untimed warm-up build: {w['windows']} windows in {w['wall']:.1f} s  [{bb.load()}]", flush=True)
        got: dict[str, list[dict]] = {v: [] for v in variants}
        for rnd in range(args.rounds):
            for v in variants[rnd % len(variants):] + variants[:rnd % len(variants)]:
                b = build_round(tmp / "library", tmp, model, args, v, f"index-{rnd}-{v}")
                got[v].append(b)
                print(f"    round {rnd + 1}, {v}: {b['windows']} windows ({b['failed']} failed files) in "
                      f"{b['wall']:.1f} s: end to end {b['e2e']:.0f}, steady state {b['steady']:.0f} windows/s; "
                      f"model busy {b['busy']:.0%} of the steady state, {b['calls']} calls, the first after "
                      f"{b['first']:.1f} s; last file hashed after {b['hashed']:.1f} s; workers "
                      f"{b['worker_ms']:.1f} ms CPU per window, largest {b['rss']:.0f} MB  [{bb.load()}]", flush=True)
        for v in variants:
            e2e = statistics.median(b["e2e"] for b in got[v])
            st = statistics.median(b["steady"] for b in got[v])
            vs = f"; {st / model_rate:.2f}x / {e2e / model_rate:.2f}x the model rate {model_rate:.0f}" \
                if model_rate else ""
            print(f"    {v:<10} steady {st:.0f}, end to end {e2e:.0f} windows/s (medians){vs}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB  "
          f"[{bb.load()}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

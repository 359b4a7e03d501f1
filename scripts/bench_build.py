#!/usr/bin/env python3
"""Build throughput next to the pure model rate, measured in the same run.

Generates a mixed library in a temporary folder (WAV 16/24-bit, FLAC, OGG; 32 to 96 kHz;
mono and stereo; 1 to 60 s), then on the full-size random CLAP checkpoint:

  (a) the pure model: `ClapEncoder.embed_mel` on precomputed log-mel at the build's batch
      size and precision (no decoding, no frontend, no database), before and after the build;
  (b) the whole `indexer.pipeline.build()` over the library: files/s and windows/s, end to end
      (scan, hashing, model load, decoding, commits, FAISS save) and in steady state (from the
      first model call to the last), with the model's busy share and its batch sizes.

The ratio (b)/(a) is the figure of merit; the goal is 0.90. Each runtime (torch, and OpenVINO
where it is installed) gets its own (a) and (b) in the same run, the models measured side by
side before and after the builds, so the runtimes' ratios come from one run. It also prints the
load average (the machine may be shared) and the peak RSS of the decode workers, and where /proc
exists the steady state's CPU per window (model calls, the rest of the build process, the decode
workers) with the ratio it allows: a build that keeps every core busy can go no faster than the
cores divided by its CPU per window.

    python scripts/bench_build.py [--files 40] [--model DIR] [--batch-size 16] [--workers W]
                                  [--precision auto|fp32|bf16] [--runtimes torch,openvino]
                                  [--seed 0] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sfx-index-bench"

# (extension, soundfile format, subtype)
FORMATS = [
    ("wav", "WAV", "PCM_16"),
    ("wav", "WAV", "PCM_24"),
    ("flac", "FLAC", "PCM_16"),
    ("flac", "FLAC", "PCM_24"),
    ("ogg", "OGG", "VORBIS"),
    ("wav", "WAV", "FLOAT"),
]
RATES = [44100, 48000, 96000, 32000]


def full_checkpoint() -> Path:
    d = CACHE / "clap-full-fused"
    if not (d / "model.safetensors").is_file():
        sys.path.insert(0, str(ROOT / "scripts"))
        from make_random_clap import make_random_clap

        print(f"generating the full-size random checkpoint in {d} ...", file=sys.stderr)
        make_random_clap(d, tiny=False, fused=True, seed=0)
    return d


def write_blocks(f, x: np.ndarray, block: int = 1 << 16) -> None:
    """Write in blocks: one large write to OGG/Vorbis overflows libvorbis's stack (alloca of
    the whole buffer; libsndfile issue #1095, python-soundfile #233/#396) and segfaults."""
    for i in range(0, x.shape[0], block):
        f.write(x[i : i + block])


def _hits(rng, sr: int, dur: float) -> np.ndarray:
    """Impacts as sound-effects libraries hold them: noise bursts and plucked tones that decay
    into digital silence, with silence between them and at the end."""
    x = np.zeros(int(sr * dur))
    at = int(rng.uniform(0.05, 0.3) * sr)
    while at < len(x) - sr // 2:
        length = int(rng.uniform(0.3, 1.5) * sr)
        t = np.arange(min(length, len(x) - at)) / sr
        decay = np.exp(-t / rng.uniform(0.03, 0.3))
        body = rng.standard_normal(t.size) if rng.random() < 0.5 else np.sin(2 * np.pi * rng.uniform(80, 4000) * t)
        x[at:at + t.size] = rng.uniform(0.2, 0.9) * body * decay
        at += t.size + int(rng.uniform(0.2, 2.0) * sr)
    x[np.abs(x) < 2 ** -16] = 0.0  # below 16-bit resolution: stored as digital silence
    return x


def make_library(out: Path, n: int, seed: int, min_s: float, max_s: float,
                 kind: str = "tones") -> tuple[float, int]:
    """n files of mixed formats/rates/lengths; returns (total seconds of audio, windows).
    kind "tones": a steady tone in noise from end to end (the true peak's dearest content:
    every part of the file can hold the peak); "hits": impacts and silences (`_hits`)."""
    import soundfile as sf

    from indexer.windowing import window_starts

    rng = np.random.default_rng(seed)
    total_s, windows = 0.0, 0
    for i in range(n):
        ext, fmt, subtype = FORMATS[i % len(FORMATS)]
        sr = RATES[(i // len(FORMATS)) % len(RATES)] if fmt != "OGG" else [44100, 48000][(i // len(FORMATS)) % 2]
        ch = 1 + (i % 3 == 0)
        dur = float(np.round(rng.uniform(min_s, max_s), 2))
        t = np.arange(int(sr * dur)) / sr
        if kind == "hits":
            x = _hits(rng, sr, dur)
        else:
            x = 0.3 * np.sin(2 * np.pi * rng.uniform(80, 4000) * t) + 0.1 * rng.standard_normal(t.size)
        x = np.stack([x, np.roll(x, 7)], 1)[:, :ch] if ch == 2 else x
        path = out / f"folder{i % 5}" / f"sound {i:03d} {sr // 1000}k {ch}ch {dur:.0f}s.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        with sf.SoundFile(str(path), "w", sr, ch, subtype, format=fmt) as f:
            write_blocks(f, x.astype(np.float32))
        total_s += dur
        windows += len(window_starts(dur))
    return total_s, windows


class ModelClock:
    """Wraps the build's model calls (ClapEncoder.embed_mel; embed_audio where a GPU computes
    the frontend) to log (start, end, batch) of every call."""

    METHODS = ("embed_mel", "embed_audio")

    def __init__(self):
        from indexer import clap

        self.calls: list[tuple[float, float, int]] = []
        self.cpu: list[tuple[float, float, float | None]] = []  # this process at start / end, children at start
        self._orig = {m: getattr(clap.ClapEncoder, m) for m in self.METHODS}
        for m in self.METHODS:
            setattr(clap.ClapEncoder, m, self._timed(self._orig[m]))

    def _timed(self, orig):
        clock = self

        def timed(enc, x, n_real=None):
            t0, cpu0, kids0 = time.perf_counter(), time.process_time(), children_cpu()
            out = orig(enc, x, n_real)
            clock.calls.append((t0, time.perf_counter(), len(x)))
            clock.cpu.append((cpu0, time.process_time(), kids0))
            return out

        return timed

    def restore(self):
        from indexer import clap

        for m, f in self._orig.items():
            setattr(clap.ClapEncoder, m, f)


class ChildMemory:
    """Samples the peak RSS (VmHWM) of this process's children (the decode workers) every
    0.5 s. getrusage(RUSAGE_CHILDREN) would report the parent's size: a spawned child is
    forked (sharing the parent's resident pages) before it execs a fresh interpreter."""

    def __init__(self):
        import threading

        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        me = str(os.getpid())
        while not self._stop.wait(0.5):
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                if fields.get("PPid", "").strip() == me and "VmHWM" in fields:
                    self.peak_kb = max(self.peak_kb, int(fields["VmHWM"].split()[0]))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024


def pure_model_rate(enc, mel: np.ndarray, batch: int, reps: int, cpu: list | None = None) -> float:
    """windows/s of embed_mel on full batches of precomputed mel (median of reps); appends its
    CPU seconds per window (all of this process's threads) to `cpu` if given."""
    enc.embed_mel(mel[:batch])  # warm-up (oneDNN kernel choice, allocator)
    rates = []
    c0 = time.process_time()
    for _ in range(reps):
        t0 = time.perf_counter()
        enc.embed_mel(mel[:batch])
        rates.append(batch / (time.perf_counter() - t0))
    if cpu is not None:
        cpu.append((time.process_time() - c0) / (reps * batch))
    return float(np.median(rates))


def children_cpu() -> float | None:
    """CPU seconds of this process's live children (the decode workers), read from /proc;
    None where there is no /proc."""
    me, total = str(os.getpid()), 0.0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def cpu_times() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its joined children so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def build_once(lib: Path, tmp: Path, model: str, runtime: str, args, workers: int) -> dict:
    """One whole build of `lib` into a fresh index on `runtime`; its figures."""
    from indexer import pipeline
    from indexer.config import Settings

    os.environ["SFX_RUNTIME"] = runtime  # what --runtime sets
    settings = Settings(index_dir=tmp / f"index-{runtime}", model=model, device="cpu", precision=args.precision)
    clock = ModelClock()
    kids_mem = ChildMemory()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        report = pipeline.build(settings, [lib], batch_size=args.batch_size, workers=workers, progress=False)
    finally:
        clock.restore()
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_rss = kids_mem.stop()
    calls = clock.calls
    first, last = calls[0][0], calls[-1][1]
    # CPU per window in the steady state, from the start of the second model call to the start
    # of the last (the first call and the workers' start-up imports fall before it).
    split = None
    if len(calls) >= 3 and clock.cpu[1][2] is not None:
        (c1, _, k1), (cz, _, kz) = clock.cpu[1], clock.cpu[-1]
        n = sum(b for *_, b in calls[1:-1])
        inside = sum(e - s for s, e, _ in clock.cpu[1:-1])
        split = dict(model=inside / n, rest=(cz - c1 - inside) / n, workers=(kz - k1) / n,
                     wall=(calls[-1][0] - calls[1][0]) / n)
    sizes = [b for *_, b in calls]
    shutil.rmtree(settings.index_dir, ignore_errors=True)
    return dict(report=report, wall=wall, windows=report.windows,
                files=report.new + report.changed + report.moved + report.duplicates,
                before_first=first - t0, after_last=t0 + wall - last, steady=last - first,
                busy=sum(e - s for s, e, _ in calls), calls=len(calls),
                partial=sum(b < args.batch_size for b in sizes), sizes=(min(sizes), max(sizes)),
                worker_cpu=(cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
                worker_rss=worker_rss, split=split)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=40)
    p.add_argument("--min-s", type=float, default=1.0)
    p.add_argument("--max-s", type=float, default=60.0)
    p.add_argument("--model", help="checkpoint dir (default: full-size random, cached in ~/.cache/sfx-index-bench)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=int, default=None, help="decode processes (default: the build's default)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--runtimes", default=None,
                   help="comma-separated, built in turn (default: torch,openvino where openvino is installed); "
                        "with --measure-ab the first one (default: auto, as a build)")
    p.add_argument("--reps", type=int, default=3, help="timed model batches before and after the builds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", help="generate the library here and keep it (default: a temp dir, removed)")
    p.add_argument("--library", choices=("tones", "hits"), default="tones",
                   help="with --measure-ab: steady tones in noise (default), or impacts and silences")
    p.add_argument("--measure-ab", type=int, default=0, metavar="ROUNDS",
                   help="instead: build ROUNDS times with and without the measurements (docs/hygiene.md), "
                        "interleaved, each into a new index, and print the throughput of each")
    args = p.parse_args(argv)
    if args.measure_ab:
        return measure_ab(args)

    import torch

    from indexer import pipeline
    from indexer.clap import ClapEncoder, load_frontend
    from indexer.runtime import openvino_installed

    runtimes = (args.runtimes or ("torch,openvino" if openvino_installed() else "torch")).split(",")
    model = args.model or str(full_checkpoint())
    workers = args.workers or pipeline.default_workers()
    tmp = Path(tempfile.mkdtemp(prefix="sfx-bench-build-"))
    lib = Path(args.keep) if args.keep else tmp / "library"
    try:
        t0 = time.perf_counter()
        audio_s, expect_windows = make_library(lib, args.files, args.seed, args.min_s, args.max_s)
        print(f"library: {args.files} files, {audio_s / 60:.1f} min of audio, {expect_windows} windows "
              f"(generated in {time.perf_counter() - t0:.1f} s)")

        # (a) the pure model of each runtime, same checkpoint, batch size and precision as the build.
        encs = {rt: ClapEncoder.load(model, device="cpu", precision=args.precision, parts=("audio",), runtime=rt)
                for rt in runtimes}
        frontend, _ = load_frontend(model)
        rng = np.random.default_rng(1)
        wav = (0.1 * rng.standard_normal((args.batch_size, 480_000))).astype(np.float32)
        mel = frontend.mel(wav).numpy()
        print(f"model {model}: precision {args.precision}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; batch {args.batch_size}, "
              f"{workers} decode worker(s); runtimes " + ", ".join(
                  f"{rt} -> {e.runtimes['audio']} {e._ov['audio'].precision if 'audio' in e._ov else e.precision}"
                  for rt, e in encs.items()))
        print(f"[{load()}]")
        model_cpu = {rt: [] for rt in runtimes}
        before = {rt: pure_model_rate(e, mel, args.batch_size, args.reps, model_cpu[rt]) for rt, e in encs.items()}
        print("(a) pure model before the builds: " + ", ".join(f"{rt} {r:.2f}" for rt, r in before.items())
              + " windows/s")
        del encs

        # (b) the whole build on each runtime, in turn.
        builds = {}
        for rt in runtimes:
            print(f"[{load()}]")
            b = builds[rt] = build_once(lib, tmp, model, rt, args, workers)
            print(f"(b) build on {rt}: {b['files']} files ({b['report'].failed} failed), {b['windows']} windows in "
                  f"{b['wall']:.1f} s: {b['files'] / b['wall']:.2f} files/s, {b['windows'] / b['wall']:.2f} windows/s "
                  "end to end")
            print(f"    before the first model call {b['before_first']:.1f} s (scan, hash, model load, first decode); "
                  f"after the last {b['after_last']:.1f} s (commit, FAISS save)")
            print(f"    steady state: {b['windows'] / b['steady']:.2f} windows/s; model busy {b['busy'] / b['steady']:.1%}, "
                  f"in-build model rate {b['windows'] / b['busy']:.2f} windows/s; {b['calls']} batches, "
                  f"{b['partial']} partial (sizes {b['sizes'][0]}-{b['sizes'][1]})")
            print(f"    decode workers (decode, resample, log-mel): {b['worker_cpu']:.1f} CPU s, "
                  f"{1000 * b['worker_cpu'] / max(b['windows'], 1):.0f} ms per window; largest {b['worker_rss']:.0f} MB")
            if b["split"]:
                sp = b["split"]
                total = sp["model"] + sp["rest"] + sp["workers"]
                print(f"    steady-state CPU per window: model calls {1e3 * sp['model']:.1f} ms, the rest of this "
                      f"process {1e3 * sp['rest']:.1f} ms, decode workers {1e3 * sp['workers']:.1f} ms; the "
                      f"{os.cpu_count()} cores busy {total / (sp['wall'] * os.cpu_count()):.0%}")

        print(f"[{load()}]")
        encs = {rt: ClapEncoder.load(model, device="cpu", precision=args.precision, parts=("audio",), runtime=rt)
                for rt in runtimes}
        after = {rt: pure_model_rate(e, mel, args.batch_size, args.reps, model_cpu[rt]) for rt, e in encs.items()}
        print("(a) pure model after the builds: " + ", ".join(f"{rt} {r:.2f}" for rt, r in after.items())
              + " windows/s")
        for rt in runtimes:
            ref = (before[rt] + after[rt]) / 2
            b = builds[rt]
            print(f"{rt}: ratio build/model (goal >= 0.90): steady state {b['windows'] / b['steady'] / ref:.2f}, "
                  f"end to end {b['windows'] / b['wall'] / ref:.2f}  (model {ref:.2f} windows/s, mean of before/after)")
            if b["split"]:
                # With every core busy, a build goes at cores / (its CPU per window); the pure
                # model at cores_it_keeps_busy / (its own CPU per window).
                sp, alone = b["split"], float(np.mean(model_cpu[rt]))
                ceiling = (os.cpu_count() / (sp["model"] + sp["rest"] + sp["workers"])) / ref
                print(f"    CPU bound: the pure model spends {1e3 * alone:.1f} ms CPU per window; the build's "
                      f"{1e3 * (sp['model'] + sp['rest'] + sp['workers']):.1f} ms on {os.cpu_count()} cores allow at "
                      f"most {ceiling:.2f}x the model rate in steady state")
        if len(runtimes) > 1:
            a, z = runtimes[0], runtimes[-1]
            print(f"{z} / {a}: model {(before[z] + after[z]) / (before[a] + after[a]):.2f}x, build end to end "
                  f"{builds[a]['wall'] / builds[z]['wall']:.2f}x, steady state "
                  f"{builds[a]['steady'] / builds[z]['steady']:.2f}x")
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process {own:.0f} MB (models, builds and bench)")
        print(f"[{load()}]")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def measure_ab(args) -> int:
    """Build throughput with the measurements and fingerprint against without, same run."""
    from indexer import pipeline
    from indexer.config import Settings
    from indexer.runtime import resolve

    model = args.model or str(full_checkpoint())
    workers = args.workers or pipeline.default_workers()
    if args.runtimes:  # the first one named; default: what the build picks (auto)
        os.environ["SFX_RUNTIME"] = args.runtimes.split(",")[0]
    runtime = resolve(None, "cpu")
    tmp = Path(tempfile.mkdtemp(prefix="sfx-bench-measure-"))
    lib = Path(args.keep) if args.keep else tmp / "library"
    try:
        audio_s, expect = make_library(lib, args.files, args.seed, args.min_s, args.max_s, args.library)
        print(f"library: {args.files} files of {args.library}, {audio_s / 60:.1f} min of audio, {expect} windows; "
              f"batch {args.batch_size}, {workers} decode worker(s), runtime {runtime}, precision {args.precision}")
        # An untimed build first: the first build of a process also pays for reading the
        # checkpoint and the runtime's first runs (docs/benchmarks.md), whichever it is.
        t0 = time.perf_counter()
        pipeline.build(Settings(index_dir=tmp / "index-warm-up", model=model, device="cpu", precision=args.precision),
                       [lib], batch_size=args.batch_size, workers=workers, progress=False, measure=True)
        print(f"  warm-up build (not counted): {time.perf_counter() - t0:.1f} s  [{load()}]")
        rates: dict[bool, list[float]] = {True: [], False: []}
        # CPU per window of this process (the model, the build's own work) and of the decode
        # workers (children, counted once the build has joined them): on a machine whose cores
        # the model keeps busy, the ratio of windows/s follows the ratio of CPU per window.
        cpu: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for rnd in range(args.measure_ab):
            for measure in ((True, False) if rnd % 2 == 0 else (False, True)):
                settings = Settings(index_dir=tmp / f"index-{rnd}-{measure}", model=model, device="cpu",
                                    precision=args.precision)
                own0, kids0 = cpu_times()
                t0 = time.perf_counter()
                report = pipeline.build(settings, [lib], batch_size=args.batch_size, workers=workers,
                                        progress=False, measure=measure)
                wall = time.perf_counter() - t0
                own1, kids1 = cpu_times()
                per = 1000 / max(report.windows, 1)
                cpu[measure].append(((own1 - own0) * per, (kids1 - kids0) * per))
                rates[measure].append(report.windows / wall)
                print(f"  round {rnd + 1} {'with' if measure else 'without'} measurements: "
                      f"{report.windows} windows in {wall:.1f} s, {report.windows / wall:.2f} windows/s; CPU per "
                      f"window: model process {cpu[measure][-1][0]:.0f} ms, decode workers {cpu[measure][-1][1]:.0f} ms"
                      f"  [{load()}]")
        on, off = float(np.median(rates[True])), float(np.median(rates[False]))
        ratios = [a / b for a, b in zip(rates[True], rates[False])]
        print(f"with measurements {on:.2f} windows/s, without {off:.2f} (medians of {args.measure_ab}); "
              f"ratio {on / off:.3f} (goal >= 0.95); per round {min(ratios):.3f}-{max(ratios):.3f}: "
              + ", ".join(f"{r:.3f}" for r in ratios))
        own = {m: float(np.median([c[0] for c in cpu[m]])) for m in cpu}
        kids = {m: float(np.median([c[1] for c in cpu[m]])) for m in cpu}
        print(f"CPU per window (medians): without {own[False]:.0f} + {kids[False]:.0f} ms (model process + decode "
              f"workers), with {own[True]:.0f} + {kids[True]:.0f} ms: the analysis adds {kids[True] - kids[False]:+.0f} ms "
              f"to the workers; CPU ratio without/with {(own[False] + kids[False]) / (own[True] + kids[True]):.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

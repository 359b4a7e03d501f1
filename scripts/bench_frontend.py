"""Benchmark: LogMelFrontend vs transformers' ClapFeatureExtractor on batches of 10 s windows.

Both run in the same process on the same batch; the table gives windows/s of each, the
ratio, and the largest deviation (dB) of our log-mel from the extractor's. The machine is
shared, so each side is timed several times, interleaved, and the best and median are shown,
both in wall time and in CPU time of the process (less disturbed by other people's load when
both sides run single-threaded; with more threads it sums them). The load average is printed
before and after.

    .venv/bin/python scripts/bench_frontend.py [--batch 32] [--repeats 5] [--threads N] [--frontend-threads N]

Batches: "real" = windows of the WAVs in ../shared/fixtures/bwf (mono mean, soxr HQ to
48 kHz, repeat-padded) topped up with coloured noise; "tonal" = loud pure tones and sweeps,
the worst case for our float32 pass (those windows are computed in float64 throughout).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.mel import LogMelFrontend  # noqa: E402

SR, N = 48_000, 480_000
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "bwf"


def repeatpad(x: np.ndarray, n: int = N) -> np.ndarray:
    if len(x) >= n:
        return x[:n]
    x = np.tile(x, int(n / len(x)))
    return np.pad(x, (0, n - len(x)))


def real_batch(size: int, rng: np.random.Generator) -> np.ndarray:
    import soundfile as sf
    import soxr

    wins = []
    for path in sorted(FIXTURES.glob("*")):
        if path.suffix.lower() not in (".wav", ".bwf"):
            continue
        data, sr = sf.read(path, dtype="float32", always_2d=True)
        mono = data.mean(axis=1)
        if sr != SR:
            mono = soxr.resample(mono, sr, SR, quality="HQ")
        for start in range(0, max(1, len(mono) - N + 1), N):
            wins.append(repeatpad(mono[start : start + N]))
    while len(wins) < size:  # pink-ish and brown-ish noise at varied levels
        white = rng.standard_normal(N)
        colour = np.cumsum(white) if len(wins) % 2 else np.convolve(white, np.ones(8) / 8, mode="same")
        colour = colour - colour.mean()
        wins.append(colour / np.abs(colour).max() * 10 ** rng.uniform(-3, 0))
    return np.stack(wins[:size]).astype(np.float32)


def tonal_batch(size: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(N) / SR
    wins = []
    for i in range(size):
        if i % 2:
            f0, f1 = rng.uniform(50, 2000), rng.uniform(2000, 20000)
            wins.append(0.8 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) / 20 * t * t)))
        else:
            wins.append(rng.uniform(0.1, 1.0) * np.sin(2 * np.pi * rng.uniform(50, 14000) * t))
    return np.stack(wins).astype(np.float32)


def timed(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call, started on idle cores.

    The pause first lets the previous call's pool threads go to sleep: numpy's OpenBLAS
    threads spin ~0.1 s after the reference's matmuls, on the cores the next call needs
    (measured: our frontend 30-40% slower right after the reference than after a pause)."""
    time.sleep(0.3)
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    ap.add_argument("--frontend-threads", type=int, default=None,
                    help="LogMelFrontend.threads (default: its own, 1; 0: use torch's setting as is)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import transformers
    from transformers import ClapFeatureExtractor

    transformers.logging.set_verbosity_error()
    rng = np.random.default_rng(0)
    batches = {"real": real_batch(args.batch, rng), "tonal": tonal_batch(args.batch, rng)}
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()} (frontend: "
          f"{args.frontend_threads if args.frontend_threads is not None else LogMelFrontend.threads}), batch {args.batch} x {N} samples, "
          f"repeats {args.repeats}", file=sys.stderr)

    load0 = os.getloadavg()
    rows = []
    for truncation in ("fusion", "rand_trunc"):
        fe = ClapFeatureExtractor(frequency_min=50, frequency_max=14000, truncation=truncation)
        ours = LogMelFrontend.from_feature_extractor(fe)
        if args.frontend_threads is not None:
            ours.threads = args.frontend_threads or None
        for name, batch in batches.items():
            as_list = list(batch)
            xt = torch.from_numpy(batch)
            ref = fe(as_list, sampling_rate=SR, return_tensors="np")["input_features"][:, 0]
            got = ours(xt).numpy()
            dev = float(np.abs(got.astype(np.float64) - ref).max())
            t_ref, t_ours = [], []
            for _ in range(args.repeats):  # interleaved so that load on the machine hits both
                t_ref.append(timed(lambda: fe(as_list, sampling_rate=SR)))
                t_ours.append(timed(lambda: ours(xt)))
            n = len(batch)
            for clock in (0, 1):
                r = [t[clock] for t in t_ref]
                o = [t[clock] for t in t_ours]
                rows.append((truncation, name, ("wall", "cpu")[clock], n / min(r), n / statistics.median(r),
                             n / min(o), n / statistics.median(o),
                             min(r) / min(o), statistics.median(r) / statistics.median(o), dev))

    head = ("filters", "batch", "clock", "ref win/s best", "ref med", "ours win/s best", "ours med",
            "ratio best", "ratio med", "max |dB dev|")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for tr, name, clock, rb, rm, ob, om, qb, qm, dev in rows:
        print(f"| {tr} | {name} | {clock} | {rb:.1f} | {rm:.1f} | {ob:.1f} | {om:.1f} | {qb:.1f}x | {qm:.1f}x | {dev:.1e} |")
    for clock in ("wall", "cpu"):
        sel = [r for r in rows if r[2] == clock]
        worst = min(sel, key=lambda r: r[8])
        print(f"ratio, min over batches ({clock}): of medians {worst[8]:.1f}x ({worst[0]}/{worst[1]}), "
              f"of bests {min(r[7] for r in sel):.1f}x; max |dB dev| {max(r[9] for r in sel):.1e}")
    load1 = os.getloadavg()
    print(f"load average (1, 5, 15 min): before {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f}, "
          f"after {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f} on {os.cpu_count()} CPUs")

if __name__ == "__main__":
    main()

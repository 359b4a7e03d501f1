#!/usr/bin/env python3
"""What the measurements and the fingerprint add to a decode worker's work, per window.

A decode worker decodes, downmixes, resamples and computes the log-mel of every window
(indexer.audio.iter_windows + LogMelFrontend). With the analysis it also feeds every native
block to indexer.measure.SoundMeter and every 48 kHz chunk to indexer.fingerprint. This
times both on the same files, interleaved, in CPU seconds of this process (one thread, as
a worker runs), and prints the extra next to the time of one window of the model, measured
in the same run (full-size random checkpoint, fp32 and bf16 when the CPU runs it):

    python scripts/bench_measure.py [--files 6] [--seconds 30] [--reps 3]

The model runs on every thread beside the workers, so the extra CPU of the workers over
the model's time per window bounds what the measurements can cost the build.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

CKPT = Path.home() / ".cache" / "sfx-index-bench" / "clap-full-fused"


def make_files(folder: Path, n: int, seconds: float) -> list[Path]:
    import soundfile as sf

    rng = np.random.default_rng(0)
    kinds = [(48000, 2, "PCM_24"), (44100, 2, "PCM_16"), (96000, 2, "PCM_24"), (48000, 1, "FLOAT")]
    out = []
    for i in range(n):
        sr, ch, subtype = kinds[i % len(kinds)]
        t = np.arange(int(sr * seconds)) / sr
        env = np.exp(-((t % 2.0) * 3))  # hits every 2 s: dynamic like most effects
        x = env * (0.3 * np.sin(2 * np.pi * rng.uniform(80, 4000) * t) + 0.2 * rng.standard_normal(t.size))
        x = np.stack([x, np.roll(x, 11)], 1)[:, :ch]
        p = folder / f"f{i}.wav"
        sf.write(str(p), x.astype(np.float32), sr, subtype=subtype)
        out.append(p)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from indexer.analysis import StreamAnalysis
    from indexer.audio import iter_windows
    from indexer.mel import LogMelFrontend

    cfg = json.loads((CKPT / "preprocessor_config.json").read_text()) if CKPT.is_dir() else None
    if cfg is None:
        print(f"needs the full-size checkpoint in {CKPT} (scripts/make_random_clap.py)", file=sys.stderr)
        return 1
    frontend = LogMelFrontend.from_config(cfg)
    frontend.parallel = 1

    def worker(path: Path, analyse: bool) -> int:
        a = StreamAnalysis() if analyse else None
        kw = dict(on_block=a.on_block, on_mono=a.on_mono) if a else {}
        windows = [w.samples for w in iter_windows(path, **kw)]
        with torch.inference_mode():
            for i in range(0, len(windows), 8):
                frontend(torch.from_numpy(np.stack(windows[i:i + 8])))
        if a:
            a.result()
        return len(windows)

    with tempfile.TemporaryDirectory() as d:
        files = make_files(Path(d), args.files, args.seconds)
        for p in files[:2]:
            worker(p, True)
        plain, measured, windows = 0.0, 0.0, 0
        for _ in range(args.reps):
            for p in files:
                t = time.process_time()
                windows += worker(p, False)
                plain += time.process_time() - t
                t = time.process_time()
                worker(p, True)
                measured += time.process_time() - t
    per = 1000 / windows
    extra = (measured - plain) * per
    print(f"{args.files} files x {args.seconds:.0f} s (48/44.1/96 kHz stereo, 48 kHz mono), {args.reps} reps interleaved")
    print(f"worker per window: decode+frontend {plain * per:.1f} ms CPU; with measurements and fingerprint "
          f"{measured * per:.1f} ms (+{extra:.1f} ms, x{measured / plain:.2f})")

    from indexer.clap import ClapEncoder

    torch.set_num_threads(torch.get_num_threads() if torch.get_num_threads() > 1 else 2)
    for precision in ("fp32", "bf16"):
        enc = ClapEncoder.load(str(CKPT), device="cpu", precision=precision, parts=("audio",))
        mel = frontend(torch.from_numpy((0.1 * np.random.default_rng(1).standard_normal((8, 480000))).astype(np.float32))).numpy()
        enc.embed_mel(mel)
        t0, c0 = time.perf_counter(), time.process_time()
        enc.embed_mel(mel)
        wall, cpu = (time.perf_counter() - t0) / 8, (time.process_time() - c0) / 8
        print(f"model {enc.precision} batch 8, same run: {1000 * wall:.0f} ms per window wall, {1000 * cpu:.0f} ms CPU; "
              f"the analysis adds {extra / (1000 * cpu):.1%} of the model's CPU per window")
    return 0


if __name__ == "__main__":
    sys.exit(main())

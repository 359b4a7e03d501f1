#!/usr/bin/env python3
"""What the measurements and the fingerprint add to a decode worker's work, per window.

A decode worker decodes, downmixes, resamples and computes the log-mel of every window
(indexer.audio.iter_windows + LogMelFrontend). With the analysis it also feeds every native
block to indexer.measure.SoundMeter and every 48 kHz chunk to indexer.fingerprint. This
times both on the same files, interleaved, in CPU seconds of this process (one thread, as
a worker runs), and prints the extra next to the time of one window of the model, measured
in the same run (full-size random checkpoint, fp32 and bf16 when the CPU runs it):

    python scripts/bench_measure.py [--files 6] [--seconds 30] [--reps 3] [--steady | --impacts] [--baseline REV]

The model runs on every thread beside the workers, so the extra CPU of the workers over
the model's time per window bounds what the measurements can cost the build. The time spent
in the meter (native blocks) and in the fingerprint (48 kHz chunks) is printed apart.
`--baseline REV` also times the measure and fingerprint modules of an earlier commit
(`git show REV:indexer/...`), interleaved with the current ones on the same files: before
and after in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

CKPT = Path.home() / ".cache" / "sfx-index-bench" / "clap-full-fused"


class Timed:
    """A stream analysis (indexer.analysis.StreamAnalysis's listeners) built from a meter and a
    fingerprinter class, with the CPU seconds spent in each added to `spent`."""

    def __init__(self, meter_cls, fingerprinter_cls, spent: dict):
        self.meter_cls, self.meter, self.spent = meter_cls, None, spent
        self.fingerprint = fingerprinter_cls()

    def on_block(self, block, samplerate):
        t = time.process_time()
        if self.meter is None:
            self.meter = self.meter_cls(samplerate, block.shape[1])
        self.meter.add(block)
        self.spent["meter"] += time.process_time() - t

    def on_mono(self, chunk):
        t = time.process_time()
        self.fingerprint.add(chunk)
        self.spent["fingerprint"] += time.process_time() - t

    def result(self):
        t = time.process_time()
        self.meter.result()
        self.spent["meter"] += time.process_time() - t
        t = time.process_time()
        self.fingerprint.result().to_bytes()
        self.spent["fingerprint"] += time.process_time() - t


def baseline_modules(rev: str, folder: Path):
    """The meter and fingerprinter classes as they were at `rev`: that commit's analysis
    modules (`git show REV:indexer/...`) imported apart, as a package of their own, so that
    their relative imports (measure -> truepeak) find that commit's modules, not ours."""
    import importlib
    import subprocess

    pkg = folder / "bench_baseline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in ("measure", "truepeak", "fingerprint"):
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:indexer/{name}.py"],
                               capture_output=True, text=True)
        if shown.returncode == 0:  # truepeak.py did not exist before the meter's split
            (pkg / f"{name}.py").write_text(shown.stdout)
    sys.path.insert(0, str(folder))
    measure = importlib.import_module("bench_baseline.measure")
    fingerprint = importlib.import_module("bench_baseline.fingerprint")
    return measure.SoundMeter, fingerprint.Fingerprinter


def make_files(folder: Path, n: int, seconds: float, steady: bool = False, impacts: bool = False) -> list[Path]:
    """Hits every 2 s decaying like most effects; or, `steady`, a constant tone in noise (as
    scripts/bench_build.py's library: the dearest case for the true peak, no quiet part); or,
    `impacts`, hits that decay within ~0.5 s into digital silence (what 16-bit storage makes
    of a tail under its last step), as bench_build.py --library hits."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    kinds = [(48000, 2, "PCM_24"), (44100, 2, "PCM_16"), (96000, 2, "PCM_24"), (48000, 1, "FLOAT")]
    out = []
    for i in range(n):
        sr, ch, subtype = kinds[i % len(kinds)]
        t = np.arange(int(sr * seconds)) / sr
        env = 1.0 if steady else np.exp(-((t % 2.0) * (20 if impacts else 3)))
        x = env * (0.3 * np.sin(2 * np.pi * rng.uniform(80, 4000) * t) + (0.1 if steady else 0.2) * rng.standard_normal(t.size))
        x = np.stack([x, np.roll(x, 11)], 1)[:, :ch]
        if impacts:
            x[np.abs(x) < 2 ** -16] = 0.0
        p = folder / f"f{i}.wav"
        sf.write(str(p), x.astype(np.float32), sr, subtype=subtype)
        out.append(p)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steady", action="store_true", help="steady tones in noise instead of decaying hits")
    ap.add_argument("--impacts", action="store_true", help="hits that decay into digital silence")
    ap.add_argument("--baseline", metavar="REV", help="also time the analysis modules of this commit, interleaved")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from indexer.audio import iter_windows
    from indexer.fingerprint import Fingerprinter
    from indexer.measure import SoundMeter
    from indexer.mel import LogMelFrontend

    cfg = json.loads((CKPT / "preprocessor_config.json").read_text()) if CKPT.is_dir() else None
    if cfg is None:
        print(f"needs the full-size checkpoint in {CKPT} (scripts/make_random_clap.py)", file=sys.stderr)
        return 1
    frontend = LogMelFrontend.from_config(cfg)
    frontend.parallel = 1

    def worker(path: Path, classes, spent) -> int:
        a = Timed(*classes, spent) if classes else None
        kw = dict(on_block=a.on_block, on_mono=a.on_mono) if a else {}
        windows = [w.samples for w in iter_windows(path, **kw)]
        with torch.inference_mode():
            for i in range(0, len(windows), 8):
                frontend(torch.from_numpy(np.stack(windows[i:i + 8])))
        if a:
            a.result()
        return len(windows)

    with tempfile.TemporaryDirectory() as d:
        variants = {"plain": None, "current": (SoundMeter, Fingerprinter)}
        if args.baseline:
            variants["baseline " + args.baseline] = baseline_modules(args.baseline, Path(d))
        files = make_files(Path(d), args.files, args.seconds, args.steady, args.impacts)
        for p in files[:2]:
            for classes in variants.values():
                worker(p, classes, {"meter": 0.0, "fingerprint": 0.0})
        cpu = dict.fromkeys(variants, 0.0)
        spent = {k: {"meter": 0.0, "fingerprint": 0.0} for k in variants}
        windows = 0
        for rep in range(args.reps):
            for p in files:
                names = list(variants) if rep % 2 == 0 else list(variants)[::-1]
                for name in names:
                    t = time.process_time()
                    n = worker(p, variants[name], spent[name])
                    cpu[name] += time.process_time() - t
                windows += n
    per = 1000 / windows
    plain = cpu["plain"]
    extras = {name: (cpu[name] - plain) * per for name in list(variants)[1:]}
    print(f"{args.files} files x {args.seconds:.0f} s (48/44.1/96 kHz stereo, 48 kHz mono; "
          f"{'steady tones' if args.steady else 'impacts' if args.impacts else 'hits'}), {args.reps} reps "
          f"interleaved [load average {os.getloadavg()[0]:.1f}]")
    print(f"worker per window: decode+frontend {plain * per:.1f} ms CPU")
    for name in list(variants)[1:]:
        print(f"  with the analysis ({name}): {cpu[name] * per:.1f} ms (+{(cpu[name] - plain) * per:.1f} ms, "
              f"x{cpu[name] / plain:.2f}); inside it the meter {spent[name]['meter'] * per:.1f} ms, "
              f"the fingerprint {spent[name]['fingerprint'] * per:.1f} ms")

    from indexer.clap import ClapEncoder

    torch.set_num_threads(torch.get_num_threads() if torch.get_num_threads() > 1 else 2)
    for precision in ("fp32", "bf16"):
        enc = ClapEncoder.load(str(CKPT), device="cpu", precision=precision, parts=("audio",))
        mel = frontend(torch.from_numpy((0.1 * np.random.default_rng(1).standard_normal((8, 480000))).astype(np.float32))).numpy()
        enc.embed_mel(mel)
        t0, c0 = time.perf_counter(), time.process_time()
        enc.embed_mel(mel)
        wall, model_ms = (time.perf_counter() - t0) / 8 * 1000, (time.process_time() - c0) / 8 * 1000
        print(f"model {enc.precision} batch 8, same run: {wall:.0f} ms per window wall, {model_ms:.0f} ms CPU; "
              "the analysis adds " + ", ".join(f"{e / model_ms:.1%} ({name})" for name, e in extras.items())
              + " of the model's CPU per window")
    return 0


if __name__ == "__main__":
    sys.exit(main())

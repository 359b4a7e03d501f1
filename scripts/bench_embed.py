#!/usr/bin/env python3
"""Audio embedding speed of ClapEncoder: windows/s in fp32 and bf16 at batch sizes 1, 8, 32.

For each setting it times `embed_audio` end to end (our torch log-mel frontend + the model)
and the model step alone on the same mel, and prints the share of time spent outside the
model forward. The reference, measured in the same run, is the plain transformers path
(ClapFeatureExtractor + ClapModel.get_audio_features, fp32).

Without --model it uses the full-size random checkpoint (laion/clap-htsat-fused shapes),
generating it once into the user cache dir. Speed does not depend on the weights' values.

    python scripts/bench_embed.py [--model DIR] [--batch-sizes 1,8,32] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def default_checkpoint() -> Path:
    from platformdirs import user_cache_dir

    d = Path(user_cache_dir("sfx-index", appauthor=False)) / "random-clap-full-fused"
    if not (d / "model.safetensors").is_file():
        sys.path.insert(0, str(ROOT / "scripts"))
        from make_random_clap import make_random_clap

        print(f"generating the full-size random checkpoint in {d} ...", file=sys.stderr)
        make_random_clap(d, tiny=False, fused=True, seed=0)
    return d


def windows(n: int):
    import numpy as np

    rng = np.random.default_rng(0)
    t = np.arange(480_000) / 48_000
    w = [0.2 * np.sin(2 * np.pi * (200 + 50 * i) * t) + rng.normal(0, 0.05, t.size) for i in range(n)]
    return np.stack(w).astype(np.float32)


def timed(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


class ForwardClock:
    """Sums the wall time spent inside a module's forward (hooks), so one embed_audio call
    gives both its total and its model share."""

    def __init__(self, module):
        self.seconds = 0.0
        module.register_forward_pre_hook(self._start)
        module.register_forward_hook(self._stop)

    def _start(self, *_):
        self._t0 = time.perf_counter()

    def _stop(self, *_):
        self.seconds += time.perf_counter() - self._t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="checkpoint dir or HF id (default: generated full-size random)")
    p.add_argument("--batch-sizes", default="1,8,32")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--reps", type=int, default=1, help="timed repetitions per setting (best is kept)")
    args = p.parse_args(argv)

    import torch

    from indexer.clap import ClapEncoder, cpu_has_fast_bf16

    model = args.model or str(default_checkpoint())
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    data = windows(max(sizes))
    print(f"model {model}\ntorch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, fast bf16 flags: {cpu_has_fast_bf16()}")
    print(f"{'precision':>9} {'batch':>5} {'windows/s':>10} {'ms/window':>10} {'model ms/w':>11} {'outside model':>14}")

    for precision in args.precisions.split(","):
        enc = ClapEncoder.load(model, device="cpu", precision=precision, parts=("audio",))
        clock = ForwardClock(enc._audio_model())
        enc.embed_audio(data[:1])  # warm-up: allocator, oneDNN kernel selection
        for bs in sizes:
            w = data[:bs]
            enc.batch_size = bs
            best = (float("inf"), 0.0)
            for _ in range(args.reps):
                clock.seconds = 0.0
                t0 = time.perf_counter()
                enc.embed_audio(w)
                best = min(best, (time.perf_counter() - t0, clock.seconds))
            total, fwd = best
            print(f"{precision:>9} {bs:>5} {bs / total:>10.2f} {1000 * total / bs:>10.1f} "
                  f"{1000 * fwd / bs:>11.1f} {1 - fwd / total:>13.1%}")
        del enc

    # The reference: what a user of plain transformers would run (fp32).
    import numpy as np
    from transformers import ClapFeatureExtractor, ClapModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    from indexer.clap import resolve_checkpoint

    ckpt = resolve_checkpoint(model)
    fe = ClapFeatureExtractor.from_pretrained(ckpt)
    ref = ClapModel.from_pretrained(ckpt).eval()
    bs = 8 if 8 in sizes else sizes[0]
    w = [x.astype(np.float64) for x in data[:bs]]

    def reference():
        f = fe(w, sampling_rate=48_000, return_tensors="pt")
        with torch.inference_mode():
            ref.get_audio_features(input_features=f["input_features"],
                                   is_longer=torch.zeros(bs, 1, dtype=torch.bool))

    def reference_fe():
        fe(w, sampling_rate=48_000, return_tensors="pt")

    fe_t = timed(reference_fe, 1)
    total = timed(reference, 1)
    print(f"reference: ClapFeatureExtractor + ClapModel fp32, batch {bs}: {bs / total:.2f} windows/s, "
          f"{1000 * total / bs:.1f} ms/window, of which feature extraction {fe_t / total:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

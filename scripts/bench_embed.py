#!/usr/bin/env python3
"""Audio tower speed on each runtime, side by side in one run: torch bf16, torch at the precision
`auto` picks here, torch fp32, and OpenVINO (the export `--runtime openvino` uses).

Each round times the model step (`ClapEncoder.embed_mel` on the same precomputed log-mel batch,
the build's model call) for every variant in turn, so that a busy spell of a shared machine
falls on all of them; it prints each variant's windows/s (median and range over rounds), the
ratios to torch bf16 and to torch's default within each round (median and range), and each
variant's minimum cosine to torch fp32 on the batch. The end-to-end figure (our log-mel
frontend + model) and the plain transformers reference (ClapFeatureExtractor + ClapModel fp32)
follow once.

Without --model it uses the full-size random checkpoint (laion/clap-htsat-fused shapes) in
~/.cache/sfx-index-bench/clap-full-fused, generated once. Speed does not depend on the weights.

    python scripts/bench_embed.py [--model DIR] [--batch-size 8] [--rounds 7]
                                  [--variants torch-bf16,torch-auto,openvino] [--no-reference]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import indexer  # noqa: E402,F401  (the product's thread settings before numpy loads)

CKPT = Path.home() / ".cache" / "sfx-index-bench" / "clap-full-fused"


def default_checkpoint() -> Path:
    if not (CKPT / "model.safetensors").is_file():
        sys.path.insert(0, str(ROOT / "scripts"))
        from make_random_clap import make_random_clap

        print(f"generating the full-size random checkpoint in {CKPT} ...", file=sys.stderr)
        make_random_clap(CKPT, tiny=False, fused=True, seed=0)
    return CKPT


def windows(n: int):
    import numpy as np

    rng = np.random.default_rng(0)
    t = np.arange(480_000) / 48_000
    w = [0.2 * np.sin(2 * np.pi * (200 + 50 * i) * t) + rng.normal(0, 0.05, t.size) for i in range(n)]
    return np.stack(w).astype(np.float32)


def load_variant(model: str, name: str):
    """A ClapEncoder for a variant name: torch-bf16, torch-fp32, torch-auto, openvino[-int8]."""
    from indexer.clap import ClapEncoder

    runtime, _, precision = name.partition("-")
    enc = ClapEncoder.load(model, device="cpu", precision=precision or "auto", parts=("audio",), runtime=runtime)
    if enc.runtimes["audio"] != runtime:
        raise SystemExit(f"{name}: the encoder fell back to {enc.runtimes['audio']} (see the log above)")
    return enc


def describe(name: str, enc) -> str:
    tower = enc._ov.get("audio")
    if tower is not None:
        return f"{name} (OpenVINO, {tower.precision}, {tower.streams} streams x 1 thread)"
    return f"{name} (torch {enc.precision})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="checkpoint dir (default: the generated full-size random one)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--variants", default="torch-bf16,torch-auto,openvino")
    p.add_argument("--no-reference", action="store_true", help="skip the plain transformers reference")
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from indexer.clap import ClapEncoder, cpu_has_fast_bf16

    model = args.model or str(default_checkpoint())
    bs = args.batch_size
    data = windows(bs)
    print(f"model {model}\ntorch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"fast bf16 flags: {cpu_has_fast_bf16()}; batch {bs}, {args.rounds} interleaved rounds")
    print("load average %.2f %.2f %.2f" % os.getloadavg())

    fp32 = ClapEncoder.load(model, device="cpu", precision="fp32", parts=("audio",), runtime="torch")
    mel = fp32.frontend.mel(data).numpy()
    ref = fp32.embed_mel(mel)
    names = args.variants.split(",")
    t0 = time.perf_counter()
    encs = {n: load_variant(model, n) for n in names}
    print(f"variants loaded in {time.perf_counter() - t0:.1f} s (an OpenVINO export is made once per checkpoint)")
    fidelity = {}
    for n, enc in encs.items():
        enc.embed_mel(mel[:1])  # warm-up: kernel choice, allocator
        got = enc.embed_mel(mel)
        fidelity[n] = float((got * ref).sum(1).min())

    rates = {n: [] for n in names}
    for r in range(args.rounds):
        for n in names:
            t = time.perf_counter()
            encs[n].embed_mel(mel)
            rates[n].append(bs / (time.perf_counter() - t))
        print(f"  round {r + 1}: " + "  ".join(f"{n} {rates[n][-1]:.2f}" for n in names) + " windows/s")

    def ratio_line(a: str, b: str) -> str:
        rs = [x / y for x, y in zip(rates[a], rates[b])]
        wins = sum(x > 1 for x in rs)
        return (f"{a} / {b}: median {statistics.median(rs):.2f}x (range {min(rs):.2f}-{max(rs):.2f}, "
                f"faster in {wins} of {len(rs)} rounds)")

    print(f"\n{'variant':<56} {'windows/s median':>16} {'range':>13} {'min cos to torch fp32':>22}")
    for n in names:
        print(f"{describe(n, encs[n]):<56} {statistics.median(rates[n]):>16.2f} "
              f"{min(rates[n]):>6.2f}-{max(rates[n]):<6.2f} {fidelity[n]:>22.6f}")
    ov = [n for n in names if n.startswith("openvino")]
    for o in ov:
        for base in ("torch-bf16", "torch-auto", "torch-fp32"):
            if base in rates:
                line = ratio_line(o, base)
                goal = "  (goal >= 1.4x)" if base == "torch-bf16" else ""
                print(line + goal)
    print("load average %.2f %.2f %.2f" % os.getloadavg())

    # End to end (frontend + model) once per variant, same windows.
    print()
    for n, enc in encs.items():
        enc.batch_size = bs
        t = time.perf_counter()
        enc.embed_audio(data)
        total = time.perf_counter() - t
        print(f"embed_audio end to end (our log-mel + model), {n}: {bs / total:.2f} windows/s")

    if not args.no_reference:
        from transformers import ClapFeatureExtractor, ClapModel
        from transformers.utils import logging as hf_logging

        from indexer.clap import resolve_checkpoint

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        ckpt = resolve_checkpoint(model)
        fe = ClapFeatureExtractor.from_pretrained(ckpt)
        hf = ClapModel.from_pretrained(ckpt).eval()
        w = [x.astype(np.float64) for x in data]
        t = time.perf_counter()
        f = fe(w, sampling_rate=48_000, return_tensors="pt")
        with torch.inference_mode():
            hf.get_audio_features(input_features=f["input_features"], is_longer=torch.zeros(bs, 1, dtype=torch.bool))
        total = time.perf_counter() - t
        print(f"reference: ClapFeatureExtractor + ClapModel fp32, batch {bs}: {bs / total:.2f} windows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark labels by confirmation: how many yes/no answers a person gives before the head
reaches a macro-F1, with the page's selection (search.tagging.active) against random selection.

A library of labelled generated folders (CLASS/file.wav: tones, hums, noise, rumble, clicks,
sweeps up and down, tremolo) is indexed with a generated CLAP checkpoint. For each class as
the label, a simulated person answers the truth ("is it CLASS?") one file at a time:

- active: the page's order: until the answers hold 2 yes and 2 no, `select_cold` (the text
  search for the class name alternating with a round-robin over k-means clusters of the
  library; once 2 yes are in, the files least like them), then the top candidate of `select_next` (least
  sure and best, alternating), the head retrained after every answer as the page does;
- random: files in a random order (several seeds), the same head retrained after every answer.

After each answer the head (trained on the answers only) predicts every file; its binary
macro-F1 against the folders is the figure. Both strategies run in the same process on the
same vectors; the script prints answers-to-target per class and the F1 after 10/20/40 answers.

    .venv/bin/python scripts/bench_active.py                     # full-size random checkpoint
    .venv/bin/python scripts/bench_active.py --tiny --per-class 16 --target 0.8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_class_sound(cls: str, rng: np.random.Generator, sr: int = 48000) -> np.ndarray:
    dur = float(rng.uniform(1.5, 4.0))
    t = np.arange(int(sr * dur)) / sr
    amp = float(rng.uniform(0.2, 0.7))
    if cls == "tone":
        x = np.sin(2 * np.pi * rng.uniform(200, 3000) * t)
    elif cls == "hum":
        f = rng.uniform(50, 120)
        x = sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 7))
    elif cls == "noise":
        x = rng.standard_normal(len(t))
    elif cls == "rumble":
        x = np.cumsum(rng.standard_normal(len(t)))
        x -= np.convolve(x, np.ones(2001) / 2001, mode="same")
    elif cls == "clicks":
        x = np.zeros(len(t))
        x[:: max(1, int(sr * rng.uniform(0.05, 0.4)))] = 1.0
    elif cls in ("sweep_up", "sweep_down"):
        f0, f1 = rng.uniform(100, 500), rng.uniform(2000, 8000)
        if cls == "sweep_down":
            f0, f1 = f1, f0
        x = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * dur)))
    elif cls == "tremolo":
        x = np.sin(2 * np.pi * rng.uniform(300, 1500) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 12) * t))
    else:
        raise ValueError(cls)
    x = np.asarray(x, np.float64)
    return (amp * x / (np.abs(x).max() or 1.0)).astype(np.float32)


CLASSES = ["tone", "hum", "noise", "rumble", "clicks", "sweep_up", "sweep_down", "tremolo"]


def make_library(root: Path, per_class: int, seed: int = 0) -> None:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    for cls in CLASSES:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            sf.write(root / cls / f"{cls}_{i:03d}.wav", make_class_sound(cls, rng), 48000, subtype="PCM_16")


def macro_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, pred, average="macro", zero_division=0))


def simulate(X, truth, first_order, strategy, budget, rng=None):
    """F1 after each answer (0 until a head can be trained), for one label."""
    from search.tagging.active import can_train, explore_order, fit_head, positive_proba, select_cold, select_next

    answered = np.zeros(len(X), bool)
    picked: list[int] = []
    curve = []
    random_order = list(rng.permutation(len(X))) if strategy == "random" else None
    explore = explore_order(X) if strategy == "active" else None
    p = None
    for step in range(min(budget, len(X))):
        if strategy == "random":
            i = int(random_order[step])
        elif p is None:
            i = select_cold(X, picked, truth[picked], first_order, explore, 1)[0][0]
        else:
            i = select_next(p, answered, 1, best_first=len(picked) % 2 == 1)[0][0]
        answered[i] = True
        picked.append(i)
        y = truth[picked]
        if can_train(y):
            clf = fit_head(X[picked], y)
            p = positive_proba(clf, X)
            curve.append(macro_f1(truth, p >= 0.5))
        else:
            curve.append(0.0)
    return curve


def answers_to(curve, target) -> int | None:
    return next((i + 1 for i, f in enumerate(curve) if f >= target), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=24, help="files per class folder")
    ap.add_argument("--target", type=float, default=0.9, help="macro-F1 to reach")
    ap.add_argument("--budget", type=int, default=80, help="most answers a simulated person gives")
    ap.add_argument("--random-seeds", type=int, default=5)
    ap.add_argument("--tiny", action="store_true", help="the tiny test checkpoint instead of the full-size one")
    ap.add_argument("--work", type=Path, help="keep the library, checkpoint and index here (reused when present)")
    args = ap.parse_args()

    from indexer import pipeline
    from indexer.config import Settings
    from search.query import Library
    from search.tagging.heads import file_vectors

    spec = __import__("importlib.util").util.spec_from_file_location("mrc", ROOT / "scripts" / "make_random_clap.py")
    mrc = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(mrc)

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-active-"))
    lib_dir, index_dir = work / f"library-{args.per_class}", work / f"index-{args.per_class}-{'tiny' if args.tiny else 'full'}"
    ckpt = work / ("clap-tiny" if args.tiny else "clap-full")
    if not (ckpt / "model.safetensors").is_file():
        mrc.make_random_clap(ckpt, tiny=args.tiny, fused=True, seed=0)
    if not lib_dir.is_dir():
        make_library(lib_dir, args.per_class)
    settings = Settings(index_dir=index_dir, model=str(ckpt))
    t0 = time.perf_counter()
    pipeline.build(settings, [str(lib_dir)], workers=1, progress=False)
    print(f"library: {len(CLASSES)} classes x {args.per_class} files, indexed in {time.perf_counter() - t0:.1f} s "
          f"({'tiny' if args.tiny else 'full-size'} random checkpoint)", file=sys.stderr)

    with Library.from_settings(settings) as lib:
        fids, X = file_vectors(lib.catalog)
        files = lib.catalog.files_by_ids(fids.tolist())
        classes = np.array([Path(files[int(f)].rel).parts[0] for f in fids])
        pos = {int(f): i for i, f in enumerate(fids)}
        text_order = {c: [pos[r.file_id] for r in lib.search(c.replace("_", " "), n=len(fids), mode="semantic")]
                      for c in CLASSES}

    rows = []
    print(f"\nanswers to reach macro-F1 {args.target} (of {len(fids)} files; budget {args.budget}; "
          f"random: median of {args.random_seeds} seeds)")
    print(f"{'label':<11} {'active':>7} {'random':>7}  {'random range':>13}  F1@10/20/40 active | random")
    at = (10, 20, 40)
    ratios, marks = [], {k: ([], []) for k in at}
    for c in CLASSES:
        truth = classes == c
        act = simulate(X, truth, text_order[c], "active", args.budget)
        rnd = [simulate(X, truth, None, "random", args.budget, np.random.default_rng(s)) for s in range(args.random_seeds)]
        a_n = answers_to(act, args.target)
        r_ns = [answers_to(r, args.target) or args.budget + 1 for r in rnd]
        r_med = statistics.median(r_ns)
        for k in at:
            if len(act) >= k:
                marks[k][0].append(act[k - 1])
                marks[k][1].append(float(np.mean([r[k - 1] for r in rnd])))
        a_txt = str(a_n) if a_n else f">{args.budget}"
        r_txt = f"{r_med:g}" if r_med <= args.budget else f">{args.budget}"
        f_act = "/".join(f"{act[k - 1]:.2f}" for k in at if len(act) >= k)
        f_rnd = "/".join(f"{np.mean([r[k - 1] for r in rnd]):.2f}" for k in at if len(act) >= k)
        print(f"{c:<11} {a_txt:>7} {r_txt:>7}  {min(r_ns):>5}-{max(r_ns) if max(r_ns) <= args.budget else '>' + str(args.budget):<7}  "
              f"{f_act} | {f_rnd}")
        ratios.append((r_med if r_med <= args.budget else args.budget + 1) / (a_n or args.budget + 1))
    print(f"\nrandom/active answers (median over labels): {statistics.median(ratios):.2f}x "
          f"(values past the budget count as {args.budget + 1})")
    for k in at:
        if marks[k][0]:
            print(f"mean macro-F1 after {k:>2} answers: active {np.mean(marks[k][0]):.3f}  random {np.mean(marks[k][1]):.3f}")


if __name__ == "__main__":
    main()

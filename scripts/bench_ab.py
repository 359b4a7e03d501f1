#!/usr/bin/env python3
"""Interleaved before/after runs of bench_search.py and bench_noop.py on two checkouts.

    git worktree add /tmp/before d59fd39
    git worktree add /tmp/after HEAD
    python scripts/bench_ab.py --before /tmp/before --after /tmp/after --rounds 2 \
        --search-args "--reps 3 --warm-queries 30" --noop-args "--files 20000 --first-run-files 1000"

Each checkout runs its own copy of the benchmarks with its own code first on PYTHONPATH (the
scripts put their own tree first on sys.path and in their subprocesses' environment), so
the two differ only by the code. Runs alternate in ABBA order (before, after, after,
before, ...) so that a machine getting busier or quieter weighs on both alike; the machine
is shared, so only ratios of figures measured in the same session mean anything. Prints,
for each figure, every run's value, the medians and after/before, and writes the raw logs
and a JSON summary to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

# (label, regex on the benchmark's output, unit): the first group is the figure.
SEARCH_FIGURES = [
    ("cold sfx-search p50", r"sfx-search, cached text tower \(ours\)\s+p50 ([0-9.]+) s", "s"),
    ("cold floor import torch+transformers p50", r"floor `python -c 'import torch, transformers'`\s+p50 ([0-9.]+) s", "s"),
    ("hand-off 10k p50", r"(?s)\(10000 chunks\).*?handed to the server\s+p50 ([0-9.]+) s", "s"),
    ("hand-off 1M p50", r"(?s)\(1000000 chunks\).*?handed to the server\s+p50 ([0-9.]+) s", "s"),
    ("hand-off reference python -c pass p50", r"reference `python -c pass`\s+p50 ([0-9.]+) s", "s"),
    ("warm rank_files alone p50", r"rank_files alone \(.*?\)\s+p50\s+([0-9.]+) ms", "ms"),
    ("warm Library.search semantic p50", r"Library.search semantic, new text \(all included\)\s+p50\s+([0-9.]+) ms", "ms"),
    ("warm Library.search hybrid p50", r"Library.search hybrid \(default\), new text\s+p50\s+([0-9.]+) ms", "ms"),
    ("warm reference exact flat 1 thread p50", r"exact flat search alone, 1 thread\s+p50\s+([0-9.]+) ms", "ms"),
    ("warm text tower p50", r"our text tower \(.*?\)\s+p50\s+([0-9.]+) ms", "ms"),
    ("warm recall@10 vs exact", r"recall@10 of the text queries vs exact ([0-9.]+)", ""),
]
# Figures divided by a reference measured in the same run: these cancel most of the load a
# shared machine adds to one run and not another.
SAME_RUN_RATIOS = {
    "search": [("warm Library.search semantic / exact flat", "warm Library.search semantic p50",
                "warm reference exact flat 1 thread p50"),
               ("warm rank_files / exact flat", "warm rank_files alone p50", "warm reference exact flat 1 thread p50"),
               ("warm Library.search semantic / text tower", "warm Library.search semantic p50", "warm text tower p50"),
               ("cold sfx-search / floor", "cold sfx-search p50", "cold floor import torch+transformers p50"),
               ("hand-off 1M / python -c pass", "hand-off 1M p50", "hand-off reference python -c pass p50")],
    "noop": [("no-op rerun 2 / scan", "no-op rerun 2", "reference scan"),
             ("no-op rerun 2 / (scan + file_states)", "no-op rerun 2", None)],
}
NOOP_FIGURES = [
    ("first run files/s", r"first run: .*? ([0-9.]+) files/s with the tiny model", "files/s"),
    ("no-op rerun 1", r"no-op rerun 1: .*?: ([0-9.]+) s", "s"),
    ("no-op rerun 2", r"no-op rerun 2: .*?: ([0-9.]+) s", "s"),
    ("reference scan", r"references: scan of [0-9]+ files ([0-9.]+) s", "s"),
    ("reference file_states", r"file_states query ([0-9.]+) s", "s"),
]


def run_bench(tree: Path, script: str, args: str, log: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = [sys.executable, str(tree / "scripts" / script), *shlex.split(args)]
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    text = out.stdout + "\n--- stderr ---\n" + out.stderr
    log.write_text(f"$ PYTHONPATH={tree} {shlex.join(cmd)}\n# {time.perf_counter() - t:.0f} s, "
                   f"exit {out.returncode}\n{text}")
    if out.returncode != 0:
        raise SystemExit(f"{script} failed in {tree} (see {log}):\n{out.stderr[-2000:]}")
    return out.stdout


def figures(text: str, table) -> dict[str, float]:
    got = {}
    for label, pattern, _unit in table:
        m = re.search(pattern, text)
        if m:
            got[label] = float(m.group(1))
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="checkout of the code before")
    ap.add_argument("--after", type=Path, required=True, help="checkout of the code after")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each benchmark on each side")
    ap.add_argument("--search-args", default="", help="arguments for bench_search.py")
    ap.add_argument("--noop-args", default="", help="arguments for bench_noop.py")
    ap.add_argument("--skip", default="", help="comma-separated: search, noop")
    ap.add_argument("--out", type=Path, default=Path("bench-ab"), help="folder for the logs and summary")
    ap.add_argument("--from-logs", action="store_true", help="summarise the logs already in --out, run nothing")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    sides = {"before": args.before.resolve(), "after": args.after.resolve()}
    benches = [(name, script, a, table) for name, script, a, table in (
        ("search", "bench_search.py", args.search_args, SEARCH_FIGURES),
        ("noop", "bench_noop.py", args.noop_args, NOOP_FIGURES)) if name not in skip]
    results: dict = {b[0]: {"before": [], "after": []} for b in benches}
    print(f"A/B: before {sides['before']}, after {sides['after']}, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    for r in range(args.rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")  # ABBA
        for name, script, bench_args, table in benches:
            for side in order:
                log = args.out / f"{name}-{side}-{r + 1}.log"
                t = time.perf_counter()
                if args.from_logs:
                    text = log.read_text() if log.exists() else ""
                else:
                    text = run_bench(sides[side], script, bench_args, log)
                got = figures(text, table)
                if not got:
                    continue
                results[name][side].append(got)
                print(f"  round {r + 1} {name:6s} {side:6s} {time.perf_counter() - t:5.0f} s  "
                      f"load {os.getloadavg()[0]:.1f}  " + json.dumps(got), flush=True)
    summary = {}
    for name, _script, _a, table in benches:
        print(f"\n== {name}: medians over {args.rounds} runs a side (every run in brackets)")
        for label, _pattern, unit in table:
            b = [x[label] for x in results[name]["before"] if label in x]
            a = [x[label] for x in results[name]["after"] if label in x]
            if not a or not b:
                continue
            mb, ma = statistics.median(b), statistics.median(a)
            ratio = ma / mb if mb else float("nan")
            summary[f"{name}: {label}"] = dict(before=b, after=a, ratio=ratio, unit=unit)
            print(f"  {label:42s} before {mb:9.3f} {unit:7s} after {ma:9.3f} {unit:7s} after/before "
                  f"{ratio:5.2f}   [{', '.join(f'{x:g}' for x in b)}] -> [{', '.join(f'{x:g}' for x in a)}]")
        for label, num, den in SAME_RUN_RATIOS.get(name, []):
            per = {side: [x[num] / (x[den] if den else x["reference scan"] + x["reference file_states"])
                          for x in results[name][side] if num in x and (den is None or x.get(den))]
                   for side in ("before", "after")}
            if not per["before"] or not per["after"]:
                continue
            mb, ma = statistics.median(per["before"]), statistics.median(per["after"])
            summary[f"{name}: {label}"] = dict(before=per["before"], after=per["after"], ratio=ma / mb, unit="x")
            print(f"  {label:42s} before {mb:9.3f} x       after {ma:9.3f} x       after/before "
                  f"{ma / mb:5.2f}   [{', '.join(f'{x:.3g}' for x in per['before'])}] -> "
                  f"[{', '.join(f'{x:.3g}' for x in per['after'])}]")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nlogs and summary.json in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Kill -9 trials of `sfx-index build` (DESIGN.md invariant 5, issues 3 and 8).

A generated library of short files is indexed once without interruption (the reference). Then
each trial starts a real `sfx-index build` subprocess on a fresh index with many small commits
(`--batch-size 2`, SFX_COMMIT_EVERY_S=0), SIGKILLs it at a random moment, optionally kills the
rerun too, and finally reruns to completion. Checked after every kill and at the end:

- right after a kill: SQLite integrity is ok and every file the catalog holds as indexed has
  exactly the reference chunks and vectors (a commit is all of a file or nothing);
- at the end: files, statuses, failure reasons, chunks and vectors by path equal the reference,
  and `sfx-index check` is clean; no decode worker outlives its build.

Kills alternate between the whole process group (like a power cut: parent and workers die
together) and the parent alone (its decode workers are orphaned and must exit by themselves).

    python scripts/crash_trials.py --trials 20 [--files 40] [--seed 0] [--model DIR] [--keep DIR]

Prints one line per trial and a summary (trials, kills, kill times, mismatches); exit 1 on any
mismatch. tests/test_crash.py runs a reduced count through `run_trials`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

VEC_ATOL = 1e-5


# ------------------------------------------------------------------ library


def make_library(root: Path, n_files: int = 40, seed: int = 0) -> dict[str, str]:
    """Short files in mixed formats and rates, a few multi-window ones, two duplicates, two bad files.

    Returns rel -> expected status ("ok" or "failed").
    """
    import numpy as np

    import audiogen

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    expect: dict[str, str] = {}
    kinds = ["sine", "noise", "clicks", "sweep"]
    exts = ["wav", "wav", "flac", "aiff", "wav"]
    for i in range(n_files):
        kind = kinds[i % len(kinds)]
        ext = exts[i % len(exts)]
        sr = [16000, 22050, 32000, 44100, 48000][i % 5]
        long = i % 9 == 4
        dur = float(rng.uniform(11.0, 24.0)) if long else float(rng.uniform(0.3, 2.5))
        if long:
            sr = 8000  # multi-window files stay cheap to decode
        kw = {"seed": i} if kind == "noise" else {"freq": 100 + 37 * i} if kind == "sine" else {}
        rel = f"{kind}/{i:03d}_{kind}.{ext}"
        audiogen.write_audio(root / rel, audiogen.SIGNALS[kind](sr, dur, **kw), sr)
        expect[rel] = "ok"
    for src, dst in (("noise/001_noise.wav", "dups/copy_of_001.wav"), ("sine/000_sine.wav", "dups/copy_of_000.wav")):
        if (root / src).exists():
            (root / dst).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / src, root / dst)
            expect[dst] = "ok"
    audiogen.write_bytes(root / "bad" / "truncated_header.wav", b"RIFF\x10\x00\x00\x00WAVEfmt ")
    audiogen.write_bytes(root / "bad" / "png_named.wav", audiogen.PNG_1PX)
    expect["bad/truncated_header.wav"] = expect["bad/png_named.wav"] = "failed"
    return expect


# ------------------------------------------------------------------ running builds


def sfx_index_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "sfx-index"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "indexer.cli"]


def build_env(model: Path) -> dict[str, str]:
    env = dict(os.environ)
    # fp32 by default so that "equals the uninterrupted build" is exact on any CPU; bf16 builds
    # are batch-independent too since 2d0c29a (CRASH_PRECISION=bf16 to try them).
    env.update(SFX_MODEL=str(model), HF_HUB_OFFLINE="1", SFX_COMMIT_EVERY_S="0", OMP_NUM_THREADS="1",
               SFX_PRECISION=os.environ.get("CRASH_PRECISION", "fp32"),
               SFX_NO_SERVER="1", PYTHONUNBUFFERED="1")
    env.pop("SFX_DATABASE_URL", None)
    return env


def start_build(index_dir: Path, library: Path, model: Path, log) -> subprocess.Popen:
    cmd = [*sfx_index_cmd(), "build", str(library), "--index", str(index_dir), "--batch-size", "2",
           "--workers", "1", "-q", "--json"]
    return subprocess.Popen(cmd, env=build_env(model), stdout=subprocess.PIPE, stderr=log, start_new_session=True)


def run_build(index_dir: Path, library: Path, model: Path, log, timeout: float = 600) -> dict:
    p = start_build(index_dir, library, model, log)
    out, _ = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"build exited {p.returncode}; see {getattr(log, 'name', 'the log')}")
    return json.loads(out)


def run_check(index_dir: Path, model: Path) -> tuple[bool, str]:
    p = subprocess.run([*sfx_index_cmd(), "check", "--index", str(index_dir)], env=build_env(model),
                       capture_output=True, text=True, timeout=300)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def catalog_progress(index_dir: Path) -> int:
    """Files with status ok in the catalog right now (read-only; 0 if there is no catalog yet)."""
    db = index_dir / "catalog.sqlite"
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM files WHERE status='ok'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def children_of(pid: int) -> list[int]:
    """All descendants of pid (from /proc), to find decode workers."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ------------------------------------------------------------------ comparing


def snapshot(index_dir: Path, model: Path) -> dict:
    """rel -> (status, error, content_hash, duration, rate, channels, chunks, vectors)."""
    from indexer.config import Settings
    from indexer.index import Index

    index = Index.open(Settings(index_dir=index_dir, model=str(model)))
    try:
        cat = index.catalog
        out = {}
        for root in cat.roots():
            states = cat.file_states(root.id)
            rows = cat.files_by_ids([s.id for s in states.values()])
            for rel, st in states.items():
                row = rows[st.id]
                chunks, vecs = cat.chunks_for(st.id)
                out[rel] = (
                    row.status, row.error, row.content_hash, row.duration_s, row.sample_rate, row.channels,
                    [(c.idx, round(c.start_s, 4), round(c.end_s, 4)) for c in chunks], vecs,
                )
        return out
    finally:
        index.close()


def compare(got: dict, ref: dict, *, partial: bool = False) -> tuple[list[str], float]:
    """Mismatches of `got` against the reference (partial: a subset of indexed files is fine)."""
    import numpy as np

    problems: list[str] = []
    worst = 0.0
    if not partial:
        for rel in sorted(ref.keys() - got.keys()):
            problems.append(f"missing {rel}")
    for rel in sorted(got.keys() - ref.keys()):
        problems.append(f"unexpected {rel}")
    for rel in sorted(got.keys() & ref.keys()):
        g, r = got[rel], ref[rel]
        if partial and g[0] == "failed" and r[0] == "ok":
            problems.append(f"{rel}: failed after a kill ({g[1]})")
            continue
        if g[:7] != r[:7]:
            diff = [i for i in range(7) if g[i] != r[i]]
            problems.append(f"{rel}: fields {diff} differ: {[g[i] for i in diff]} != {[r[i] for i in diff]}")
            continue
        if g[7].shape != r[7].shape:
            problems.append(f"{rel}: vectors {g[7].shape} != {r[7].shape}")
            continue
        if len(g[7]):
            d = float(np.abs(g[7] - r[7]).max())
            worst = max(worst, d)
            if d > VEC_ATOL:
                problems.append(f"{rel}: vectors differ by {d:.2e}")
    return problems, worst


def integrity(index_dir: Path) -> str:
    db = index_dir / "catalog.sqlite"
    if not db.exists():
        return "ok"  # killed before the catalog was created
    con = sqlite3.connect(str(db))
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


# ------------------------------------------------------------------ trials


@dataclass
class TrialResult:
    trial: int
    kills: list[dict] = field(default_factory=list)  # {"t": s, "files_at_kill": n, "group": bool}
    mismatches: list[str] = field(default_factory=list)
    max_vec_diff: float = 0.0
    check_ok: bool = False
    orphans: int = 0
    seconds: float = 0.0


def kill_once(index_dir: Path, library: Path, model: Path, log, *, at: float | None, after_files: int | None,
              whole_group: bool, deadline_s: float) -> dict | None:
    """Start a build; SIGKILL it at `at` seconds or once `after_files` files are committed.

    Returns the kill record, or None when the build finished before the kill point.
    """
    p = start_build(index_dir, library, model, log)
    t0 = time.monotonic()
    while p.poll() is None:
        t = time.monotonic() - t0
        done = catalog_progress(index_dir) if after_files is not None else 0
        if (at is not None and t >= at) or (after_files is not None and done >= after_files) or t > deadline_s:
            kids = children_of(p.pid)
            if whole_group:
                os.killpg(p.pid, signal.SIGKILL)
            else:
                os.kill(p.pid, signal.SIGKILL)
            p.wait()
            rec = {"t": round(t, 2), "files_at_kill": catalog_progress(index_dir), "group": whole_group,
                   "workers": len(kids), "orphans": 0}
            if not whole_group:
                # Orphaned decode workers must notice and exit by themselves.
                end = time.monotonic() + 15
                while any(alive(k) for k in kids) and time.monotonic() < end:
                    time.sleep(0.2)
                left = [k for k in kids if alive(k)]
                rec["orphans"] = len(left)
                for k in left:  # do not leave them behind on the machine
                    try:
                        os.kill(k, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            return rec
        time.sleep(0.02)
    p.communicate()
    return None


def reference(library: Path, model: Path, work: Path, log) -> tuple[dict, float]:
    ref_dir = work / "reference-index"
    shutil.rmtree(ref_dir, ignore_errors=True)
    t0 = time.monotonic()
    run_build(ref_dir, library, model, log)
    seconds = time.monotonic() - t0
    ok, out = run_check(ref_dir, model)
    if not ok:
        raise RuntimeError(f"the reference index does not check clean: {out}")
    return snapshot(ref_dir, model), seconds


def run_trials(
    n: int, *, library: Path, model: Path, work: Path, seed: int = 0, plan: list[list[dict]] | None = None,
    ref: tuple[dict, float] | None = None, log_path: Path | None = None, echo=print,
) -> tuple[list[TrialResult], dict, float]:
    """n trials; `plan` (per trial, a list of kill specs {"at": s} or {"after_files": k}) overrides random."""
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    log_path = log_path or work / "builds.log"
    with open(log_path, "ab") as log:
        ref_snap, ref_s = ref or reference(library, model, work, log)
        n_ok = sum(1 for v in ref_snap.values() if v[0] == "ok")
        results = []
        for i in range(n):
            t0 = time.monotonic()
            index_dir = work / f"trial-{i:03d}"
            shutil.rmtree(index_dir, ignore_errors=True)
            res = TrialResult(i)
            specs = plan[i] if plan else [
                {"at": round(rng.uniform(0.5, ref_s * 0.9), 2)} for _ in range(rng.choice((1, 1, 2)))
            ]
            for j, spec in enumerate(specs):
                rec = kill_once(index_dir, library, model, log, at=spec.get("at"), after_files=spec.get("after_files"),
                                whole_group=(i + j) % 2 == 0, deadline_s=ref_s * 3 + 30)
                if rec is None:
                    res.kills.append({"t": spec.get("at"), "missed": True})
                    continue
                res.kills.append(rec)
                res.orphans += rec["orphans"]
                state = integrity(index_dir)
                if state != "ok":
                    res.mismatches.append(f"after kill {j}: integrity {state}")
                elif (index_dir / "catalog.sqlite").exists():
                    probs, _ = compare(snapshot(index_dir, model), ref_snap, partial=True)
                    res.mismatches += [f"after kill {j}: {p}" for p in probs]
            run_build(index_dir, library, model, log)
            probs, res.max_vec_diff = compare(snapshot(index_dir, model), ref_snap)
            res.mismatches += probs
            res.check_ok, out = run_check(index_dir, model)
            if not res.check_ok:
                res.mismatches.append(f"check: {out}")
            if res.orphans:
                res.mismatches.append(f"{res.orphans} decode workers outlived their killed build")
            res.seconds = round(time.monotonic() - t0, 1)
            results.append(res)
            kills = ", ".join(
                "missed" if k.get("missed") else f"{k['t']:.2f}s/{k['files_at_kill']}of{n_ok}{'' if k['group'] else ' parent-only'}"
                for k in res.kills
            )
            echo(f"trial {i:2d}: kills [{kills}] -> mismatches {len(res.mismatches)}, check {'ok' if res.check_ok else 'FAILED'}, "
                 f"max |dv| {res.max_vec_diff:.1e}, {res.seconds:.0f} s")
            for m in res.mismatches[:10]:
                echo(f"    {m}")
            if not res.mismatches:
                shutil.rmtree(index_dir, ignore_errors=True)
    return results, ref_snap, ref_s


def ensure_model(model: str | None, work: Path) -> Path:
    if model:
        return Path(model)
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_random_clap", REPO / "scripts" / "make_random_clap.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    d = work / "tiny-fused"
    if not (d / "model.safetensors").is_file():
        mod.make_random_clap(d, tiny=True, fused=True, seed=0)
    return d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--files", type=int, default=40, help="generated files in the library")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", help="checkpoint dir (default: a tiny random one made in the work dir)")
    ap.add_argument("--keep", help="work in this folder and keep it (default: a temp dir, removed at the end)")
    args = ap.parse_args(argv)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sfx-crash-"))
    try:
        model = ensure_model(args.model, work)
        library = work / "library"
        if not library.exists():
            make_library(library, args.files, args.seed)
        t0 = time.monotonic()
        results, ref_snap, ref_s = run_trials(args.trials, library=library, model=model, work=work, seed=args.seed)
        n_files = len(ref_snap)
        n_chunks = sum(len(v[6]) for v in ref_snap.values())
        kills = [k for r in results for k in r.kills if not k.get("missed")]
        bad = [r for r in results if r.mismatches]
        print()
        print(f"library: {n_files} files ({sum(1 for v in ref_snap.values() if v[0] == 'ok')} indexed, "
              f"{sum(1 for v in ref_snap.values() if v[0] == 'failed')} failed by design), {n_chunks} chunks; "
              f"uninterrupted build {ref_s:.1f} s")
        print(f"trials: {len(results)}; kill -9 delivered: {len(kills)} "
              f"({sum(1 for k in kills if k['group'])} whole group, {sum(1 for k in kills if not k['group'])} parent only); "
              f"missed (build already done): {sum(1 for r in results for k in r.kills if k.get('missed'))}")
        if kills:
            ts = sorted(k["t"] for k in kills)
            print(f"kill times (s after start): min {ts[0]:.2f}, median {ts[len(ts) // 2]:.2f}, max {ts[-1]:.2f}; "
                  f"files committed at kill: {sorted(k['files_at_kill'] for k in kills)}")
        print(f"orphaned workers left after a parent-only kill: {sum(r.orphans for r in results)}")
        print(f"max |vector - reference|: {max((r.max_vec_diff for r in results), default=0):.1e}")
        print(f"mismatches: {sum(len(r.mismatches) for r in results)} in {len(bad)} trials; "
              f"sfx-index check clean: {sum(r.check_ok for r in results)}/{len(results)}; "
              f"total {time.monotonic() - t0:.0f} s")
        return 1 if bad else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

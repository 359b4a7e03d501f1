"""Bounded loopback load on `sfx-search serve`: latency under concurrency, and memory that stays flat.

Starts the server as a subprocess (port 0, found through server.json), measures unloaded
latencies one request at a time (the reference), then runs --concurrency clients for
--duration seconds in two equal rounds, each client alternating a text search (a new text
most of the time, so the text tower runs) and a 64 KiB audio Range request of a random
result. Prints p50/p99 per kind and the server's RSS after warm-up and after each round,
then stops the server (SIGINT) and checks that server.json is gone.

    .venv/bin/python scripts/bench_serve.py                       # generated library, tiny model
    .venv/bin/python scripts/bench_serve.py --index ~/SFX/.index --model laion/clap-htsat-fused
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
WORDS = ("metal door wood glass rain wind thunder footsteps gravel creak slam scrape stone room distant close "
         "engine car crowd birds water splash fire crackle hum buzz whoosh impact hit crash bell").split()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def generated_index(tmp: Path) -> tuple[Path, Path]:
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    import audiogen
    from fixtures_clap import clap_checkpoints

    from indexer import pipeline
    from indexer.config import Settings

    model = clap_checkpoints(tmp / "clap")["fused"]
    lib = tmp / "library"
    rng = np.random.default_rng(0)
    for i in range(24):
        kind = ("sine", "noise", "clicks", "sweep")[i % 4]
        fmt = ("wav", "flac", "aiff", "ogg")[i % 4]
        dur = float(rng.uniform(1.0, 25.0))
        sig = getattr(audiogen, kind)(48000, dur, channels=1 + i % 2)
        audiogen.write_audio(lib / kind / f"{kind}_{i:02d}.{fmt}", sig, 48000)
    index = tmp / "index"
    pipeline.build(Settings(index_dir=index, model=str(model)), [str(lib)], workers=1, progress=False)
    return index, model


def start_server(index: Path, model: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "search.cli", "serve", "--index", str(index), "--port", "0"]
    if model:
        cmd += ["--model", str(model)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            info = json.loads((index / "server.json").read_text())
            if info["pid"] == proc.pid:
                url = f"http://{info['host']}:{info['port']}"
                httpx.get(url + "/api/files/1", timeout=5)
                return proc, url
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            pass
        if proc.poll() is not None:
            sys.exit(f"server exited: {proc.stderr.read()}")
        time.sleep(0.2)
    proc.kill()
    sys.exit("server did not start within 300 s")


def text(rng: random.Random) -> str:
    return " ".join(rng.sample(WORDS, rng.randint(2, 4)))


def one_search(client, q) -> tuple[float, list]:
    t = time.perf_counter()
    r = client.get("/api/search", params={"q": q, "n": 20})
    r.raise_for_status()
    return time.perf_counter() - t, r.json()["results"]


def one_range(client, fid: int, rng: random.Random) -> float:
    size = int(client.head(f"/api/files/{fid}/audio").headers["content-length"])
    a = rng.randrange(max(1, size - 65536))
    t = time.perf_counter()
    r = client.get(f"/api/files/{fid}/audio", headers={"Range": f"bytes={a}-{a + 65535}"})
    assert r.status_code == 206, r.status_code
    return time.perf_counter() - t


def pct(xs, q) -> str:
    return f"{np.percentile(np.asarray(xs) * 1000, q):7.1f}" if xs else "      -"


def load_round(url: str, ids: list[int], concurrency: int, seconds: float, seed: int) -> dict:
    lat = {"search": [], "range": []}
    errors = []
    stop = time.time() + seconds

    def worker(k: int):
        rng = random.Random(seed * 1000 + k)
        with httpx.Client(base_url=url, timeout=60) as c:
            while time.time() < stop:
                try:
                    q = text(rng) if rng.random() < 0.8 else "rain on a tin roof"
                    dt, _ = one_search(c, q)
                    lat["search"].append(dt)
                    lat["range"].append(one_range(c, rng.choice(ids), rng))
                except Exception as exc:  # count, keep going: the point is whether it keeps answering
                    errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat["errors"] = errors
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", type=Path, help="an existing index (default: generate a small one)")
    ap.add_argument("--model", help="checkpoint (default: the tiny random one with a generated index)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load, split in two rounds")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        index, model = (args.index, args.model) if args.index else generated_index(Path(tmp))
        t0 = time.perf_counter()
        proc, url = start_server(index, model)
        print(f"server {url} pid {proc.pid} ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        try:
            rng = random.Random(0)
            with httpx.Client(base_url=url, timeout=60) as c:
                _, rows = one_search(c, "warm up")
                ids = sorted({r["file_id"] for r in rows})
                ref = {"search (cached text)": [one_search(c, "rain on a tin roof")[0] for _ in range(20)],
                       "search (new text)": [one_search(c, text(rng) + f" {i}")[0] for i in range(20)],
                       "range 64 KiB": [one_range(c, rng.choice(ids), rng) for _ in range(20)]}
            rss0 = rss_mb(proc.pid)
            rounds, rss = [], [rss0]
            for seed in (1, 2):
                rounds.append(load_round(url, ids, args.concurrency, args.duration / 2, seed))
                rss.append(rss_mb(proc.pid))
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        gone = not (Path(index) / "server.json").exists()

    print(f"\nsfx-search serve under load: {args.concurrency} clients x {args.duration:g} s on loopback, "
          f"{os.cpu_count()} CPUs (shared)")
    print(f"{'':32}{'p50 ms':>8}{'p99 ms':>8}{'n':>7}")
    for name, xs in ref.items():
        print(f"{'unloaded ' + name:<32}{pct(xs, 50)} {pct(xs, 99)}{len(xs):>7}   (reference)")
    for i, lat in enumerate(rounds, 1):
        for kind in ("search", "range"):
            xs = lat[kind]
            print(f"{f'round {i}: {kind}':<32}{pct(xs, 50)} {pct(xs, 99)}{len(xs):>7}")
    errs = [e for r in rounds for e in r["errors"]]
    n_err = len(errs)
    s50 = np.percentile(rounds[1]["search"], 50) / np.percentile(ref["search (new text)"], 50) if rounds[1]["search"] else float("nan")
    print(f"loaded/unloaded search p50 ratio: {s50:.1f}x with {args.concurrency} clients (searches share one model lock)")
    print(f"errors: {n_err}" + (f" (first: {errs[0]})" if n_err else ""))
    print(f"server RSS: {rss[0]:.0f} MB after warm-up, {rss[1]:.0f} MB after round 1, {rss[2]:.0f} MB after round 2 "
          f"(growth {rss[2] - rss[0]:+.0f} MB)")
    print(f"server.json removed on exit: {'yes' if gone else 'NO'}")


if __name__ == "__main__":
    main()

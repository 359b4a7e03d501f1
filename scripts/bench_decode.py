"""Benchmark: streamed decode + downmix + resample + windowing (indexer.audio.iter_windows).

Shows that peak RSS does not grow with file length (1-minute vs 60-minute file, and
optionally a > 2 GB RF64), next to the reference of decoding the whole file at once
(sf.read + soxr.resample) measured in the same run, plus throughput in x realtime.

Each measurement runs in its own child process, because ru_maxrss is a high-water mark.
Generated files live in a temporary folder (default under /tmp) and are deleted at the end.

    python scripts/bench_decode.py [--minutes 1 60] [--rf64-gb 2.1] [--keep] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def child(mode: str, path: str) -> None:
    import numpy as np
    import soundfile as sf
    import soxr

    from indexer import audio, windowing

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    if mode == "stream":
        check = 0.0
        for w in audio.iter_windows(path):
            n += 1
            check += float(w.samples[::4800].sum())
    elif mode == "whole":
        x, sr = sf.read(path, dtype="float32", always_2d=True)
        x = x.mean(axis=1, dtype=np.float32)
        if sr != 48000:
            x = soxr.resample(x, sr, 48000, "HQ")
        n = len(windowing.window_starts(len(x) / 48000))
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    info = sf.info(path)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": mode, "windows": n, "wall_s": dt, "cpu_s": cpu, "audio_s": info.duration,
                      "base_rss_mb": base / 1024, "peak_rss_mb": peak / 1024}))


def run_child(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_file(path: Path, minutes: float, sr: int = 44100, channels: int = 2) -> Path:
    """Noise, written in 10 s blocks (the generator itself stays small)."""
    import numpy as np
    import soundfile as sf

    block = (0.3 * np.random.default_rng(0).standard_normal((sr * 10, channels))).clip(-1, 1).astype(np.float32)
    frames = int(minutes * 60 * sr)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=channels, subtype="PCM_16") as f:
        done = 0
        while done < frames:
            n = min(len(block), frames - done)
            f.write(block[:n])
            done += n
    return path


def make_big_rf64(path: Path, gigabytes: float, sr: int = 48000, channels: int = 2) -> Path:
    """A valid > 2 GB RF64 without writing gigabytes: patch the ds64 sizes, extend sparsely (zeros)."""
    import numpy as np
    import soundfile as sf

    sf.write(str(path), np.zeros((sr, channels), dtype=np.float32), sr, format="RF64", subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    assert raw[:4] == b"RF64" and raw[12:16] == b"ds64"
    data_pos = raw.index(b"data", 12)
    header = data_pos + 8
    block = 2 * channels
    data_size = int(gigabytes * 1e9) // block * block
    total = header + data_size
    struct.pack_into("<QQQ", raw, 20, total - 8, data_size, data_size // block)
    with open(path, "r+b") as f:
        f.write(raw[:header])
        f.truncate(total)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 60])
    ap.add_argument("--rf64-gb", type=float, default=2.1, help="size of the sparse RF64 case; 0 to skip")
    ap.add_argument("--no-whole", action="store_true", help="skip the whole-file reference for long files")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench_decode_", dir=args.tmp))
    rows = []
    try:
        cases = []
        for m in args.minutes:
            t = time.perf_counter()
            p = make_file(tmp / f"noise_{m:g}min_44k1_stereo.wav", m)
            print(f"generated {p.name} ({p.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            cases.append((f"{m:g} min WAV 44.1k stereo", p, not args.no_whole or m <= 1))
        if args.rf64_gb > 0:
            free = shutil.disk_usage(tmp).free
            if free > args.rf64_gb * 1e9 * 1.5:
                p = make_big_rf64(tmp / "big.rf64", args.rf64_gb)
                cases.append((f"{args.rf64_gb:g} GB RF64 48k stereo (sparse)", p, False))
            else:
                print("skipping the RF64 case: not enough free disk", file=sys.stderr)
        for label, p, whole in cases:
            r = run_child("stream", p)
            rows.append((label, "streamed iter_windows", r))
            if whole:
                rows.append((label, "whole file (reference)", run_child("whole", p)))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"{'file':34} {'method':24} {'audio':>9} {'windows':>8} {'peak RSS':>9} {'over base':>9} {'wall':>7} {'x realtime':>10} {'x rt/CPU':>9}")
    for label, method, r in rows:
        print(f"{label:34} {method:24} {r['audio_s'] / 60:8.1f}m {r['windows']:8d} {r['peak_rss_mb']:8.0f}M "
              f"{r['peak_rss_mb'] - r['base_rss_mb']:8.0f}M {r['wall_s']:6.1f}s {r['audio_s'] / r['wall_s']:9.0f}x {r['audio_s'] / max(r['cpu_s'], 1e-9):8.0f}x")
    streamed = [r for _, m, r in rows if m.startswith("streamed")]
    if len(streamed) >= 2:
        a, b = streamed[0], streamed[-1]
        print(f"\nstreamed peak RSS: {a['peak_rss_mb']:.0f} MB for {a['audio_s'] / 60:.0f} min vs "
              f"{b['peak_rss_mb']:.0f} MB for {b['audio_s'] / 60:.0f} min "
              f"({b['audio_s'] / a['audio_s']:.0f}x longer, RSS ratio {b['peak_rss_mb'] / a['peak_rss_mb']:.2f})")


if __name__ == "__main__":
    main()

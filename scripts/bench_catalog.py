#!/usr/bin/env python3
"""Benchmark the catalog side at 1 000 000 files (SQLite): status, filtered search, no-op rebuild.

    python scripts/bench_catalog.py [--n 1000000] [--workdir DIR] [--reps 3] [--skip status,search,build]
                                    [--baseline REV]

Makes (once; cached under ~/.cache/sfx-index-bench/catalog-1m, or catalog-N for another --n, or
--workdir) a real folder tree of N tiny but valid audio files (25 ms, 8 kHz; 70 % WAV with
distinct samples, the rest FLAC, AIFF, OGG and MP3 from 64 templates each) in a UCS-like
hierarchy VENDOR/CATEGORY/CatID/CatID_FXName_Creator_Source.ext (about 3 500 folders), and a
catalog describing exactly those files: same rel path, size, mtime_ns and content hash, so that
`sfx-index build ROOT` finds nothing to do. The catalog rows are written straight through the
catalog tables in bulk (files, chunks with random unit vectors in the stored dtype, file_meta
with UCS fields and some descriptions, files_fts, zero-shot tags on a fifth of the files); the
model record is the tiny random checkpoint's (scripts/make_random_clap.py --tiny), the vector
index is built by Index.rebuild_vectors. Durations, rates and channels in the catalog are
synthetic (log-normal durations, 1-8 chunks per file): the files on disk are 25 ms long.

Then times real command lines (the env the product reads: SFX_INDEX_DIR, SFX_MODEL,
SFX_NO_SERVER=1, HF_HUB_OFFLINE=1), medians of --reps runs, each beside a reference measured in
the same run:
  status   `sfx-index status` and `--json`     vs a bare sqlite3 count of files (Python start-up
                                                  included) and `python -c "import sqlalchemy"`
  search   `sfx-search ... --mode keyword` with --under/--ext/--min-duration/--max-duration/
           --sample-rate/--channels/--tag (the filter-only path: no model, no FAISS), and hybrid
           queries with filters (tiny text tower + FAISS)  vs `python -c "import torch, transformers"`
  build    `sfx-index build ROOT` with nothing changed  vs `find ROOT -type f | wc -l` and a Python
           os.walk + stat of the same tree
A summary says whether each stays "within seconds" (<= 10 s). --baseline REV times every product
command also on an older commit's code, interleaved with ours (the machine may be shared).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH = Path.home() / ".cache" / "sfx-index-bench"
CKPT = BENCH / "clap-tiny-fused"
PY = sys.executable
BIN = Path(PY).parent
DATA_VERSION = 1
WITHIN = 10.0  # "within seconds"

SR, FRAMES = 8000, 200
VENDORS = ["BoomLibrary", "SoundDogs", "ProSoundEffects", "HissAndARoar", "Sonniss", "FieldRec"]
EXTS = [("wav", 0.70), ("flac", 0.12), ("aif", 0.08), ("ogg", 0.05), ("mp3", 0.05)]
CREATORS = ["JD", "AK", "MS", "TL", "RB", "CW"]
WORDS = ("metal scraping stone door slam wood creak glass break rain roof thunder distant footsteps gravel "
         "wind howl fire crackle water drip cave engine idle pass crowd murmur chirp bark whoosh impact hit "
         "punch clang laser zap explosion debris servo motor beep click paper rustle cloth swish bell").split()


def load() -> str:
    return "load average %.1f %.1f %.1f" % os.getloadavg()


# ------------------------------------------------------------------ the tree on disk

def ucs_ids() -> list[tuple[str, str, str]]:
    import csv

    with open(ROOT / "data" / "taxonomies" / "ucs.csv", newline="") as f:
        return [(r["cat_id"], r["category"], r["subcategory"]) for r in csv.DictReader(f)]


def folders(seed: int = 0) -> list[tuple[str, str]]:
    """(folder rel, CatID): each CatID under 4-5 of the 6 vendors, about 3 500 leaf folders."""
    rng = np.random.default_rng(seed)
    out = []
    for cat_id, category, _sub in ucs_ids():
        for v in sorted(rng.choice(len(VENDORS), int(rng.integers(4, 6)), replace=False)):
            out.append((f"{VENDORS[v]}/{category.title()}/{cat_id}", cat_id))
    return out


def wav_bytes(samples: np.ndarray) -> bytes:
    data = len(samples) * 2
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SR, SR * 2, 2, 16)
            + b"data" + struct.pack("<I", data) + samples.tobytes())


def templates() -> dict[str, list[bytes]]:
    """64 small valid files per non-WAV format, made once with soundfile."""
    import soundfile as sf

    fmt = {"flac": ("FLAC", "PCM_16"), "aif": ("AIFF", "PCM_16"), "ogg": ("OGG", "VORBIS"), "mp3": ("MP3", None)}
    rng = np.random.default_rng(7)
    out = {}
    for ext, (f, sub) in fmt.items():
        out[ext] = []
        for _ in range(64):
            b = io.BytesIO()
            x = rng.uniform(-0.3, 0.3, FRAMES * 4).astype(np.float32)
            sf.write(b, x, SR, format=f, subtype=sub)
            out[ext].append(b.getvalue())
    return out


_TEMPLATES: dict[str, list[bytes]] = {}


def _write_folder(job) -> list[tuple]:
    """Write one leaf folder's files; (rel, size, mtime_ns, content hash, ext) per file."""
    lib, rel_dir, cat_id, start, count, seed = job
    global _TEMPLATES
    if not _TEMPLATES:
        _TEMPLATES = templates()
    rng = np.random.default_rng([seed, start])
    d = os.path.join(lib, rel_dir)
    os.makedirs(d, exist_ok=True)
    exts = rng.choice([e for e, _ in EXTS], count, p=[p for _, p in EXTS])
    samples = rng.integers(-8000, 8000, (count, FRAMES), dtype=np.int16)
    words = rng.choice(WORDS, (count, 2))
    out = []
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    for j in range(count):
        i = start + j
        ext = str(exts[j])
        name = (f"{cat_id}_{words[j][0].title()} {words[j][1].title()} {i:07d}_"
                f"{CREATORS[i % len(CREATORS)]}_{rel_dir.split('/', 1)[0]}.{ext}")
        data = wav_bytes(samples[j]) if ext == "wav" else _TEMPLATES[ext][i % 64]
        fd = os.open(os.path.join(d, name), flags, 0o644)
        try:
            os.write(fd, data)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        out.append((f"{rel_dir}/{name}", st.st_size, st.st_mtime_ns,
                    hashlib.blake2b(data, digest_size=16).hexdigest(), ext))
    return out


# ------------------------------------------------------------------ the catalog

class CatalogWriter:
    """Bulk rows for the catalog tables, as a build would leave them (synthetic audio facts)."""

    def __init__(self, cat, root_id: int, dim: int, dtype: str, seed: int):
        from indexer.catalog import tables as T

        self.cat, self.root_id, self.dim, self.dtype = cat, root_id, dim, dtype
        self.T = T
        self.rng = np.random.default_rng([seed, 99])
        self.fid = 0
        self.cid = 0
        self.counts = dict(files=0, chunks=0, meta=0, tags=0)
        self.ucs = {c: (cat, sub) for c, cat, sub in ucs_ids()}

    def write(self, rows: list[tuple]) -> None:
        from indexer.catalog.keywords import insert_keyword_rows, keyword_columns

        rng, n = self.rng, len(rows)
        dur = np.clip(rng.lognormal(math.log(4.0), 1.1, n), 0.2, 80.0)
        rate = rng.choice([48000, 44100, 96000], n, p=[0.6, 0.25, 0.15])
        chans = rng.choice([1, 2, 6], n, p=[0.4, 0.55, 0.05])
        nchunks = np.where(dur <= 10.0, 1, np.minimum(8, np.ceil((dur - 10.0) / 10.0).astype(int) + 1))
        vecs = rng.standard_normal((int(nchunks.sum()), self.dim), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        blobs = vecs.astype(np.float16 if self.dtype == "float16" else np.float32)
        tagged = rng.random(n) < 0.2
        described = rng.random(n) < 0.3
        files, chunks, meta, fts, tags = [], [], [], [], []
        k = 0
        now = time.time()
        for j, (rel, size, mtime_ns, h, ext) in enumerate(rows):
            self.fid += 1
            fid = self.fid
            d = float(dur[j])
            files.append(dict(id=fid, root_id=self.root_id, rel=rel, size=size, mtime_ns=mtime_ns, content_hash=h,
                              duration_s=round(d, 3), sample_rate=int(rate[j]), channels=int(chans[j]),
                              subtype="VORBIS" if ext == "ogg" else ("MPEG_LAYER_III" if ext == "mp3" else "PCM_24"),
                              container={"aif": "AIFF", "mp3": "MP3"}.get(ext, ext.upper()), status="ok",
                              error=None, indexed_at=now))
            for c in range(int(nchunks[j])):
                self.cid += 1
                start = min(10.0 * c, max(0.0, d - 10.0))
                chunks.append(dict(id=self.cid, file_id=fid, idx=c, start_s=start, end_s=start + 10.0,
                                   vector=blobs[k].tobytes()))
                k += 1
            name = rel.rsplit("/", 1)[1]
            cat_id, fx = name.split("_", 2)[:2]
            category, sub = self.ucs.get(cat_id, ("", ""))
            m = {"ucs.cat_id": cat_id, "ucs.category": category, "ucs.subcategory": sub, "ucs.fx_name": fx}
            if described[j]:
                m["bext.description"] = f"{fx.lower()} {sub.lower()} recorded close"
            meta += [dict(file_id=fid, key=key, value=v) for key, v in m.items()]
            fts.append((fid, keyword_columns(rel, m)))
            if tagged[j]:
                tags.append(dict(file_id=fid, label=f"{category} {sub}".title(), cat_id=cat_id,
                                 score=round(float(rng.uniform(0.3, 0.9)), 3), set_name="ucs", source="zero-shot",
                                 model="tiny", created_at=now))
        T = self.T
        with self.cat.transaction() as conn:
            conn.execute(T["files"].insert(), files)
            conn.execute(T["chunks"].insert(), chunks)
            conn.execute(T["file_meta"].insert(), meta)
            insert_keyword_rows(conn, self.cat.dialect, fts)
            if tags:
                conn.execute(T["tags"].insert(), tags)
        for key, v in (("files", files), ("chunks", chunks), ("meta", meta), ("tags", tags)):
            self.counts[key] += len(v)


def make_dataset(work: Path, n: int, seed: int = 0, procs: int = 2) -> dict:
    """The tree and its catalog under `work` (cached: remade only when missing or different)."""
    from multiprocessing import Pool

    from indexer.catalog import Catalog, ModelRecord
    from indexer.clap import load_frontend
    from indexer.config import Settings
    from indexer.index import Index

    lib, index_dir, stamp = work / "library", work / "index", work / "dataset.json"
    want = dict(v=DATA_VERSION, n=n, seed=seed, ckpt=str(CKPT))
    if stamp.exists():
        have = json.loads(stamp.read_text())
        if {k: have.get(k) for k in want} == want:
            return have
    if work.exists():
        print(f"removing the incomplete or different data set in {work} ...", file=sys.stderr)
        t = time.perf_counter()
        shutil.rmtree(work)
        print(f"  removed in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    lib.mkdir(parents=True)
    index_dir.mkdir(parents=True)
    if not (CKPT / "model.safetensors").is_file():
        sys.path.insert(0, str(ROOT / "scripts"))
        from make_random_clap import make_random_clap

        make_random_clap(CKPT, tiny=True, fused=True, seed=0)
    _fe, fp = load_frontend(str(CKPT))
    dim = int(json.loads((CKPT / "config.json").read_text()).get("projection_dim", 512))
    cat = Catalog.open(Settings(index_dir=index_dir, model=str(CKPT)).catalog_url, create=True)
    cat.ensure_model(ModelRecord.from_fingerprint(fp, dim))
    root = cat.add_root(lib)
    writer = CatalogWriter(cat, root.id, dim, cat.vector_dtype, seed)

    dirs = folders(seed)
    per = np.full(len(dirs), n // len(dirs))
    per[: n % len(dirs)] += 1
    starts = np.concatenate([[0], np.cumsum(per)[:-1]])
    jobs = [(str(lib), d, c, int(s), int(k), seed) for (d, c), s, k in zip(dirs, starts, per) if k]
    print(f"writing {n} files in {len(jobs)} folders with {procs} processes, and their catalog rows ...",
          file=sys.stderr)
    t0 = time.perf_counter()
    done, buf, last = 0, [], t0
    with Pool(procs) as pool:
        for rows in pool.imap(_write_folder, jobs, chunksize=4):
            buf += rows
            done += len(rows)
            if len(buf) >= 20_000:
                writer.write(buf)
                buf = []
            if time.perf_counter() - last > 30:
                last = time.perf_counter()
                print(f"  {done} files ({last - t0:.0f} s, {load()})", file=sys.stderr)
    if buf:
        writer.write(buf)
    t_files = time.perf_counter() - t0
    cat.bump_generation()
    cat.close()
    t1 = time.perf_counter()
    idx = Index.open(Settings(index_dir=index_dir, model=str(CKPT)))
    vi = idx.rebuild_vectors(save=True)
    idx.close()
    t_vec = time.perf_counter() - t1
    db = index_dir / "catalog.sqlite"
    info = dict(want, folders=len(jobs), files_and_catalog_s=round(t_files, 1), vectors_s=round(t_vec, 1),
                factory=vi.meta.get("factory"), catalog_bytes=db.stat().st_size,
                faiss_bytes=(index_dir / "vectors.faiss").stat().st_size, **writer.counts,
                made=time.strftime("%Y-%m-%d %H:%M"), load=load())
    stamp.write_text(json.dumps(info, indent=1))
    print(f"  tree + catalog {t_files:.0f} s ({n / t_files:.0f} files/s), vector index {vi.meta.get('factory')} "
          f"{t_vec:.0f} s", file=sys.stderr)
    return info


# ------------------------------------------------------------------ timing

def env_for(work: Path) -> dict:
    env = dict(os.environ, SFX_INDEX_DIR=str(work / "index"), SFX_MODEL=str(CKPT), SFX_NO_SERVER="1",
               HF_HUB_OFFLINE="1", SFX_CACHE_DIR=str(BENCH / "cache"), PYTHONPATH=str(ROOT))
    for k in ("SFX_DATABASE_URL", "SFX_TEXT_CACHE"):
        env.pop(k, None)
    return env


def run(cmd, env, *, shell=False, stderr=False):
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, shell=shell)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{cmd if shell else ' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()[-800:]}")
    return (dt, out.stdout, out.stderr) if stderr else (dt, out.stdout)


def timed(cmd, env, reps, *, shell=False) -> tuple[float, list[float], str]:
    times, out = [], ""
    for _ in range(reps):
        dt, out = run(cmd, env, shell=shell)
        times.append(dt)
    return statistics.median(times), times, out


BASE_ENV: dict | None = None  # --baseline REV: the same commands on that commit's code


def product(cmd, env, reps) -> tuple[float, list[float], str, float | None]:
    """Time a product command line; with --baseline, also on the baseline code, interleaved."""
    times, base, out = [], [], ""
    for _ in range(reps):
        dt, out = run(cmd, env)
        times.append(dt)
        if BASE_ENV is not None:
            base.append(run(baseline_cmd(cmd), BASE_ENV)[0])
    return statistics.median(times), times, out, (statistics.median(base) if base else None)


# The editable install's import hook would find the working tree before PYTHONPATH: the
# baseline runs through a launcher that drops it, then calls the command's main().
LAUNCHER = """import importlib, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
mod = sys.argv.pop(1)
sys.argv[0] = mod
importlib.import_module(mod).main()
"""
BASE_LAUNCHER: list[str] = []


def baseline_cmd(cmd: list[str]) -> list[str]:
    name = Path(cmd[0]).name
    if name in ("sfx-index", "sfx-search"):
        return [*BASE_LAUNCHER, "indexer.cli" if name == "sfx-index" else "search.cli", *cmd[1:]]
    return cmd


def export_baseline(rev: str, work: Path, env: dict) -> dict:
    code = work / f"code-{rev}"
    if not (code / "indexer" / "cli.py").exists():
        code.mkdir(parents=True, exist_ok=True)
        subprocess.run(f"git -C '{ROOT}' archive '{rev}' | tar -x -C '{code}'", shell=True, check=True)
    (code / "_launch.py").write_text(LAUNCHER)
    BASE_LAUNCHER[:] = [PY, str(code / "_launch.py")]
    benv = dict(env, PYTHONPATH=str(code))
    probe = code / "_where.py"  # a file, not -c: sys.path[0] is then the export, not the cwd
    probe.write_text(LAUNCHER.replace("importlib.import_module(mod).main()", "print(importlib.import_module(mod).__file__)"))
    where = run([PY, str(probe), "indexer.cli"], benv)[1].strip()
    if not where.startswith(str(code)):
        raise SystemExit(f"the baseline code is not the one imported ({where})")
    print(f"baseline {rev}: {where}")
    return benv


RESULTS: list[tuple[str, float, str, float | None]] = []


def line(label: str, med: float, times: list[float], ref: str, base: float | None = None) -> None:
    spread = f"[{min(times):.2f}-{max(times):.2f}]" if len(times) > 1 else ""
    before = f" (baseline {base:.2f} s)" if base is not None else ""
    print(f"  {label:<58} p50 {med:6.2f} s {spread:<13}{before}  | {ref}")
    RESULTS.append((label, med, ref, base))


def bench_status(env, reps, db: Path) -> None:
    print(f"\n== status ({load()})")
    count = (f"import sqlite3; c = sqlite3.connect('file:{db}?mode=ro', uri=True); "
             "print(c.execute('SELECT count(*) FROM files').fetchone()[0])")
    ref, ref_t, out = timed([PY, "-c", count], env, reps)
    imp, imp_t, _ = timed([PY, "-c", "import sqlalchemy, numpy, click"], env, reps)
    refs = f"ref: sqlite3 count(*) of {out.strip()} files {ref:.2f} s; import sqlalchemy+numpy+click {imp:.2f} s"
    for args in (["status"], ["status", "--json"]):
        m, ts, out, b = product([str(BIN / "sfx-index"), *args], env, reps)
        line("sfx-index " + " ".join(args), m, ts, refs, b)
    st = json.loads(out)
    print(f"    counts {st['counts']}; vectors {st['vectors']['kind']} {st['vectors']['ntotal']}")


def bench_search(env, reps, lib: Path) -> None:
    print(f"\n== sfx-search with filters ({load()})")
    floor, floor_t, _ = timed([PY, "-c", "import torch, transformers"], env, reps)
    imp, imp_t, _ = timed([PY, "-c", "import sqlalchemy, numpy, click"], env, reps)
    ss = str(BIN / "sfx-search")
    leaf = next(p for p in sorted(lib.glob("*/Doors/DOORWood")))  # one CatID folder of one vendor
    kw = [ss, "door wood creak", "--mode", "keyword", "-n", "20", "--json"]
    cases = [
        ("keyword, no filter", kw),
        ("keyword --under VENDOR/CATEGORY/CatID", kw + ["--under", str(leaf)]),
        ("keyword --under VENDOR", kw + ["--under", str(lib / "BoomLibrary")]),
        ("keyword --ext flac", kw + ["--ext", "flac"]),
        ("keyword --min-duration 5 --max-duration 30", kw + ["--min-duration", "5", "--max-duration", "30"]),
        ("keyword --sample-rate 96000 --channels 2", kw + ["--sample-rate", "96000", "--channels", "2"]),
        ("keyword --tag DOORWood", kw + ["--tag", "DOORWood"]),
        ("keyword, all filters", kw + ["--under", str(lib / "BoomLibrary"), "--ext", "wav", "--min-duration", "1",
                                       "--max-duration", "60", "--sample-rate", "48000", "--channels", "2"]),
    ]
    hy = [ss, "door wood creak", "-n", "20", "--json"]
    hybrid = [
        ("hybrid, no filter", hy),
        ("hybrid --under VENDOR/CATEGORY/CatID", hy + ["--under", str(leaf)]),
        ("hybrid --ext wav (70 % of the files)", hy + ["--ext", "wav"]),
        ("hybrid --min-duration 5 --max-duration 30", hy + ["--min-duration", "5", "--max-duration", "30"]),
        ("hybrid --tag DOORWood", hy + ["--tag", "DOORWood"]),
    ]
    run(hy, env)  # the text tower export and text-vector cache are one-time costs: not measured
    for label, cmd in cases:
        m, ts, out, b = product(cmd, env, reps)
        line(label + f" ({len(json.loads(out))} rows)", m, ts, f"ref: import sqlalchemy+numpy+click {imp:.2f} s", b)
    for label, cmd in hybrid:
        m, ts, out, b = product(cmd, env, reps)
        line(label + f" ({len(json.loads(out))} rows)", m, ts, f"ref: import torch, transformers {floor:.2f} s", b)


def walk_stat(root: str) -> int:
    n = 0
    for d, _dirs, names in os.walk(root):
        for name in names:
            os.stat(os.path.join(d, name))
            n += 1
    return n


def bench_build(env, reps, lib: Path, db: Path) -> None:
    print(f"\n== no-op `sfx-index build ROOT` ({load()})")
    find, find_t, out_find = timed(f"find '{lib}' -type f | wc -l", env, reps, shell=True)
    walk, walk_t, _ = timed([PY, "-c", f"import sys; sys.path.insert(0, {str(ROOT / 'scripts')!r}); "
                             f"from bench_catalog import walk_stat; print(walk_stat({str(lib)!r}))"], env, reps)
    # One run through a probe that counts model loads (the no-op must load no weights).
    probe = ("import sys\nfrom indexer import clap\nloads = []\norig = clap.ClapEncoder.load\n"
             "clap.ClapEncoder.load = classmethod(lambda cls, *a, **k: loads.append(1) or orig.__func__(cls, *a, **k))\n"
             "from indexer.cli import main\nsys.argv = ['sfx-index', 'build', %r, '-q', '--json']\n"
             "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
             "print('PROBE', len(loads), 'torch' in sys.modules, file=sys.stderr)\n") % str(lib)
    dt, _stdout, err = run([PY, "-c", probe], env, stderr=True)
    probe_line = next((ln for ln in err.splitlines() if ln.startswith("PROBE")), "PROBE ? ?").split()
    size, mtime = db.stat().st_size, db.stat().st_mtime_ns
    m, ts, out, b = product([str(BIN / "sfx-index"), "build", str(lib), "-q", "--json"], env, reps)
    r = json.loads(out)
    line("sfx-index build ROOT (no-op)", m, ts,
         f"ref: `find ROOT -type f | wc -l` ({out_find.strip()} files) {find:.2f} s; os.walk+stat {walk:.2f} s", b)
    ok = r["new"] == r["changed"] == r["deleted"] == r["moved"] == r["windows"] == 0
    print(f"    report: {r['unchanged']} unchanged, {r['new']} new, {r['changed']} changed, {r['deleted']} deleted, "
          f"{r['windows']} windows, {r['seconds']} s inside Builder.run")
    print(f"    nothing re-embedded: {ok}; model loads in the probe run ({dt:.2f} s): {probe_line[1]}, torch imported: "
          f"{probe_line[2]}; catalog file untouched: {(size, mtime) == (db.stat().st_size, db.stat().st_mtime_ns)}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--workdir", type=Path)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--procs", type=int, default=2, help="processes writing the tree")
    p.add_argument("--skip", default="", help="comma-separated: status,search,build")
    p.add_argument("--baseline", metavar="REV", help="also time every product command on this commit's code "
                   "(git archive into the workdir), interleaved with ours: a before/after under the same load")
    args = p.parse_args(argv)
    work = args.workdir or BENCH / ("catalog-1m" if args.n == 1_000_000 else f"catalog-{args.n}")
    skip = set(filter(None, args.skip.split(",")))
    print(f"[{load()}] data set in {work}")
    info = make_dataset(work, args.n, procs=args.procs)
    print(f"data set: {info['files']} files in {info['folders']} folders, {info['chunks']} chunks, "
          f"{info['meta']} file_meta rows, {info['tags']} tags; catalog {info['catalog_bytes'] / 1e9:.2f} GB, "
          f"FAISS {info['factory']} {info['faiss_bytes'] / 1e6:.0f} MB; made in {info['files_and_catalog_s']} s "
          f"(tree + catalog) + {info['vectors_s']} s (vector index) [{info['load']}]")
    env = env_for(work)
    global BASE_ENV
    if args.baseline:
        BASE_ENV = export_baseline(args.baseline, work, env)
    db = work / "index" / "catalog.sqlite"
    lib = work / "library"
    if "status" not in skip:
        bench_status(env, args.reps, db)
    if "search" not in skip:
        bench_search(env, args.reps, lib)
    if "build" not in skip:
        bench_build(env, args.reps, lib, db)
    print(f"\n== summary: within seconds means <= {WITHIN:.0f} s ({load()})")
    for label, m, ref, b in RESULTS:
        before = f"   (baseline {b:.2f} s)" if b is not None else ""
        print(f"  {'ok  ' if m <= WITHIN else 'SLOW'} {m:6.2f} s  {label}{before}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

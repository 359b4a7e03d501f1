"""Near-duplicates: groups of files that are the same recording in another form.

Another format, sample rate, bit depth, channel layout, level, or with trimmed ends: each
group names the copy to keep and why, and how each other copy differs from it. Merely similar
sounds (two door slams, two takes, a loop and its variation) are not grouped.

How the decision is made (docs/hygiene.md says why it holds for any model weights):

1. candidates: every file's 33-value spectrum shape (level-invariant, from its fingerprint)
   and log duration, nearest neighbours in FAISS (exact up to APPROXIMATE_ABOVE files,
   inverted lists above); pairs whose shapes are further apart than MAX_SHAPE_DISTANCE are
   dropped. No model vector is used: they depend on the weights, and the fingerprint decides;
2. screen: `indexer.fpscreen.screen` drops, all pairs at once, those that fail at every
   alignment two conditions `match` requires (most look-alikes: they agree on half their bits);
3. confirmation: `indexer.fingerprint.match` on the two fingerprints (the bits of the actual
   samples, aligned for trims, level-invariant);
4. groups: connected components of the confirmed pairs; the keeper is the best copy by
   lossless over lossy, higher rate, higher bit depth, more channels, untrimmed (longer),
   richer metadata, older file, in that order.

    from search.duplicates import DupFile, find_groups
    groups = find_groups(files)      # files: DupFile rows (from the catalog, or made by hand)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from indexer.fingerprint import SAME_LENGTH_S, Fingerprint, Match, match
from indexer.fpscreen import screen

NEIGHBOURS = 8
MAX_SHAPE_DISTANCE = 0.35  # RMS over bands, in bels; copies measured <= 0.16, trims included
SAME_LENGTH_SHAPE_DISTANCE = 0.12  # re-encodes, resamples, gains, folds of one length: <= 0.061
DURATION_WEIGHT = 0.5  # how much a factor e in duration counts against the shape distance
MIN_SHORTER_SHARE = 0.2  # a file is not a trimmed copy of one five times its length
APPROXIMATE_ABOVE = 20000  # files; exact neighbours up to here
IVF_LISTS_PER_ROOT = 4  # inverted lists: 4 sqrt(files), 1 264 at 100 000
IVF_PROBES = 16
LEVEL_SHOWN_DB = 0.5
TRIM_SHOWN_S = 0.05

LOSSY = {"VORBIS": "OGG Vorbis", "OPUS": "Opus", "MPEG_LAYER_III": "MP3", "MPEG_LAYER_II": "MP2",
         "MPEG_LAYER_I": "MP1", "ALAW": "A-law", "ULAW": "u-law", "GSM610": "GSM", "IMA_ADPCM": "ADPCM",
         "MS_ADPCM": "ADPCM"}
DEPTH = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32, "DOUBLE": 64}
STANDARD_KBPS = (32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


@dataclass
class DupFile:
    """What the grouping needs to know of one file."""

    file_id: int
    path: str
    fingerprint: Fingerprint
    sample_rate: int | None = None
    channels: int | None = None
    subtype: str | None = None
    container: str | None = None
    size: int | None = None
    mtime_ns: int | None = None
    metadata_fields: int = 0
    duration_s: float | None = None

    @property
    def lossy(self) -> bool:
        return (self.subtype or "") in LOSSY

    @property
    def depth(self) -> int:
        return DEPTH.get(self.subtype or "", 0)

    @property
    def length_s(self) -> float:
        return self.duration_s if self.duration_s is not None else self.fingerprint.duration_s

    def describe_format(self) -> str:
        """e.g. "MP3 320k", "WAV 48 kHz/24-bit stereo", "FLAC 44.1 kHz/16-bit mono"."""
        if self.lossy:
            name = LOSSY[self.subtype or ""]
            kbps = self.kbps()
            return f"{name} {kbps}k" if kbps else name
        rate = f"{self.sample_rate / 1000:g} kHz" if self.sample_rate else "? kHz"
        depth = f"{self.depth}-bit" + (" float" if self.subtype in ("FLOAT", "DOUBLE") else "")
        chans = {1: "mono", 2: "stereo"}.get(self.channels or 0, f"{self.channels}ch")
        return f"{self.container or Path(self.path).suffix.lstrip('.').upper()} {rate}/{depth} {chans}"

    def kbps(self) -> int | None:
        """A lossy file's bit rate, estimated from its size (the nearest standard rate)."""
        if not self.size or not self.length_s:
            return None
        rate = self.size * 8 / self.length_s / 1000
        return min(STANDARD_KBPS, key=lambda k: abs(k - rate))


@dataclass
class Copy:
    file: DupFile
    difference: str  # how it differs from the keeper, e.g. "MP3 320k of x.wav, -6.0 dB"
    match: Match  # of this copy against the keeper


@dataclass
class Group:
    keeper: DupFile
    why: str  # why this copy is the one to keep
    copies: list[Copy] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "keep": {"path": self.keeper.path, "file_id": self.keeper.file_id, "format": self.keeper.describe_format()},
            "why": self.why,
            "copies": [
                {"path": c.file.path, "file_id": c.file.file_id, "format": c.file.describe_format(),
                 "difference": c.difference, "level_db": round(c.match.gain_db, 2),
                 "offset_s": round(c.match.offset_s(), 3), "bit_error_rate": round(c.match.ber, 4)}
                for c in self.copies
            ],
        }


# ---------------------------------------------------------------------- candidates


def candidate_pairs(files: Sequence[DupFile], neighbours: int = NEIGHBOURS) -> np.ndarray:
    """Index pairs (k, 2), i < j, sorted, worth confirming: near in spectrum shape and
    compatible in length."""
    import faiss

    n = len(files)
    if n < 2:
        return np.zeros((0, 2), np.int64)
    shapes = np.stack([f.fingerprint.shape for f in files]).astype(np.float32)
    dims = shapes.shape[1]
    # Squared L2 of the key = dims * (shape RMS distance)^2 + (DURATION_WEIGHT * ln ratio)^2 * dims.
    lengths = np.array([f.length_s for f in files], dtype=np.float64)
    logd = np.log(np.maximum(lengths, 1e-3)).astype(np.float32)[:, None]
    keys = np.ascontiguousarray(np.hstack([shapes, DURATION_WEIGHT * logd * math.sqrt(dims)]))
    if n > APPROXIMATE_ABOVE:
        # Inverted lists: a tenth of HNSW's CPU time at 100 000 files, and a copy (far nearer
        # than any look-alike) lies in one of the probed lists (docs/benchmarks.md).
        nlist = min(int(IVF_LISTS_PER_ROOT * math.sqrt(n)), n // 40)  # faiss wants 39 points a list
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(keys.shape[1]), keys.shape[1], nlist)
        index.cp.niter, index.cp.max_points_per_centroid, index.cp.seed = 10, 40, 1
        index.train(keys)
        index.nprobe = IVF_PROBES
    else:
        index = faiss.IndexFlatL2(keys.shape[1])
    index.add(keys)
    k = min(n, neighbours + 1)
    dist, idx = index.search(keys, k)
    limit = dims * MAX_SHAPE_DISTANCE ** 2
    i = np.repeat(np.arange(n), k)
    j, d = idx.ravel().astype(np.int64), dist.ravel()
    ok = (j >= 0) & (j != i) & (d <= limit)
    i, j, d = i[ok], j[ok], d[ok]
    a, b = np.minimum(i, j), np.maximum(i, j)
    la, lb = lengths[a], lengths[b]
    ok = np.minimum(la, lb) >= MIN_SHORTER_SHARE * np.maximum(la, lb)
    # Same length: no trim to explain a different spectrum.
    ok &= ~((np.abs(la - lb) <= SAME_LENGTH_S) & (d > dims * SAME_LENGTH_SHAPE_DISTANCE ** 2))
    return np.unique(np.stack([a[ok], b[ok]], axis=1), axis=0)


# ---------------------------------------------------------------------- grouping


def _rank(f: DupFile) -> tuple:
    """Larger is better: the order in which a keeper is chosen (see the module docstring)."""
    return (not f.lossy, f.sample_rate or 0, f.depth, f.channels or 0, round(f.length_s, 2),
            f.metadata_fields, -(f.mtime_ns or 0), -f.file_id)


_REASONS = (
    (lambda k, o: not k.lossy and o.lossy, "lossless over lossy"),
    (lambda k, o: (k.sample_rate or 0) > (o.sample_rate or 0), "higher sample rate"),
    (lambda k, o: k.depth > o.depth, "higher bit depth"),
    (lambda k, o: (k.channels or 0) > (o.channels or 0), "more channels"),
    (lambda k, o: k.length_s > o.length_s + TRIM_SHOWN_S, "untrimmed"),
    (lambda k, o: k.metadata_fields > o.metadata_fields, "richer metadata"),
    (lambda k, o: (k.mtime_ns or 0) < (o.mtime_ns or 0), "older file"),
)


def _why(keeper: DupFile, others: list[DupFile]) -> str:
    reasons = []
    for test, text in _REASONS:
        if any(test(keeper, o) for o in others) and text not in reasons:
            reasons.append(text)
    return f"{keeper.describe_format()}: " + (", ".join(reasons) if reasons else "the first indexed of equal copies")


def difference(keeper: DupFile, copy: DupFile, m: Match) -> str:
    """How copy differs from keeper, e.g. "MP3 320k of door.wav, -6.0 dB, 0.50 s shorter at the head"."""
    parts = []
    name = Path(keeper.path).name
    if copy.lossy:
        parts.append(f"{copy.describe_format()} of {name}")
    elif (copy.sample_rate, copy.depth, copy.container) != (keeper.sample_rate, keeper.depth, keeper.container):
        parts.append(f"{copy.describe_format()} of {name}")
    if (copy.channels or 0) < (keeper.channels or 0):
        parts.append("mono fold" if copy.channels == 1 else f"{copy.channels} of {keeper.channels} channels")
    if abs(m.gain_db) >= LEVEL_SHOWN_DB:
        parts.append(f"{m.gain_db:+.1f} dB")
    head = m.offset_s()  # the copy starts this far into the keeper
    tail = (keeper.length_s - copy.length_s) - head
    for amount, where in ((head, "head"), (tail, "tail")):
        if amount >= TRIM_SHOWN_S:
            parts.append(f"{amount:.2f} s shorter at the {where}")
        elif amount <= -TRIM_SHOWN_S:
            parts.append(f"{-amount:.2f} s longer at the {where}")
    if not parts:
        parts.append(f"same sound as {name}" + (" (identical format)" if copy.describe_format() == keeper.describe_format() else ""))
    return ", ".join(parts)


def find_groups(
    files: Sequence[DupFile],
    *,
    neighbours: int = NEIGHBOURS,
    progress: Callable[[Iterable], Iterable] | None = None,
    stage: Callable[[str], None] | None = None,
) -> list[Group]:
    """Near-duplicate groups of `files`, largest first (see the module docstring).

    `progress` wraps the pairs left for `match` (a tqdm bar); `stage` is told, in a few words,
    each bulk step as it starts, since those steps take most of a large library's time.
    """
    say = stage or (lambda _: None)
    usable = [f for f in files if f.fingerprint is not None and len(f.fingerprint.bits)]
    say(f"finding look-alikes among {len(usable)} fingerprinted files")
    pairs = candidate_pairs(usable, neighbours)
    # Most candidates are look-alikes: screened out in bulk, never a pair match could accept.
    say(f"screening {len(pairs)} candidate pairs")
    keep, hint_of = screen([f.fingerprint for f in usable], pairs)
    hints = {(int(pairs[k, 0]), int(pairs[k, 1])): lags for k, lags in hint_of.items()}
    pairs = pairs[keep]

    def lags(a: int, b: int) -> list[int]:  # the screen's alignments for match(a, b)
        return hints.get((a, b)) or [-lag for lag in hints.get((b, a), [])]

    parent = list(range(len(usable)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    matched: dict[tuple[int, int], Match] = {}  # what the union step found, for the descriptions
    it = progress(pairs.tolist()) if progress else pairs.tolist()
    for a, b in it:
        if root(a) == root(b):
            continue  # already joined through another pair
        m = match(usable[a].fingerprint, usable[b].fingerprint, lags(a, b))
        if m is not None:
            matched[a, b] = m
            parent[root(a)] = root(b)
    members: dict[int, list[int]] = {}
    for i in range(len(usable)):
        members.setdefault(root(i), []).append(i)
    groups = []
    for idx in members.values():
        if len(idx) < 2:
            continue
        ranked = sorted(idx, key=lambda i: _rank(usable[i]), reverse=True)
        keeper = usable[ranked[0]]
        others = [usable[i] for i in ranked[1:]]
        copies = []
        for i in ranked[1:]:
            o = usable[i]
            m = matched.get((ranked[0], i)) or match(keeper.fingerprint, o.fingerprint, lags(ranked[0], i))
            if m is None:  # joined through a third copy: describe it against that one's alignment
                m = Match(lag=0, ber=float("nan"), bits=0, gain_db=0.0)
            copies.append(Copy(o, difference(keeper, o, m), m))
        groups.append(Group(keeper, _why(keeper, others), copies))
    groups.sort(key=lambda g: (-len(g.copies), g.keeper.path))
    return groups

"""indexer.fpscreen: the bulk screen never rejects a pair that fingerprint.match accepts.

The screen tests, at every alignment at once, conditions that `match` itself requires; these
tests hold it to that on synthetic fingerprints (copies with flipped bits, trims at either end,
gains, silences, very short files) and on look-alikes, which it must mostly reject, and check
its alignment interval against a frame-by-frame count.
"""

from __future__ import annotations

import numpy as np

from indexer.fingerprint import MIN_COVER, Fingerprint, match
from indexer.fpscreen import Packed, cover_intervals, screen

HOP_S = 256 / 12000


def fingerprint(rng, frames: int, quiet: float = 0.0) -> Fingerprint:
    bits = rng.integers(0, 2 ** 32, frames, dtype=np.uint32)
    strong = rng.integers(0, 2 ** 32, frames, dtype=np.uint32) | rng.integers(0, 2 ** 32, frames, dtype=np.uint32)
    env = np.clip(np.cumsum(rng.normal(0, 1.5, frames)) - 25, -65, -3)
    env[rng.random(frames) < quiet] = -90  # silent frames: no usable bits
    return Fingerprint(bits, strong, (env * 100).astype(np.int16), rng.normal(0, 0.5, 33).astype(np.float32), frames * HOP_S)


def copy_of(rng, fp: Fingerprint, head: int = 0, tail: int = 0, flip: float = 0.03, gain_db: float = 0.0) -> Fingerprint:
    n = len(fp.bits)
    flips = np.zeros(n, np.uint32)
    for bit in range(32):
        flips |= (rng.random(n) < flip).astype(np.uint32) << np.uint32(bit)
    keep = slice(head, n - tail)
    return Fingerprint((fp.bits ^ flips)[keep], fp.strong[keep], (fp.energy_cdb[keep] + int(gain_db * 100)).astype(np.int16),
                       fp.shape, (n - head - tail) * HOP_S)


def test_no_pair_that_match_accepts_is_screened_out():
    rng = np.random.default_rng(3)
    fps, pairs = [], []
    for k in range(40):
        orig = fingerprint(rng, int(rng.integers(20, 400)), quiet=rng.choice([0.0, 0.3]))
        n = len(orig.bits)
        variants = [copy_of(rng, orig, gain_db=-6.0), copy_of(rng, orig, head=int(rng.integers(1, n // 8 + 2))),
                    copy_of(rng, orig, tail=int(rng.integers(1, n // 8 + 2)), flip=0.08),
                    copy_of(rng, orig, head=n // 3, tail=n // 3),  # a middle third: not covered, never a copy
                    fingerprint(rng, n)]  # a look-alike of the same length
        base = len(fps)
        fps += [orig, *variants]
        pairs += [(base, base + v) for v in range(1, 6)] + [(base + 1, base + 2), (base + 2, base + 3)]
    pairs = np.array(pairs)
    keep, _ = screen(fps, pairs)
    accepted = np.array([match(fps[i], fps[j]) is not None for i, j in pairs])
    assert accepted.sum() >= 100  # the copies: the test compares something
    assert not (accepted & ~keep).any()
    # Look-alikes are what it is for: nearly all of them never reach match.
    lookalike = np.array([j - i == 5 for i, j in pairs])
    assert keep[lookalike].mean() < 0.1


def test_no_pair_is_screened_out_in_either_order_or_when_short():
    rng = np.random.default_rng(8)
    fps, pairs = [], []
    for n in (1, 3, 12, 47, 48, 49, 96, 300):
        orig = fingerprint(rng, n)
        fps += [orig, copy_of(rng, orig, head=min(2, n - 1)), copy_of(rng, orig)]
        b = len(fps) - 3
        pairs += [(b, b + 1), (b + 1, b), (b, b + 2), (b + 2, b)]
    pairs = np.array(pairs)
    keep, _ = screen(fps, pairs)
    for (i, j), kept in zip(pairs, keep):
        if match(fps[i], fps[j]) is not None:
            assert kept, (len(fps[i].bits), len(fps[j].bits))


def test_the_alignment_interval_holds_every_lag_that_covers_the_shorter_file():
    rng = np.random.default_rng(5)
    fps = [fingerprint(rng, int(rng.integers(5, 120)), quiet=0.4) for _ in range(14)]
    pairs = np.array([(i, j) for i in range(len(fps)) for j in range(len(fps)) if i != j])
    lo, hi = cover_intervals(Packed(fps), pairs)
    for (i, j), a, b in zip(pairs, lo, hi):
        va, vb = fps[i].voiced, fps[j].voiced
        short, total = (vb, vb.sum()) if len(vb) <= len(va) else (va, va.sum())
        for lag in range(-len(vb) + 1, len(va)):
            i0, i1 = max(0, lag), min(len(va), len(vb) + lag)
            part = vb[i0 - lag:i1 - lag] if short is vb else va[i0:i1]
            if total and part.sum() >= MIN_COVER * total:
                assert a <= lag <= b, (i, j, lag, a, b)


def test_the_alignments_it_hands_on_hold_the_trim():
    rng = np.random.default_rng(11)
    fps, pairs, trims = [], [], []
    for k in range(10):
        orig = fingerprint(rng, int(rng.integers(100, 600)))
        head = int(rng.integers(3, 40))
        fps += [orig, copy_of(rng, orig, head=head, gain_db=3.0)]
        pairs += [(2 * k, 2 * k + 1), (2 * k + 1, 2 * k)]
        trims += [head, -head]
    keep, hints = screen(fps, np.array(pairs))
    assert keep.all()
    for k, trim in enumerate(trims):
        assert hints[k][0] == trim  # the best-agreeing lag is the trim, in either order
        assert match(fps[pairs[k][0]], fps[pairs[k][1]], hints[k]).lag == trim

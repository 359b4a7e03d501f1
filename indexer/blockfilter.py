"""A cascade of biquads (an IIR filter) run over blocks of samples as matrix products.

`scipy.signal.sosfilt` runs the recursion one sample at a time, each output waiting for the
one before: a few nanoseconds per sample and section, with no use of the vector units. The
same filter is linear and time-invariant, so over a block of L samples its output is exactly

    y_block = T x_block + G s        (T: L x L lower-triangular Toeplitz of the impulse
                                      response; G: the response to the block's start state s)
    s_next  = A^L s + K x_block      (A: the state matrix; K: where each input sample leaves
                                      the state at the block's end)

Every block's T x and K x are two BLAS products over all blocks and channels at once. The
start states follow from the K x by the same recursion one level up, over superblocks of SB
blocks, and that recursion is again a product (with the powers of A^(L*SB), a dense
lower-triangular matrix: no truncation). Only the states (4 numbers per channel and block)
are carried in float64; the products are float32. Against a float64 `sosfilt` the outputs
differ by a few parts in a million of the signal's largest output, as float32 `sosfilt`'s do.

The state is the direct form II transposed one that `sosfilt` carries in `zi` (section by
section, two values each), so a `BlockFilter` can take over from `sosfilt` mid-stream.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

BLOCK = 32  # samples per block (the T product costs BLOCK multiply-adds a sample)
SUPER = 32  # blocks per superblock
CHUNK = 1 << 16  # frames per pass: bounds the superblock matrix (CHUNK / (BLOCK * SUPER) superblocks)


def state_space(sos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(A, B, C, D) of a cascade of second-order sections in direct form II transposed, with
    the states in `sosfilt`'s `zi` order: (z1, z2) of section 0, then of section 1, ..."""
    sos = np.asarray(sos, dtype=np.float64)
    n = 2 * len(sos)
    a_mat, b_vec = np.zeros((n, n)), np.zeros(n)
    u_s, u_x = np.zeros(n), 1.0  # a section's input as a linear function of (states, x)
    for k, (b0, b1, b2, a0, a1, a2) in enumerate(sos / sos[:, 3:4]):
        y_s, y_x = b0 * u_s, b0 * u_x
        y_s[2 * k] += 1.0  # y = b0 u + z1
        a_mat[2 * k] = b1 * u_s - a1 * y_s  # z1' = b1 u - a1 y + z2
        a_mat[2 * k, 2 * k + 1] += 1.0
        b_vec[2 * k] = b1 * u_x - a1 * y_x
        a_mat[2 * k + 1] = b2 * u_s - a2 * y_s  # z2' = b2 u - a2 y
        b_vec[2 * k + 1] = b2 * u_x - a2 * y_x
        u_s, u_x = y_s, y_x
    return a_mat, b_vec, u_s, float(u_x)


class BlockFilter:
    """Filters (frames, channels) float32 blocks of one stream, the state carried between calls."""

    def __init__(self, sos: np.ndarray, channels: int):
        self._m = _design(np.asarray(sos, dtype=np.float64).tobytes())
        self.n, self.channels = self._m.n, int(channels)
        self.state = np.zeros((self.channels, self.n))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The filtered block, shaped (blocks, channels, BLOCK): block b, channel c holds outputs
        b*BLOCK .. b*BLOCK + BLOCK-1 of that channel; outputs past len(x) are to be ignored."""
        parts = [self._chunk(x[i:i + CHUNK]) for i in range(0, len(x), CHUNK)]
        if not parts:  # no frames: no output, the state as it was
            return np.zeros((0, self.channels, BLOCK), dtype=np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _chunk(self, x: np.ndarray) -> np.ndarray:
        L, S, n, ch = BLOCK, SUPER, self.n, self.channels
        frames = len(x)
        supers = -(-frames // (L * S))
        blocks = supers * S
        rows = np.zeros((blocks, ch, L), dtype=np.float32)
        full = frames // L
        rows[:full] = x[: full * L].reshape(full, L, ch).transpose(0, 2, 1)
        if frames % L:
            rows[full, :, : frames % L] = x[full * L:].T
        flat = rows.reshape(-1, L)
        u = (flat @ self._m.k32).astype(np.float64).reshape(supers, S, ch, n)
        u = u.transpose(0, 2, 1, 3).reshape(supers, ch, S * n)  # per superblock and channel
        v = (u.reshape(-1, S * n) @ self._m.to_super).reshape(supers, ch, n)
        m = supers * n
        starts = v.transpose(1, 0, 2).reshape(ch, m) @ self._m.across[:m, :m] + self.state @ self._m.carry[:, :m]
        starts = starts.reshape(ch, supers, n).transpose(1, 0, 2).reshape(-1, n)  # (supers*ch, n)
        blk = starts @ self._m.from_start + u.reshape(-1, S * n) @ self._m.within  # (supers*ch, S*n)
        blk = blk.reshape(supers, ch, S, n).transpose(0, 2, 1, 3).reshape(blocks, ch, n)
        y = flat @ self._m.t
        y += blk.reshape(-1, n).astype(np.float32) @ self._m.g
        # The state after the last real frame: its block's start state carried over r samples.
        b, r = divmod(frames, L)
        if r == 0:
            b, r = b - 1, L
        self.state = blk[b] @ self._m.powers[r].T + rows[b, :, :r].astype(np.float64) @ self._m.k[L - r:]
        return y.reshape(blocks, ch, L)


class _Design:
    """The matrices of one filter: they depend on its sections alone, so every stream (file)
    at one sample rate shares them."""

    def __init__(self, sos: np.ndarray):
        a_mat, b_vec, c_vec, d = state_space(sos)
        n, L, S = len(b_vec), BLOCK, SUPER
        self.n = n
        powers = [np.eye(n)]
        for _ in range(L):
            powers.append(a_mat @ powers[-1])
        self.powers = powers  # A^0 .. A^L (the state after a last, partial block)
        h = np.array([d] + [c_vec @ powers[i] @ b_vec for i in range(L - 1)])
        toeplitz = np.zeros((L, L))
        for i in range(L):
            toeplitz[i, : i + 1] = h[i::-1]
        self.t = np.ascontiguousarray(toeplitz.T, dtype=np.float32)  # a row of x @ t: zero-state outputs
        self.g = np.ascontiguousarray(np.stack([c_vec @ powers[i] for i in range(L)]).T, dtype=np.float32)
        self.k = np.stack([powers[L - 1 - j] @ b_vec for j in range(L)])  # (L, n)
        self.k32 = self.k.astype(np.float32)
        m_blk = [np.eye(n)]  # powers of A^L
        for _ in range(S):
            m_blk.append(powers[L] @ m_blk[-1])
        # A superblock's own state increment from its blocks' increments u_k: sum ML^(S-1-k) u_k.
        self.to_super = np.concatenate([m_blk[S - 1 - k].T for k in range(S)])  # (S*n, n)
        # Block k's start state from its superblock's start state and the blocks before it.
        self.from_start = np.concatenate([m_blk[k].T for k in range(S)], axis=1)  # (n, S*n)
        self.within = _lower_block_toeplitz(m_blk[:S], S)
        # Superblock j's start state: sum over i < j of MS^(j-1-i) v_i, plus MS^j times the
        # state the chunk starts in (MS = A^(L*S)), for every j of a chunk at once.
        count = -(-CHUNK // (L * S))
        m_sup = [np.eye(n)]
        for _ in range(count):
            m_sup.append(m_blk[S] @ m_sup[-1])
        self.across = _lower_block_toeplitz(m_sup[:count], count)
        self.carry = np.concatenate([m_sup[j].T for j in range(count)], axis=1)  # (n, count*n)


def _lower_block_toeplitz(powers: list[np.ndarray], count: int) -> np.ndarray:
    """(count*n, count*n): block (i, j) is powers[j-1-i].T for i < j, else zero; a row vector
    of per-step increments times it gives the state at the start of each step."""
    n = len(powers[0])
    out = np.zeros((count * n, count * n))
    for j in range(count):
        for i in range(j):
            out[i * n:(i + 1) * n, j * n:(j + 1) * n] = powers[j - 1 - i].T
    return out


@lru_cache(maxsize=16)
def _design(sos: bytes) -> _Design:
    return _Design(np.frombuffer(sos, dtype=np.float64).reshape(-1, 6))

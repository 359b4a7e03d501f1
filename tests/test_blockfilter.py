"""indexer.blockfilter: the K-weighting cascade run as block matrix products is the recursion
`scipy.signal.sosfilt` runs, to float32 precision, whatever the block sizes and the rate."""

import numpy as np
import pytest
from scipy.signal import sosfilt

from indexer.blockfilter import BLOCK, CHUNK, BlockFilter
from indexer.measure import k_weighting_sos


def _run(bf: BlockFilter, x: np.ndarray, sizes, rng) -> np.ndarray:
    out, at = [], 0
    while at < len(x):
        part = x[at:at + int(rng.choice(sizes))]
        y = bf(part)
        assert y.shape[1:] == (x.shape[1], BLOCK)
        out.append(y.transpose(0, 2, 1).reshape(-1, x.shape[1])[: len(part)])
        at += len(part)
    return np.concatenate(out)


@pytest.mark.parametrize("rate", [8000, 44100, 48000, 96000, 192000])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_block_filter_is_sosfilt(rate, channels):
    rng = np.random.default_rng(rate + channels)
    n = int(rate * 3.3)
    # Noise, a DC offset per channel (the 38 Hz high-pass's slow state) and a loud burst.
    x = rng.standard_normal((n, channels)) * 0.2 + rng.uniform(-0.4, 0.4, channels)
    x[n // 3:n // 3 + rate // 10] *= 4
    x = x.astype(np.float32)
    sos = k_weighting_sos(rate)
    want = sosfilt(sos, x.astype(np.float64), axis=0)
    bf = BlockFilter(sos, channels)
    got = _run(bf, x, [1, 7, BLOCK - 1, BLOCK, BLOCK + 1, 1000, CHUNK, CHUNK + 3, 3 * CHUNK], rng)
    assert np.abs(got - want).max() <= 3e-5 * np.abs(want).max()
    # The state carried is sosfilt's own (direct form II transposed, section by section).
    _, zf = sosfilt(sos, x.astype(np.float64), axis=0, zi=np.zeros((len(sos), 2, channels)))
    assert np.allclose(bf.state, zf.transpose(2, 0, 1).reshape(channels, -1), rtol=1e-4, atol=1e-5)


def test_block_filter_takes_over_mid_stream():
    """A filter started from sosfilt's state continues its output exactly as sosfilt would."""
    rng = np.random.default_rng(3)
    sos = k_weighting_sos(48000)
    x = rng.standard_normal((50_000, 2)).astype(np.float32)
    want = sosfilt(sos, x.astype(np.float64), axis=0)
    first, zf = sosfilt(sos, x[:20_000].astype(np.float64), axis=0, zi=np.zeros((2, 2, 2)))
    bf = BlockFilter(sos, 2)
    bf.state = zf.transpose(2, 0, 1).reshape(2, -1)
    assert bf(x[:0]).shape == (0, 2, BLOCK)  # an empty block changes nothing
    assert np.array_equal(bf.state, zf.transpose(2, 0, 1).reshape(2, -1))
    rest = bf(x[20_000:]).transpose(0, 2, 1).reshape(-1, 2)[:30_000]
    assert np.abs(rest - want[20_000:]).max() <= 3e-5 * np.abs(want).max()

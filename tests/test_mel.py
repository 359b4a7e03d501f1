"""LogMelFrontend against transformers' ClapFeatureExtractor itself (fused and unfused)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from indexer.mel import LogMelFrontend
from indexer.melfilters import mel_filter_bank

transformers = pytest.importorskip("transformers")
from transformers import ClapFeatureExtractor  # noqa: E402
from transformers.audio_utils import mel_filter_bank as hf_mel_filter_bank  # noqa: E402

SR = 48_000
N = 480_000
TOL_DB = 1e-3
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "bwf"
if not FIXTURES.is_dir():
    FIXTURES = Path("/work/shared/fixtures/bwf")

# The laion/clap-htsat-{fused,unfused} preprocessor_config.json (fused; unfused differs in
# truncation): the one scripts/make_random_clap.py writes into every test checkpoint.
def _laion_config() -> dict:
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "scripts" / "make_random_clap.py"
    spec = importlib.util.spec_from_file_location("make_random_clap", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return dict(mod.LAION_PREPROCESSOR_CONFIG)


LAION_CONFIG = _laion_config()


def repeatpad(x: np.ndarray, n: int = N) -> np.ndarray:
    """ClapFeatureExtractor's "repeatpad": tile int(n / len) times, then zero-pad."""
    if len(x) >= n:
        return x[:n]
    x = np.tile(x, int(n / len(x)))
    return np.pad(x, (0, n - len(x)))


def fixture_window() -> np.ndarray | None:
    sf = pytest.importorskip("soundfile")
    soxr = pytest.importorskip("soxr")
    path = FIXTURES / "smpl_alarm_citizen_loop1.wav"
    if not path.exists():
        return None
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if sr != SR:
        mono = soxr.resample(mono, sr, SR, quality="HQ")
    return repeatpad(mono.astype(np.float32))


def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    t = np.arange(N) / SR
    clicks = np.zeros(N)
    clicks[::12_000] = 1.0
    brown = np.cumsum(rng.standard_normal(N))
    brown -= brown.mean()
    sig = {
        # A loud pure tone puts bands ~140 dB under its peak: where a float32 STFT fails.
        "tone": 0.9 * np.sin(2 * np.pi * 1000.0 * t),
        "noise": 0.1 * rng.standard_normal(N),
        "silence": np.zeros(N),
        "clicks": clicks,
        "clipped": np.clip(4.0 * np.sin(2 * np.pi * 110.0 * t) + 0.2 * rng.standard_normal(N), -1.0, 1.0),
        "dc_offset": np.full(N, 0.5),
        "short_repeatpad": repeatpad(0.5 * np.sin(2 * np.pi * 700.0 * t[:30_000])),
        # A loud sweep: every frame tonal, at a different frequency.
        "sweep": 0.8 * np.sin(2 * np.pi * (100.0 * t + (18_000.0 - 100.0) / 20 * t * t)),
        # Brown noise: a steep spectrum puts the top bands ~140 dB under the frame energy.
        "brown": brown / np.abs(brown).max(),
    }
    real = fixture_window()
    if real is not None:
        sig["fixture"] = real
    return {k: v.astype(np.float32) for k, v in sig.items()}


@pytest.fixture(scope="module")
def sigs() -> dict[str, np.ndarray]:
    return signals()


@pytest.fixture(scope="module")
def reference(sigs) -> dict[str, dict[str, np.ndarray]]:
    """ClapFeatureExtractor's log-mel of every signal, per truncation (computed once: ~40 ms each)."""
    out = {}
    for truncation in ("fusion", "rand_trunc"):
        fe = ClapFeatureExtractor(frequency_min=50, frequency_max=14000, truncation=truncation)
        filters = fe.mel_filters if truncation == "fusion" else fe.mel_filters_slaney
        out[truncation] = {k: fe._np_extract_fbank_features(v.astype(np.float64), filters) for k, v in sigs.items()}
    return out


# "auto" is what runs; the others force each route for every signal, so that all stay
# within tolerance whatever the probe decides (float32 + redo must also cope with tones,
# the differenced route with white noise, whose low bands it amplifies the noise of).
PATHS = {"auto": None, "float32+redo": "float32", "diff+redo": "diff", "float64": "float64"}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("truncation", ["fusion", "rand_trunc"])
def test_parity_with_clap_feature_extractor(sigs, reference, truncation, path):
    frontend = LogMelFrontend.from_config({**LAION_CONFIG, "truncation": truncation})
    frontend.route = PATHS[path]

    names = list(sigs)
    got = frontend(torch.from_numpy(np.stack([sigs[k] for k in names])))
    assert got.dtype == torch.float32
    assert tuple(got.shape) == (len(names), 1001, 64)
    for i, name in enumerate(names):
        err = np.abs(got[i].numpy().astype(np.float64) - reference[truncation][name]).max()
        assert err < TOL_DB, f"{truncation}/{path}/{name}: max deviation {err:.2e} dB"
    assert (got[names.index("silence")] == -100.0).all()


@pytest.mark.parametrize("truncation", ["fusion", "rand_trunc"])
def test_probe_picks_the_cheapest_precise_route(sigs, truncation):
    frontend = LogMelFrontend.from_config({**LAION_CONFIG, "truncation": truncation})
    pad = torch.empty(N + frontend.n_fft)
    route = {k: frontend._routes(frontend._pad_into(torch.from_numpy(v), pad)[:: frontend.probe_stride])
             for k, v in sigs.items()}
    assert route["noise"] == route["clicks"] == "float32"
    # Energy at the bottom of the spectrum: differencing whitens it enough for float32.
    assert route["brown"] == "diff"
    assert route["tone"] == route["sweep"] == "float64"


def test_diff_frames_are_the_circular_difference_of_the_windowed_frames(sigs):
    frontend = LogMelFrontend.from_config(LAION_CONFIG)
    frames = frontend._pad_into(torch.from_numpy(sigs["brown"]), torch.empty(N + frontend.n_fft))[100:164]
    dframes = torch.zeros(frames.shape)
    torch.sub(frames[:, 1:], frames[:, :-1], out=dframes[:, 1:])
    got = frontend._diff_frames(frames, dframes, torch.empty(frames.shape)).double()
    v = frames.double() * frontend._window
    want = v - v.roll(1, dims=-1)
    # Rounded to float32 relative to the difference itself, not to the (much larger) frame:
    # that is what makes the differenced route precise.
    err = (got - want).abs().amax(-1) / want.abs().amax(-1)
    assert float(err.max()) < 1e-6
    assert float(want.abs().amax() / v.abs().amax()) < 0.1  # brown noise: the difference is small


def test_probe_energy_of_the_difference_by_parseval():
    frontend = LogMelFrontend.from_config(LAION_CONFIG)
    v = torch.randn(8, frontend.n_fft, dtype=torch.float64) * frontend._window
    pairs = torch.view_as_real(torch.fft.rfft(v)).square().flatten(-2).float()
    want = (v - v.roll(1, dims=-1)).square().sum(-1)
    torch.testing.assert_close((pairs @ frontend._diff_parseval).double(), want, rtol=1e-5, atol=0)


def test_diff_route_needs_a_filter_free_bin_zero():
    # frequency_min 0: the first filter touches bin 0, which differencing loses.
    frontend = LogMelFrontend.from_config({**LAION_CONFIG, "frequency_min": 0})
    if frontend.filters[0].any():
        assert frontend._diff_blocks is None
        frontend.route = "diff"
        assert frontend._routes(torch.zeros(4, frontend.n_fft)) == "float64"
    assert LogMelFrontend.from_config(LAION_CONFIG)._diff_blocks is not None


@pytest.mark.parametrize("truncation", ["fusion", "rand_trunc"])
def test_from_feature_extractor_matches_from_config(truncation):
    fe = ClapFeatureExtractor(frequency_min=50, frequency_max=14000, truncation=truncation)
    a = LogMelFrontend.from_feature_extractor(fe)
    b = LogMelFrontend.from_config({**LAION_CONFIG, "truncation": truncation})
    assert a.settings() == b.settings()
    expected = fe.mel_filters if truncation == "fusion" else fe.mel_filters_slaney
    np.testing.assert_array_equal(a.filters, expected)


@pytest.mark.parametrize(
    "norm, mel_scale, fmin, fmax, n_mels",
    [(None, "htk", 50, 14000, 64), ("slaney", "slaney", 50, 14000, 64), (None, "htk", 0, 14000, 64),
     ("slaney", "slaney", 0, 8000, 40), ("slaney", "slaney", 500, 24000, 128)],
)
def test_filter_bank_equals_transformers(norm, mel_scale, fmin, fmax, n_mels):
    ours = mel_filter_bank(513, n_mels, fmin, fmax, SR, norm=norm, mel_scale=mel_scale)
    ref = hf_mel_filter_bank(
        num_frequency_bins=513, num_mel_filters=n_mels, min_frequency=fmin, max_frequency=fmax,
        sampling_rate=SR, norm=norm, mel_scale=mel_scale,
    )
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_config_paths_pick_the_filter_family():
    fused = LogMelFrontend.from_config(LAION_CONFIG).settings()
    unfused = LogMelFrontend.from_config({**LAION_CONFIG, "truncation": "rand_trunc"}).settings()
    assert (fused["mel_scale"], fused["norm"]) == ("htk", None)
    assert (unfused["mel_scale"], unfused["norm"]) == ("slaney", "slaney")
    assert fused["f_min"] == 50.0 and fused["f_max"] == 14000.0
    # Missing keys take ClapFeatureExtractor's class defaults (frequency_min 0), unknown ones are ignored.
    bare = LogMelFrontend.from_config({"truncation": "fusion", "something_new": 1}).settings()
    assert bare["f_min"] == ClapFeatureExtractor().frequency_min
    json.dumps(fused)  # the catalog stores it as JSON


def test_batch_shape_and_independence(sigs):
    frontend = LogMelFrontend.from_config(LAION_CONFIG)
    rng = np.random.default_rng(7)
    # A tonal window (float64 route) and a brown one (float32 + many redone frames) among noise.
    batch = np.stack([sigs["tone"], sigs["noise"], sigs["clicks"], sigs["brown"]]
                     + [rng.standard_normal(N).astype(np.float32) * 0.3 for _ in range(4)])
    together = frontend(torch.from_numpy(batch))
    assert tuple(together.shape) == (8, 1001, 64)
    for i in (0, 2, 3, 5):
        alone = frontend(torch.from_numpy(batch[i : i + 1]))
        assert tuple(alone.shape) == (1, 1001, 64)
        # Windows are computed one by one from their own samples: identical, not just close.
        torch.testing.assert_close(alone[0], together[i], rtol=0, atol=0)
    # numpy input and other lengths work; frames = 1 + L // hop
    assert tuple(frontend(batch[:2, :48_000]).shape) == (2, 101, 64)


def test_rejects_bad_shapes():
    frontend = LogMelFrontend.from_config(LAION_CONFIG)
    with pytest.raises(ValueError):
        frontend(torch.zeros(N))
    with pytest.raises(ValueError):
        frontend(torch.zeros(1, 100))


def test_import_does_not_import_transformers():
    code = "import sys, indexer.mel; assert 'transformers' not in sys.modules, 'transformers imported'"
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_runs_single_threaded_and_restores_torch_threads():
    frontend = LogMelFrontend.from_config(LAION_CONFIG)
    assert frontend.threads == 1
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        frontend(torch.zeros(1, 48_000))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

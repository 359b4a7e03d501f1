"""Measured sound (indexer.measure): loudness against pyloudnorm, peaks, clipping, DC, silences.

Signals are generated; the reference for loudness is pyloudnorm on the whole file, for the
rest a value computed here from the signal by the definition (or known by construction).
"""

from __future__ import annotations

import itertools

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from audiogen import write_audio
from indexer.audio import iter_windows
from indexer.measure import CLIP_LEVEL, KEYS, SoundMeter, measure_file
from indexer.truepeak import TAPS, TRUE_PEAK_FIR


def _feed(x: np.ndarray, sr: int, block: int = 65536):
    x = x if x.ndim == 2 else x[:, None]
    m = SoundMeter(sr, x.shape[1])
    for i in range(0, len(x), block):
        m.add(x[i:i + block].astype(np.float32))
    return m.result()


def _sine(sr, seconds, freq=1000.0, dbfs=-20.0, channels=1, phase=0.0):
    t = np.arange(int(round(sr * seconds))) / sr
    x = 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t + phase)
    return np.repeat(x[:, None], channels, axis=1)


def test_1khz_sine_reads_its_known_loudness():
    # BS.1770: a 0 dBFS 1 kHz sine in one channel reads -3.01 LUFS; two channels add 3.01 dB.
    mono = _feed(_sine(48000, 5.0, dbfs=-20.0), 48000)
    assert mono.loudness_lufs == pytest.approx(-23.01, abs=0.05)
    stereo = _feed(_sine(48000, 5.0, dbfs=-20.0, channels=2), 48000)
    assert stereo.loudness_lufs == pytest.approx(-20.0, abs=0.05)
    assert mono.sample_peak_dbfs == pytest.approx(-20.0, abs=0.01)


@pytest.mark.parametrize(
    "sr,channels,seconds,block",
    [(48000, 1, 4.0, 65536), (44100, 2, 6.3, 7919), (22050, 1, 0.45, 1000), (96000, 2, 2.7, 100000),
     (32000, 5, 2.05, 4096), (16000, 1, 1.0, 333)],
)
def test_integrated_loudness_matches_pyloudnorm_whole_file(sr, channels, seconds, block):
    rng = np.random.default_rng(sr + channels)
    t = np.arange(int(sr * seconds)) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t)  # a level that moves, so gating matters
    x = env[:, None] * (0.3 * np.sin(2 * np.pi * 700 * t)[:, None] + 0.1 * rng.standard_normal((len(t), channels)))
    x[: int(sr * 0.2)] *= 1e-4  # a near-silent head, below the absolute gate
    x = x.astype(np.float32)
    ours = _feed(x, sr, block)
    ref = pyloudnorm.Meter(sr).integrated_loudness(x.astype(np.float64))
    assert ours.loudness_lufs == pytest.approx(ref, abs=0.01)


def test_loudness_range_of_a_20_lu_step_matches_tech_3342_and_pyloudnorm():
    sr = 16000
    x = np.concatenate([_sine(sr, 20.0, dbfs=-20.0), _sine(sr, 20.0, dbfs=-30.0)])
    ours = _feed(x, sr)
    assert ours.loudness_range_lu == pytest.approx(10.0, abs=1.0)  # EBU Tech 3342 case 1 tolerance
    ref = pyloudnorm.Meter(sr).loudness_range(x.astype(np.float32).astype(np.float64))
    assert ours.loudness_range_lu == pytest.approx(ref, abs=0.5)


def test_short_files_have_null_loudness_and_range():
    r = _feed(_sine(48000, 0.3), 48000)
    assert r.loudness_lufs is None and r.loudness_range_lu is None
    assert r.sample_peak_dbfs == pytest.approx(-20.0, abs=0.01)
    assert _feed(_sine(48000, 2.0), 48000).loudness_range_lu is None  # under 3 s
    assert _feed(_sine(48000, 0.5), 48000).loudness_lufs is not None


def test_true_peak_finds_the_inter_sample_peak():
    # A sine at fs/4 sampled 45 degrees off its crest: every sample is at 0.707 of the crest,
    # so the sample peak reads 3.01 dB under the true peak (EBU Tech 3341's classic case).
    x = _sine(48000, 1.0, freq=12000.0, dbfs=-6.0, phase=np.pi / 4)
    r = _feed(x, 48000, block=4801)
    assert r.sample_peak_dbfs == pytest.approx(-6.0 - 3.01, abs=0.01)
    assert r.true_peak_dbtp == pytest.approx(-6.0, abs=0.25)
    # A slow sine: no inter-sample over, true peak = sample peak within the filter's ripple.
    slow = _feed(_sine(48000, 1.0, freq=997.0, dbfs=-1.0), 48000)
    assert slow.true_peak_dbtp == pytest.approx(-1.0, abs=0.05)
    assert slow.true_peak_dbtp >= slow.sample_peak_dbfs


def _true_peak_every_sample(x: np.ndarray) -> float:
    """The definition, with no bound and no skip: every output of every phase of the FIR (in
    float64), the stream starting from 11 zeros as the meter's does; never under the sample peak."""
    from numpy.lib.stride_tricks import sliding_window_view

    best = float(np.abs(x).max())
    fir = TRUE_PEAK_FIR[::-1].astype(np.float64)  # rows oldest-first, as the meter correlates
    for c in range(x.shape[1]):
        xe = np.concatenate([np.zeros(TAPS - 1), x[:, c].astype(np.float64)])
        best = max(best, float(np.abs(sliding_window_view(xe, TAPS) @ fir).max()))
    return 20 * np.log10(best)


@pytest.mark.parametrize("block", [65536, 4097, 7, 1000])
def test_true_peak_with_the_skips_equals_every_sample_computed(block):
    # Signals where the bounds skip most of the file and the peak is late: a crescendo of
    # noise (each segment louder than all before), and a quiet bed with, late, a burst whose
    # inter-sample peak is over its own samples and over an earlier louder-sampled click.
    # Blocks of 7 frames (under the filter's 11 frames of history) and odd sizes cross every
    # boundary case of the carried history.
    sr = 48000
    rng = np.random.default_rng(block)
    n = int(sr * 1.5)
    ramp = np.linspace(0.001, 0.5, n) ** 2
    crescendo = (ramp[:, None] * rng.standard_normal((n, 2))).clip(-0.95, 0.95)
    bed = 0.001 * rng.standard_normal((n, 3))
    bed[5000, 1] = 0.5  # a click: sample peak 0.5, true peak about the same
    t = np.arange(2400) / sr
    burst = 0.62 * np.sin(2 * np.pi * 12000 * t + np.pi / 4)  # samples at 0.44, crest 0.62
    bed[n - 9000:n - 6600, 2] += burst
    for x in (crescendo, bed):
        x = x.astype(np.float32)
        ours = _feed(x, sr, block=block)
        assert ours.true_peak_dbtp == pytest.approx(_true_peak_every_sample(x), abs=2e-3)
    assert _feed(bed.astype(np.float32), sr, block).true_peak_dbtp > 20 * np.log10(0.55)  # the burst won


def _runs_by_definition(x: np.ndarray) -> int:
    total = 0
    for c in range(x.shape[1]):
        for hot, run in itertools.groupby(np.abs(x[:, c]) >= CLIP_LEVEL):
            n = len(list(run))
            if hot and n >= 3:
                total += n
    return total


@pytest.mark.parametrize("block", [7, 100, 65536])
def test_clipped_samples_are_counted_across_blocks(block):
    x = np.clip(_sine(8000, 1.0, freq=50.0, dbfs=3.5, channels=2), -1, 1)
    x[:, 1] *= 0.5  # the second channel never clips
    x[100, 1] = 1.0  # a lone full-scale sample: a peak, not clipping
    x[200:202, 1] = -1.0  # two in a row: still not a run of three
    x[4000:4003, 1] = 1.0  # three: counted
    expected = _runs_by_definition(x.astype(np.float32))
    assert expected > 1000
    assert _feed(x, 8000, block).clipped_samples == expected
    assert _feed(_sine(8000, 1.0, dbfs=-0.5), 8000).clipped_samples == 0


def test_dc_offset_is_the_largest_channel_mean():
    x = _sine(48000, 1.0, freq=1000.0, dbfs=-12.0, channels=2)
    x[:, 0] += 0.05
    x[:, 1] -= 0.2
    assert _feed(x, 48000).dc_offset == pytest.approx(-0.2, abs=1e-4)
    assert abs(_feed(_sine(48000, 1.0), 48000).dc_offset) < 1e-6


def test_silences_and_digital_silence_through_a_file(tmp_path):
    sr = 44100
    burst = np.random.default_rng(0).uniform(-0.5, 0.5, (sr, 2))
    x = np.concatenate([np.zeros((sr // 2, 2)), burst, np.zeros((int(sr * 0.75), 2))])
    r = measure_file(write_audio(tmp_path / "s.wav", x, sr, subtype="PCM_24"))
    assert r.silence_head_s == pytest.approx(0.5, abs=2 / sr)
    assert r.silence_tail_s == pytest.approx(0.75, abs=2 / sr)
    quiet = measure_file(write_audio(tmp_path / "z.flac", np.zeros((sr, 1)), sr))
    assert quiet.sample_peak_dbfs is None and quiet.true_peak_dbtp is None and quiet.loudness_lufs is None
    assert quiet.silence_head_s == quiet.silence_tail_s == pytest.approx(1.0)
    assert quiet.clipped_samples == 0 and quiet.dc_offset == 0.0
    assert set(quiet.as_dict()) == set(KEYS)


def test_the_decode_stream_measures_what_a_whole_file_read_does(tmp_path):
    """Measured from the blocks iter_windows already decodes: native rate, all channels."""
    sr = 44100
    x = np.clip(_sine(sr, 12.5, freq=440.0, dbfs=1.0, channels=2), -1, 1) * np.array([1.0, 0.5])
    x[: sr // 4] = 0
    path = write_audio(tmp_path / "long.wav", x, sr, subtype="FLOAT")
    meter = SoundMeter(sr, 2)
    seen = []
    windows = list(iter_windows(path, on_block=lambda b, rate: (seen.append(rate), meter.add(b))))
    assert len(windows) == 2 and set(seen) == {sr}
    streamed = meter.result().as_dict()
    whole = measure_file(path).as_dict()
    assert streamed == whole
    data, _ = sf.read(str(path), dtype="float64")
    assert streamed["loudness_lufs"] == pytest.approx(pyloudnorm.Meter(sr).integrated_loudness(data), abs=0.01)
    assert streamed["clipped_samples"] == _runs_by_definition(data.astype(np.float32))
    assert streamed["silence_head_s"] == pytest.approx(0.25, abs=2 / sr)

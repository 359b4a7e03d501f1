"""Decoding, downmix, resampling and windowing (indexer.audio, indexer.windowing) on generated files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import soxr

from audiogen import PNG_1PX, noise, ramp, sine, wav_header, write_audio, write_bytes
from indexer import audio
from indexer.audio import DecodeError, downmix, iter_windows, load_segment, probe
from indexer.config import SAMPLE_RATE, WINDOW_SAMPLES
from indexer.windowing import repeat_pad, window_starts

W = WINDOW_SAMPLES


def reference_mono_48k(path) -> np.ndarray:
    """Decode + downmix + resample the whole file at once (the non-streamed reference)."""
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1, dtype=np.float32)
    return x if sr == SAMPLE_RATE else soxr.resample(x, sr, SAMPLE_RATE, "HQ")


# ------------------------------------------------------------------ windows


@pytest.mark.parametrize(
    "duration, hop, expected",
    [
        (0.5, 10, [0.0]),
        (10.0, 10, [0.0]),
        (25.0, 10, [0.0, 10.0, 15.0]),
        (30.0, 10, [0.0, 10.0, 20.0]),
        (30.5, 10, [0.0, 10.0, 20.0, 20.5]),
        (20.0, 5, [0.0, 5.0, 10.0]),
        (22.0, 5, [0.0, 5.0, 10.0, 12.0]),
    ],
)
def test_window_starts(duration, hop, expected):
    assert window_starts(duration, hop_s=hop) == pytest.approx(expected)


@pytest.mark.parametrize("n", [1, 7, 1000, 144_000, 239_999, 240_000, 479_999, 480_000])
def test_repeat_pad_follows_clap_repeatpad(n):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    # The lines of ClapFeatureExtractor._get_input_mel for padding == "repeatpad".
    ref = np.tile(x, int(W / len(x)))
    ref = np.pad(ref, (0, W - ref.shape[0]), mode="constant", constant_values=0)
    out = repeat_pad(x, W)
    assert out.dtype == np.float32 and out.shape == (W,)
    np.testing.assert_array_equal(out, ref)


def test_repeat_pad_same_features_as_transformers():
    from transformers import ClapFeatureExtractor

    fe = ClapFeatureExtractor()
    x = sine(48000, 3.3, freq=330)[:, 0].astype(np.float32)
    a = fe(x, sampling_rate=48000, padding="repeatpad", truncation="rand_trunc", return_tensors="np")
    b = fe(repeat_pad(x), sampling_rate=48000, padding="repeatpad", truncation="rand_trunc", return_tensors="np")
    np.testing.assert_allclose(a["input_features"], b["input_features"], rtol=0, atol=1e-4)


def test_long_file_windows_end_aligned_and_equal_whole_file_resample(tmp_path, monkeypatch):
    monkeypatch.setattr(audio, "BLOCK_SAMPLES", 8192)  # many blocks: exercise the streaming
    p = write_audio(tmp_path / "long.wav", noise(44100, 25.3, channels=2, seed=1), 44100, subtype="PCM_24")
    ref = reference_mono_48k(p)
    wins = list(iter_windows(p))
    assert [w.index for w in wins] == [0, 1, 2]
    assert [w.start_s for w in wins] == pytest.approx([0.0, 10.0, len(ref) / SAMPLE_RATE - 10.0])
    assert wins[-1].end_s == pytest.approx(25.3, abs=1e-4)
    for w in wins:
        assert w.samples.dtype == np.float32 and w.samples.shape == (W,) and w.n_real == W
        s = int(round(w.start_s * SAMPLE_RATE))
        np.testing.assert_allclose(w.samples, ref[s : s + W], rtol=0, atol=1e-6)


def test_streamed_equals_whole_with_hop(tmp_path, monkeypatch):
    monkeypatch.setattr(audio, "BLOCK_SAMPLES", 5000)
    p = write_audio(tmp_path / "h.flac", sine(22050, 21.0, freq=1234), 22050)
    ref = reference_mono_48k(p)
    wins = list(iter_windows(p, hop_s=4))
    starts = window_starts(len(ref) / SAMPLE_RATE, hop_s=4)
    assert [w.start_s for w in wins] == pytest.approx(starts)
    for w in wins:
        s = int(round(w.start_s * SAMPLE_RATE))
        np.testing.assert_allclose(w.samples, ref[s : s + W], rtol=0, atol=1e-6)


def test_short_file_is_one_repeat_padded_window(tmp_path):
    p = write_audio(tmp_path / "short.wav", ramp(32000, 3.0), 32000, subtype="FLOAT")
    ref = reference_mono_48k(p)
    (w,) = list(iter_windows(p))
    assert (w.index, w.start_s, w.end_s, w.n_real) == (0, 0.0, 3.0, len(ref))
    np.testing.assert_allclose(w.samples, repeat_pad(ref), atol=1e-6)


def test_exactly_ten_seconds_is_one_unpadded_window(tmp_path):
    p = write_audio(tmp_path / "ten.wav", noise(48000, 10.0), 48000)
    (w,) = list(iter_windows(p))
    assert (w.start_s, w.end_s, w.n_real) == (0.0, 10.0, W)


def test_downmix_is_channel_mean(tmp_path):
    left, right = sine(48000, 1.0, freq=200), noise(48000, 1.0, seed=3)
    p = write_audio(tmp_path / "st.wav", np.hstack([left, right]), 48000, subtype="FLOAT")
    (w,) = list(iter_windows(p))
    expect = ((left[:, 0] + right[:, 0]) / 2).astype(np.float32)
    np.testing.assert_allclose(w.samples[:48000], expect, atol=1e-6)


@pytest.mark.parametrize("channels", range(1, 13))
def test_downmix_gives_numpys_channel_mean_to_the_bit(channels):
    rng = np.random.default_rng(channels)
    block = (rng.standard_normal((20000, channels)) * rng.uniform(1e-3, 10, channels)).astype(np.float32)
    got = downmix(block)
    assert got.dtype == np.float32 and got.shape == (20000,)
    assert np.array_equal(got, block.mean(axis=1, dtype=np.float32))


# ------------------------------------------------------------------ format matrix

MATRIX = [
    ("wav", "PCM_U8", 8000, 1), ("wav", "PCM_16", 44100, 2), ("wav", "PCM_24", 96000, 1),
    ("wav", "PCM_32", 48000, 3), ("wav", "FLOAT", 22050, 2), ("wav", "DOUBLE", 192000, 1),
    ("wav", "PCM_16", 48000, 16), ("bwf", "PCM_24", 48000, 2), ("rf64", "PCM_24", 48000, 2),
    ("rf64", "FLOAT", 88200, 1), ("w64", "PCM_16", 32000, 2), ("w64", "DOUBLE", 48000, 1),
    ("aif", "PCM_16", 44100, 2), ("aiff", "PCM_24", 48000, 1), ("aifc", "FLOAT", 48000, 2),
    ("aiff", "PCM_S8", 11025, 1), ("flac", "PCM_16", 44100, 2), ("flac", "PCM_24", 96000, 6),
    ("flac", "PCM_S8", 16000, 1), ("caf", "PCM_24", 48000, 2), ("caf", "ALAC_16", 44100, 1),
    ("au", "PCM_16", 8000, 1), ("snd", "FLOAT", 44100, 2), ("wav", "ULAW", 8000, 1),
]
LOSSY = [("wav", "IMA_ADPCM", 22050, 1), ("ogg", "VORBIS", 44100, 2), ("oga", "VORBIS", 22050, 1), ("opus", "OPUS", 48000, 2),
         ("opus", "OPUS", 16000, 1), ("mp3", "MPEG_LAYER_III", 44100, 2), ("mp3", "MPEG_LAYER_III", 22050, 1)]
CONTAINER = {"wav": "WAV", "bwf": "WAV", "rf64": "RF64", "w64": "W64", "aif": "AIFF", "aiff": "AIFF",
             "aifc": "AIFF", "flac": "FLAC", "caf": "CAF", "au": "AU", "snd": "AU", "ogg": "OGG",
             "oga": "OGG", "opus": "OGG", "mp3": "MP3"}


@pytest.mark.parametrize("ext, subtype, sr, ch", MATRIX, ids=lambda v: str(v))
def test_format_matrix_lossless(tmp_path, ext, subtype, sr, ch):
    data = sine(sr, 0.4, freq=440, amp=0.5, channels=ch)
    p = write_audio(tmp_path / f"f.{ext}", data, sr, subtype=subtype)
    info = probe(p)
    assert (info.samplerate, info.channels, info.container, info.subtype) == (sr, ch, CONTAINER[ext], subtype)
    assert info.frames == len(data) and info.duration_s == pytest.approx(0.4, abs=1e-3)
    (w,) = list(iter_windows(p))
    assert w.n_real == pytest.approx(0.4 * SAMPLE_RATE, abs=2)
    assert np.abs(w.samples).max() <= 1.0
    expect = soxr.resample(data.mean(axis=1).astype(np.float32), sr, SAMPLE_RATE, "HQ") if sr != SAMPLE_RATE else data.mean(axis=1)
    tol = 0.08 if subtype in ("PCM_U8", "PCM_S8", "ULAW") else 2e-3
    np.testing.assert_allclose(w.samples[: len(expect)], expect, atol=tol)


@pytest.mark.parametrize("ext, subtype, sr, ch", LOSSY, ids=lambda v: str(v))
def test_format_matrix_lossy(tmp_path, ext, subtype, sr, ch):
    p = write_audio(tmp_path / f"f.{ext}", sine(sr, 1.0, freq=440, channels=ch), sr, subtype=subtype)
    info = probe(p)
    assert (info.samplerate, info.channels, info.container, info.subtype) == (sr, ch, CONTAINER[ext], subtype)
    (w,) = list(iter_windows(p))
    assert w.n_real == pytest.approx(SAMPLE_RATE, rel=0.06)
    rms = np.sqrt(np.mean(w.samples[10_000:40_000] ** 2))
    assert 0.2 < rms < 0.45  # a 0.5-amplitude sine (downmix of gains 1..0.5 lowers it a bit)


def test_int_formats_scaled_to_unit_range(tmp_path):
    full = np.array([[-1.0], [1.0 - 2**-15], [0.0]] * 100)
    for sub in ("PCM_16", "PCM_24", "PCM_32", "PCM_U8"):
        p = write_audio(tmp_path / f"{sub}.wav", full, 48000, subtype=sub)
        (w,) = list(iter_windows(p))
        x = w.samples[: w.n_real]
        assert x.min() == pytest.approx(-1.0, abs=1e-2) and x.max() == pytest.approx(1.0, abs=1e-2)


# ------------------------------------------------------------------ bad input


def test_nan_inf_samples_become_zero(tmp_path):
    x = sine(48000, 0.5)
    x[100] = np.nan
    x[200] = np.inf
    x[300] = -np.inf
    p = write_audio(tmp_path / "nan.wav", x, 48000, subtype="FLOAT")
    (w,) = list(iter_windows(p))
    assert np.isfinite(w.samples).all()
    assert w.samples[100] == w.samples[200] == w.samples[300] == 0.0
    seg, _ = load_segment(p, 0, 0.01)
    assert np.isfinite(seg).all()


def _bad_files(d):
    good = write_audio(d / "good.wav", noise(48000, 2.0), 48000).read_bytes()
    flac = write_audio(d / "good.flac", noise(48000, 2.0), 48000).read_bytes()
    return {
        "zero-length.wav": b"",
        "png.wav": PNG_1PX,
        "random.wav": np.random.default_rng(0).bytes(4096),
        "random.flac": np.random.default_rng(1).bytes(4096),
        "header-only.wav": good[:30],
        "no-frames.wav": wav_header(0),
        "claims-frames-has-none.wav": wav_header(48000),
        "truncated.flac": flac[: len(flac) // 2],
        "fake.wv": b"wvpk" + bytes(200),
        "fake.m4a": bytes(4) + b"ftypM4A " + bytes(200),
        "text.mp3": b"hello, this is not audio\n" * 20,
    }


BAD = ["zero-length.wav", "png.wav", "random.wav", "random.flac", "header-only.wav", "no-frames.wav",
       "claims-frames-has-none.wav", "truncated.flac", "fake.wv", "fake.m4a", "text.mp3"]


@pytest.mark.parametrize("name", BAD)
def test_undecodable_files_raise_decode_error_with_reason(tmp_path, name):
    p = write_bytes(tmp_path / name, _bad_files(tmp_path)[name])
    with pytest.raises(DecodeError) as e:
        list(iter_windows(p))
    reason = str(e.value)
    assert reason and "\n" not in reason
    if name.endswith((".wv", ".m4a")):
        assert "neither libsndfile nor FFmpeg" in reason
    if name in ("zero-length.wav", "no-frames.wav", "claims-frames-has-none.wav"):
        assert "no audio frames" in reason


def test_header_longer_than_data_yields_what_was_decodable(tmp_path):
    body = (noise(48000, 1.5) * 32767).astype("<i2").tobytes()
    p = write_bytes(tmp_path / "lying.wav", wav_header(48000 * 60) + body)  # claims 60 s, holds 1.5 s
    (w,) = list(iter_windows(p))
    assert w.n_real == 72000 and w.end_s == pytest.approx(1.5)
    huge = write_bytes(tmp_path / "huge.wav", wav_header(0x7FFFFFFF) + body)  # claims gigabytes
    (w,) = list(iter_windows(huge))
    assert w.n_real == 72000


def test_truncated_wav_data_yields_decodable_part(tmp_path):
    good = write_audio(tmp_path / "g.wav", noise(48000, 12.0), 48000).read_bytes()
    p = write_bytes(tmp_path / "cut.wav", good[: 44 + 2 * 48000 * 11])
    wins = list(iter_windows(p))
    assert [w.start_s for w in wins] == pytest.approx([0.0, 1.0])


def test_odd_but_valid_files(tmp_path):
    one = write_audio(tmp_path / "one.wav", np.array([[0.5]]), 48000)
    (w,) = list(iter_windows(one))
    assert w.n_real == 1 and np.count_nonzero(w.samples) == W  # tiled to the full window
    silent = write_audio(tmp_path / "silence.wav", np.zeros((4800, 1)), 48000)
    (w,) = list(iter_windows(silent))
    assert not w.samples.any()
    mp3 = write_audio(tmp_path / "x.mp3", sine(44100, 0.5), 44100)
    disguised = write_bytes(tmp_path / "mp3-named.wav", mp3.read_bytes())
    assert probe(disguised).container == "MP3"
    assert len(list(iter_windows(disguised))) == 1
    dc = write_audio(tmp_path / "dc.wav", np.full((48000, 1), 0.7), 48000)
    (w,) = list(iter_windows(dc))
    assert w.samples[1000:40000].mean() == pytest.approx(0.7, abs=1e-3)


def test_probe_errors(tmp_path):
    with pytest.raises(DecodeError, match="cannot read file"):
        probe(tmp_path / "missing.wav")
    with pytest.raises(DecodeError, match="no audio frames"):
        probe(write_bytes(tmp_path / "z.wav", b""))
    assert issubclass(DecodeError, Exception)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_unreadable_file(tmp_path):
    p = write_audio(tmp_path / "locked.wav", sine(48000, 0.2), 48000)
    p.chmod(0)
    try:
        with pytest.raises(DecodeError):
            list(iter_windows(p))
    finally:
        p.chmod(0o644)


# ------------------------------------------------------------------ load_segment


def test_load_segment_keeps_channels_and_rate(tmp_path):
    data = noise(44100, 3.0, channels=2, seed=5)
    p = write_audio(tmp_path / "seg.wav", data, 44100, subtype="FLOAT")
    x, sr = load_segment(p, 1.0, 2.0)
    assert sr == 44100 and x.shape == (44100, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x, data[44100:88200], atol=1e-7)
    m, sr = load_segment(p, 1.0, 2.0, mono=True)
    assert m.shape == (44100,)
    np.testing.assert_allclose(m, data[44100:88200].mean(axis=1), atol=1e-6)
    r, sr = load_segment(p, 0.0, 1.0, samplerate=48000)
    assert sr == 48000 and r.shape == (48000, 2)
    tail, _ = load_segment(p, 2.5, None)
    assert tail.shape == (22050, 2)
    past, _ = load_segment(p, 5.0, 6.0)
    assert past.shape == (0, 2)

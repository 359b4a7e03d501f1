"""The mel filter bank of ClapFeatureExtractor, in numpy (float64), and the Hz <-> mel scales.

A port of transformers.audio_utils.mel_filter_bank (triangles in Hz space, HTK or Slaney
scale, optional Slaney area normalisation), kept apart from the torch frontend
(`indexer.mel`) and written out here so that building the filters imports neither torch nor
transformers. Which kind a checkpoint uses is `indexer.melconfig.filter_kind`'s answer.
"""

from __future__ import annotations

import numpy as np


def hertz_to_mel(freq: float | np.ndarray, mel_scale: str = "htk") -> np.ndarray:
    freq = np.asarray(freq, dtype=np.float64)
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + freq / 700.0)
    if mel_scale != "slaney":
        raise ValueError(f"mel_scale must be 'htk' or 'slaney', not {mel_scale!r}")
    min_log_hertz, min_log_mel, logstep = 1000.0, 15.0, 27.0 / np.log(6.4)
    linear = 3.0 * freq / 200.0
    with np.errstate(divide="ignore", invalid="ignore"):
        log = min_log_mel + np.log(freq / min_log_hertz) * logstep
    return np.where(freq >= min_log_hertz, log, linear)


def mel_to_hertz(mels: float | np.ndarray, mel_scale: str = "htk") -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    if mel_scale == "htk":
        return 700.0 * (np.power(10, mels / 2595.0) - 1.0)
    if mel_scale != "slaney":
        raise ValueError(f"mel_scale must be 'htk' or 'slaney', not {mel_scale!r}")
    min_log_hertz, min_log_mel, logstep = 1000.0, 15.0, np.log(6.4) / 27.0
    linear = 200.0 * mels / 3.0
    log = min_log_hertz * np.exp(logstep * (mels - min_log_mel))
    return np.where(mels >= min_log_mel, log, linear)


def mel_filter_bank(
    num_frequency_bins: int,
    num_mel_filters: int,
    min_frequency: float,
    max_frequency: float,
    sampling_rate: int,
    norm: str | None = None,
    mel_scale: str = "htk",
) -> np.ndarray:
    """Triangular mel filters, (num_frequency_bins, num_mel_filters) float64.

    Same arithmetic as transformers.audio_utils.mel_filter_bank (triangles in Hz space).
    """
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', not {norm!r}")
    if min_frequency > max_frequency:
        raise ValueError(f"frequency_min {min_frequency} > frequency_max {max_frequency}")
    mel_min = hertz_to_mel(min_frequency, mel_scale)
    mel_max = hertz_to_mel(max_frequency, mel_scale)
    filter_freqs = mel_to_hertz(np.linspace(mel_min, mel_max, num_mel_filters + 2), mel_scale)
    fft_freqs = np.linspace(0, sampling_rate // 2, num_frequency_bins)

    filter_diff = np.diff(filter_freqs)
    slopes = filter_freqs[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / filter_diff[:-1]
    up = slopes[:, 2:] / filter_diff[1:]
    filters = np.maximum(np.zeros(1), np.minimum(down, up))
    if norm == "slaney":
        filters *= (2.0 / (filter_freqs[2 : num_mel_filters + 2] - filter_freqs[:num_mel_filters]))[None, :]
    return filters

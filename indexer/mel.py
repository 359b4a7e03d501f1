"""The CLAP audio frontend: a batched torch log-mel that reproduces ClapFeatureExtractor.

transformers' ClapFeatureExtractor computes its log-mel one frame at a time in numpy
(float64), about 25-30 ms per 10 s window. This module computes the same numbers
(within 1e-3 dB) for a whole batch at once in torch float32:

    periodic Hann, n_fft 1024, hop 480, centred reflect padding, |STFT|^2,
    mel filters, max(1e-10, .), 10*log10  ->  (B, 1 + L // hop, n_mels)

The two checkpoint families differ only in the filter bank: fused checkpoints
(truncation "fusion") use HTK-scale filters without normalisation, unfused ones
("rand_trunc") Slaney-scale filters with Slaney area normalisation. The filters are
built here in numpy (a port of transformers.audio_utils.mel_filter_bank) so that
importing this module does not import transformers.

Only the log-mel before stacking is reproduced (`_np_extract_fbank_features`): the
stacking into 4 channels for fusion and `is_longer` belong to the encoder.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

# ClapFeatureExtractor.__init__ defaults: what transformers uses for a key the config lacks.
_FE_DEFAULTS: dict[str, Any] = {
    "feature_size": 64,
    "sampling_rate": 48_000,
    "hop_length": 480,
    "fft_window_size": 1024,
    "frequency_min": 0.0,
    "frequency_max": 14_000.0,
    "truncation": "fusion",
}

MEL_FLOOR = 1e-10  # power floor before the log: -100 dB
_EPS32_SQ = float(np.finfo(np.float32).eps / 2) ** 2  # unit roundoff of float32, squared

FRONTEND_VERSION = 1  # bump when the numbers this module produces change


# --- filter bank (port of transformers.audio_utils, float64) -----------------------------


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


def filter_kind(truncation: str) -> tuple[str | None, str]:
    """(norm, mel_scale) ClapFeatureExtractor uses for a truncation mode."""
    return (None, "htk") if truncation == "fusion" else ("slaney", "slaney")


# --- the frontend --------------------------------------------------------------------------


class LogMelFrontend:
    """Batched log-mel in dB: (B, L) float32 waveforms -> (B, 1 + L // hop, n_mels) float32."""

    def __init__(
        self,
        *,
        n_mels: int = 64,
        sampling_rate: int = 48_000,
        n_fft: int = 1024,
        hop_length: int = 480,
        f_min: float = 50.0,
        f_max: float = 14_000.0,
        truncation: str = "fusion",
    ):
        self.n_mels = int(n_mels)
        self.sampling_rate = int(sampling_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.f_min = float(f_min)
        self.f_max = float(f_max)
        self.truncation = str(truncation)
        self.norm, self.mel_scale = filter_kind(self.truncation)

        filters = mel_filter_bank(
            self.n_fft // 2 + 1, self.n_mels, self.f_min, self.f_max, self.sampling_rate,
            norm=self.norm, mel_scale=self.mel_scale,
        )
        self.filters = filters  # float64, full (n_fft // 2 + 1, n_mels), for inspection and tests
        # Bins above the last non-zero filter row contribute nothing: never compute them.
        used = np.flatnonzero(filters.any(axis=1))
        self.n_bins = int(used[-1]) + 1 if used.size else 1
        self._filters = torch.from_numpy(filters[: self.n_bins].astype(np.float32))
        # Periodic Hann, as window_function(n_fft, "hann") (np.hanning(n + 1)[:-1]).
        # Kept in float64: a window rounded to float32 alone leaks a tone ~140 dB down.
        self._window = torch.from_numpy(np.hanning(self.n_fft + 1)[:-1])
        self._window32 = self._window.to(torch.float32)
        self._filters2 = self._filters.repeat_interleave(2, dim=0).contiguous()
        self._filter_mass = self._filters.sum(0)  # (n_mels,) float32
        # r such that 10*log10(1 + 2 sqrt(r)) == guard_db
        self._r_max = ((10 ** (self.guard_db / 10) - 1) / 2) ** 2

    @classmethod
    def from_config(cls, fe_config: Mapping[str, Any]) -> "LogMelFrontend":
        """From a preprocessor_config.json dict; missing keys take ClapFeatureExtractor's defaults."""
        c = {**_FE_DEFAULTS, **{k: v for k, v in fe_config.items() if k in _FE_DEFAULTS and v is not None}}
        return cls(
            n_mels=c["feature_size"],
            sampling_rate=c["sampling_rate"],
            n_fft=c["fft_window_size"],
            hop_length=c["hop_length"],
            f_min=c["frequency_min"],
            f_max=c["frequency_max"],
            truncation=c["truncation"],
        )

    @classmethod
    def from_feature_extractor(cls, fe: Any) -> "LogMelFrontend":
        """From a transformers ClapFeatureExtractor instance (duck-typed)."""
        return cls.from_config({k: getattr(fe, k) for k in _FE_DEFAULTS if hasattr(fe, k)})

    def settings(self) -> dict[str, Any]:
        """What determines the numbers: the frontend fingerprint the catalog records."""
        return {
            "frontend": "LogMelFrontend",
            "version": FRONTEND_VERSION,
            "sampling_rate": self.sampling_rate,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "window": "hann_periodic",
            "center": True,
            "pad_mode": "reflect",
            "power": 2.0,
            "n_mels": self.n_mels,
            "f_min": self.f_min,
            "f_max": self.f_max,
            "mel_scale": self.mel_scale,
            "norm": self.norm,
            "mel_floor": MEL_FLOOR,
            "log": "10*log10",
            "truncation": self.truncation,
        }

    def num_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop_length

    def __call__(self, waveforms: torch.Tensor | np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(waveforms)
        if x.ndim != 2:
            raise ValueError(f"waveforms must be (batch, samples), got shape {tuple(x.shape)}")
        if x.shape[1] <= self.n_fft // 2:
            raise ValueError(f"need more than {self.n_fft // 2} samples per waveform, got {x.shape[1]}")
        x = x.to(torch.float32)
        out = torch.empty(x.shape[0], self.num_frames(x.shape[1]), self.n_mels, dtype=torch.float32)
        with torch.inference_mode():
            # A few windows at a time: the frames of one window are 4 MB in float32, so a
            # small chunk stays in cache between the FFT, the power and the mel steps.
            for i in range(0, x.shape[0], self.chunk):
                self._log_mel_into(x[i : i + self.chunk], out[i : i + self.chunk])
        return out

    chunk = 2
    # Frames whose predicted float32 error exceeds this many dB are redone in float64.
    guard_db = 5e-5

    def _padded(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Centred reflect padding (numpy "reflect": the edge sample is not repeated)."""
        half, n = self.n_fft // 2, x.shape[1]
        buf = torch.empty(x.shape[0], n + 2 * half, dtype=dtype)
        buf[:, half : half + n] = x
        buf[:, :half] = x[:, 1 : half + 1].flip(-1)
        buf[:, half + n :] = x[:, n - half - 1 : n - 1].flip(-1)
        return buf

    def _mel_db(self, frames: torch.Tensor) -> torch.Tensor:
        # Power and mel in one matmul: (re, im) pairs squared against filters repeated per pair.
        spec = torch.fft.rfft(frames, dim=-1)[..., : self.n_bins]
        if spec.dtype != torch.complex64:
            spec = spec.to(torch.complex64)  # the reference stores its spectrum as complex64 too
        pairs = torch.view_as_real(spec).flatten(-2)
        return pairs.square_() @ self._filters2

    def _log_mel_into(self, x: torch.Tensor, out: torch.Tensor) -> None:
        """Float32 STFT, then float64 for the frames float32 cannot resolve.

        A float32 FFT adds white noise about eps^2 * sum(frame^2) per bin (calibrated
        against float64 in tests/test_mel.py). A band far below the frame's energy, e.g.
        every band but one under a loud pure tone, or DC leakage, then comes out dB off
        near the -100 dB floor. Those frames are found from the float32 result and redone
        in float64; noise-like audio almost never needs it.
        """
        frames32 = self._padded(x, torch.float32).unfold(-1, self.n_fft, self.hop_length) * self._window32
        mel = self._mel_db(frames32)  # (c, T, n_mels) power
        energy = frames32.square().sum(-1)  # (c, T)
        # predicted relative band error r = eps^2 * energy * W_m / P_m; pred dB ~ 4.34 * 2 sqrt(r)
        worst = (self._filter_mass / mel.clamp(min=MEL_FLOOR)).amax(-1)  # (c, T)
        r = worst * energy * _EPS32_SQ
        flagged = (r > self._r_max).nonzero(as_tuple=False)
        if flagged.numel():
            pad64 = self._padded(x, torch.float64)
            frames64 = pad64.unfold(-1, self.n_fft, self.hop_length)[flagged[:, 0], flagged[:, 1]] * self._window
            mel[flagged[:, 0], flagged[:, 1]] = self._mel_db(frames64)
        torch.clamp(mel, min=MEL_FLOOR, out=out)
        out.log10_().mul_(10.0)

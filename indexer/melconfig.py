"""What determines the log-mel numbers, without torch: defaults, version and the fingerprint.

`indexer.mel` computes the log-mel with torch; a build that finds nothing to embed still
needs the frontend's fingerprint to check the catalog's model, and importing torch for it
would dominate every no-op `sfx-index build` (docs/benchmarks.md). So the settings live here and mel imports them.
"""

from __future__ import annotations

from typing import Any, Mapping

# ClapFeatureExtractor.__init__ defaults: what transformers uses for a key the config lacks.
FE_DEFAULTS: dict[str, Any] = {
    "feature_size": 64,
    "sampling_rate": 48_000,
    "hop_length": 480,
    "fft_window_size": 1024,
    "frequency_min": 0.0,
    "frequency_max": 14_000.0,
    "truncation": "fusion",
}

MEL_FLOOR = 1e-10  # power floor before the log: -100 dB

FRONTEND_VERSION = 1  # bump when the numbers indexer.mel produces change


def filter_kind(truncation: str) -> tuple[str | None, str]:
    """(norm, mel_scale) ClapFeatureExtractor uses for a truncation mode."""
    return (None, "htk") if truncation == "fusion" else ("slaney", "slaney")


def params_from_config(fe_config: Mapping[str, Any]) -> dict[str, Any]:
    """LogMelFrontend's arguments from a preprocessor_config.json dict (missing keys take
    ClapFeatureExtractor's defaults)."""
    c = {**FE_DEFAULTS, **{k: v for k, v in fe_config.items() if k in FE_DEFAULTS and v is not None}}
    return dict(n_mels=int(c["feature_size"]), sampling_rate=int(c["sampling_rate"]),
                n_fft=int(c["fft_window_size"]), hop_length=int(c["hop_length"]),
                f_min=float(c["frequency_min"]), f_max=float(c["frequency_max"]),
                truncation=str(c["truncation"]))


def frontend_settings(*, n_mels: int, sampling_rate: int, n_fft: int, hop_length: int,
                      f_min: float, f_max: float, truncation: str) -> dict[str, Any]:
    """The frontend fingerprint the catalog records."""
    norm, mel_scale = filter_kind(str(truncation))
    return {
        "frontend": "LogMelFrontend",
        "version": FRONTEND_VERSION,
        "sampling_rate": int(sampling_rate),
        "n_fft": int(n_fft),
        "hop_length": int(hop_length),
        "window": "hann_periodic",
        "center": True,
        "pad_mode": "reflect",
        "power": 2.0,
        "n_mels": int(n_mels),
        "f_min": float(f_min),
        "f_max": float(f_max),
        "mel_scale": mel_scale,
        "norm": norm,
        "mel_floor": MEL_FLOOR,
        "log": "10*log10",
        "truncation": str(truncation),
    }


def settings_from_config(fe_config: Mapping[str, Any]) -> dict[str, Any]:
    return frontend_settings(**params_from_config(fe_config))

"""Generators of test audio: signals (sine, noise, clicks, sweep) and files in any format.

Other test modules import this: ``from audiogen import write_audio, sine``. Signals are
float64 arrays of shape (frames, channels) in [-1, 1]; ``write_audio`` writes them with
soundfile in the chosen container/subtype. Everything is deterministic (seeded).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

# Extension -> (soundfile format, default subtype)
FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "bwf": ("WAV", "PCM_24"),
    "rf64": ("RF64", "PCM_24"),
    "w64": ("W64", "PCM_24"),
    "aif": ("AIFF", "PCM_16"),
    "aiff": ("AIFF", "PCM_24"),
    "aifc": ("AIFF", "FLOAT"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "oga": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "caf": ("CAF", "PCM_16"),
    "au": ("AU", "PCM_16"),
    "snd": ("AU", "PCM_16"),
}


def _shape(x: np.ndarray, channels: int) -> np.ndarray:
    """Mono signal -> (frames, channels), each channel a slightly different gain."""
    gains = np.linspace(1.0, 0.5, channels) if channels > 1 else np.ones(1)
    return x[:, None] * gains[None, :]


def _frames(sr: int, duration: float) -> int:
    return max(0, int(round(sr * duration)))


def sine(sr: int = 48000, duration: float = 1.0, *, freq: float = 440.0, amp: float = 0.5, channels: int = 1) -> np.ndarray:
    t = np.arange(_frames(sr, duration)) / sr
    return _shape(amp * np.sin(2 * np.pi * freq * t), channels)


def noise(sr: int = 48000, duration: float = 1.0, *, amp: float = 0.3, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(amp * rng.standard_normal((_frames(sr, duration), channels)), -1, 1)


def clicks(sr: int = 48000, duration: float = 1.0, *, every_s: float = 0.25, amp: float = 0.9, channels: int = 1) -> np.ndarray:
    x = np.zeros(_frames(sr, duration))
    step = max(1, int(sr * every_s))
    x[::step] = amp
    return _shape(x, channels)


def sweep(sr: int = 48000, duration: float = 1.0, *, f0: float = 50.0, f1: float | None = None, amp: float = 0.5, channels: int = 1) -> np.ndarray:
    """Logarithmic sine sweep from f0 to f1 (default 0.45 * sr)."""
    n = _frames(sr, duration)
    f1 = f1 or 0.45 * sr
    t = np.arange(n) / sr
    T = max(duration, 1e-9)
    k = np.log(f1 / f0)
    phase = 2 * np.pi * f0 * T / k * (np.exp(t / T * k) - 1)
    return _shape(amp * np.sin(phase), channels)


def ramp(sr: int = 48000, duration: float = 1.0, *, channels: int = 1) -> np.ndarray:
    """A slow ramp -1..1: every sample distinct, handy to check offsets and ordering."""
    return _shape(np.linspace(-0.9, 0.9, _frames(sr, duration)), channels)


SIGNALS = {"sine": sine, "noise": noise, "clicks": clicks, "sweep": sweep, "ramp": ramp}


def write_audio(
    path: str | os.PathLike,
    data: np.ndarray | None = None,
    sr: int = 48000,
    *,
    kind: str = "sine",
    duration: float = 1.0,
    channels: int = 1,
    format: str | None = None,
    subtype: str | None = None,
    **signal_kw,
) -> Path:
    """Write `data` (or a generated `kind` signal) to `path`; format/subtype from the extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower().lstrip(".")
    fmt, default_subtype = FORMATS.get(ext, ("WAV", "PCM_16"))
    fmt = format or fmt
    subtype = subtype or default_subtype
    if data is None:
        data = SIGNALS[kind](sr, duration, channels=channels, **signal_kw)
    data = np.asarray(data)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=data.shape[1] if data.ndim == 2 else 1, format=fmt, subtype=subtype) as f:
        # In blocks: one huge write of a long OGG overflows libvorbis' stack (libsndfile #1095).
        for i in range(0, len(data), 65536):
            f.write(data[i : i + 65536])
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# A minimal valid PNG (1x1), for "a non-audio file with an audio extension".
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201ffa0c5d20000000049454e44ae426082"
)


def wav_header(frames_claimed: int, *, sr: int = 48000, channels: int = 1, bits: int = 16, riff_size: int | None = None) -> bytes:
    """A PCM WAV header whose data chunk claims `frames_claimed` frames (for lying headers)."""
    import struct

    block = channels * bits // 8
    data_size = min(frames_claimed * block, 0xFFFFFFFF)
    riff = riff_size if riff_size is not None else min(36 + data_size, 0xFFFFFFFF)
    return (
        b"RIFF" + struct.pack("<I", riff) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sr, sr * block, block, bits)
        + b"data" + struct.pack("<I", data_size)
    )

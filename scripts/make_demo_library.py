#!/usr/bin/env python3
"""Write a small demo library of distinct synthetic sound effects (the README's `make demo`).

About 27 sounds in a few folders, each made here from numpy noise and oscillators, and named
for what it is: rain-like noise with droplets, slowly gusting wind, a door-creak-like glide,
footstep-like thumps, a thunder-like rumble, alarms and beeps, clicks, tones, sweeps and
noise. They are rough imitations, not recordings; the names say so with the source field
"Synth". Where a UCS category fits, the name follows UCS (`CatID_FXName_CreatorID_SourceID`,
the CatID from data/taxonomies/ucs.csv, creator "SFXI"); test signals keep plain names.

Formats, rates and layouts are mixed as in a real library: WAV 16/24-bit, FLAC, OGG Vorbis;
44.1, 48 and 96 kHz; mono and stereo; 1 to 40 s. Some WAVs carry a BWF `bext` chunk with a
description (written here: soundfile cannot write one), and every file a comment/title tag.
A CONTENTS.txt lists what each file is. Deterministic for a given --seed; takes a few seconds.

    python scripts/make_demo_library.py OUT [--seed N]
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
from scipy import signal

CREATOR = "SFXI"  # our creator id in UCS names
SOURCE = "Synth"  # every sound here is synthesised


# ------------------------------------------------------------------ building blocks


def _t(sr: int, dur: float) -> np.ndarray:
    return np.arange(int(round(sr * dur))) / sr


def _bandpass(x: np.ndarray, sr: int, lo: float | None, hi: float | None, order: int = 4) -> np.ndarray:
    nyq = sr / 2
    if lo and hi:
        sos = signal.butter(order, [lo / nyq, min(hi / nyq, 0.99)], "bandpass", output="sos")
    elif lo:
        sos = signal.butter(order, lo / nyq, "highpass", output="sos")
    else:
        sos = signal.butter(order, min(hi / nyq, 0.99), "lowpass", output="sos")
    return signal.sosfilt(sos, x, axis=0)


def _coloured(rng, n: int, slope_db_oct: float) -> np.ndarray:
    """Noise whose spectrum falls by `slope_db_oct` per octave (0 white, -3 pink, -6 brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=float)
    f[0] = 1.0
    spec *= f ** (slope_db_oct / 6.02)
    y = np.fft.irfft(spec, n)
    return y / (np.abs(y).max() + 1e-12)


def _lfo(rng, t: np.ndarray, rates=(0.05, 0.4), k: int = 4) -> np.ndarray:
    """A smooth random control curve in [0, 1]: a few slow sines with random rates and phases."""
    y = np.zeros_like(t)
    for _ in range(k):
        y += np.sin(2 * np.pi * rng.uniform(*rates) * t + rng.uniform(0, 2 * np.pi))
    return (y - y.min()) / (np.ptp(y) + 1e-12)


def _moving_band_noise(rng, n: int, sr: int, centre: Callable[[np.ndarray], np.ndarray], width_oct: float) -> np.ndarray:
    """White noise shaped frame by frame (STFT) by a Gaussian band around centre(t) Hz."""
    nper = 2048
    _, _, z = signal.stft(rng.standard_normal(n), sr, nperseg=nper)
    freqs = np.fft.rfftfreq(nper, 1 / sr)[:, None]
    times = np.arange(z.shape[1]) * (nper // 2) / sr
    fc = np.maximum(centre(times), 20.0)[None, :]
    octs = np.log2(np.maximum(freqs, 1.0) / fc)
    z *= np.exp(-0.5 * (octs / width_oct) ** 2)
    _, y = signal.istft(z, sr, nperseg=nper)
    y = y[:n]
    return np.pad(y, (0, n - y.size))


def _decay(sr: int, dur: float, tau: float) -> np.ndarray:
    return np.exp(-_t(sr, dur) / tau)


def _place(out: np.ndarray, grain: np.ndarray, at: int, gain: float = 1.0) -> None:
    end = min(out.shape[0], at + grain.shape[0])
    if at < end:
        out[at:end] += gain * grain[: end - at]


def _fade(x: np.ndarray, sr: int, s: float = 0.02) -> np.ndarray:
    n = min(int(sr * s), x.shape[0] // 2)
    if n:
        ramp = np.linspace(0, 1, n)
        x[:n] *= ramp[:, None] if x.ndim == 2 else ramp
        x[-n:] *= ramp[::-1, None] if x.ndim == 2 else ramp[::-1]
    return x


def _stereo(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.stack([left, right], axis=1)


# ------------------------------------------------------------------ the sounds
# Each takes (rng, sr, duration) and returns float (frames,) or (frames, 2).


def rain(rng, sr, dur, *, drops_per_s=250.0, bed=0.25):
    """Rain-like: a bed of high-passed pink noise and many short random droplets per channel."""
    n = int(sr * dur)
    chans = []
    shared = _bandpass(_coloured(rng, n, -3), sr, 800, 12000)
    for _ in range(2):
        impulses = np.zeros(n)
        k = rng.poisson(drops_per_s * dur)
        impulses[rng.integers(0, n, k)] = rng.uniform(0.2, 1.0, k) ** 2 * rng.choice([-1, 1], k)
        grain = rng.standard_normal(int(0.006 * sr)) * _decay(sr, 0.006, 0.0012)
        drops = _bandpass(signal.fftconvolve(impulses, grain)[:n], sr, 1500, 9000, 2)
        chans.append(bed * shared + drops / (np.abs(drops).max() + 1e-12))
    return _stereo(*chans)


def wind(rng, sr, dur):
    """Wind-like: low-passed noise bands whose levels and centre drift slowly (gusts)."""
    n = int(sr * dur)
    t = _t(sr, dur)
    chans = []
    for _ in range(2):
        gust = 0.15 + 0.85 * _lfo(rng, t, (0.03, 0.2))
        centre = lambda tt, g=gust: 250 + 900 * np.interp(tt, t, g)  # noqa: E731
        x = _moving_band_noise(rng, n, sr, centre, 1.0) * gust
        chans.append(x + 0.1 * _bandpass(_coloured(rng, n, -6), sr, None, 300))
    return _stereo(*chans)


def whistling_wind(rng, sr, dur):
    """A whistling tone gliding slowly around 900 Hz over a noisy wind bed."""
    t = _t(sr, dur)
    f = 900 + 250 * (_lfo(rng, t, (0.05, 0.25)) - 0.5)
    tone = np.sin(2 * np.pi * np.cumsum(f) / sr) * (0.3 + 0.7 * _lfo(rng, t, (0.1, 0.5)))
    return 0.4 * tone + 0.6 * wind(rng, sr, dur)[:, 0]


def thunder(rng, sr, dur):
    """Thunder-like: a broadband crack then a long low rumble made of decaying swells."""
    n = int(sr * dur)
    t = _t(sr, dur)
    crack = _bandpass(rng.standard_normal(n), sr, 300, None, 2) * np.exp(-np.maximum(t - 0.5, 0) / 0.08) * (t >= 0.5)
    env = np.zeros(n)
    for c in np.sort(rng.uniform(0.7, dur * 0.6, 6)):
        env += rng.uniform(0.4, 1.0) * np.exp(-np.maximum(t - c, 0) / rng.uniform(0.8, 2.5)) * (1 - np.exp(-np.maximum(t - c, 0) / 0.15))
    rumble = _bandpass(_coloured(rng, n, -6), sr, 25, 220, 2) * env
    rumble /= np.abs(rumble).max() + 1e-12
    x = 0.5 * crack / (np.abs(crack).max() + 1e-12) + rumble
    return _stereo(x, np.roll(x, int(0.013 * sr)))


def door_creak(rng, sr, dur):
    """A creak: stick-slip pulses whose rate glides up and down, exciting wood-like resonances."""
    n = int(sr * dur)
    t = _t(sr, dur)
    rate = 35 + 110 * np.sin(np.pi * t / dur) ** 2 * (1 + 0.15 * rng.standard_normal(n).cumsum() / np.sqrt(n))
    phase = np.cumsum(rate) / sr
    pulses = np.diff(np.floor(phase), prepend=0.0) * (0.5 + 0.5 * np.sin(np.pi * t / dur))
    body = sum(a * np.sin(2 * np.pi * f * _t(sr, 0.06)) for f, a in ((620, 1.0), (1340, 0.6), (2150, 0.35), (3400, 0.2)))
    body *= _decay(sr, 0.06, 0.012)
    return _fade(signal.fftconvolve(pulses, body)[:n], sr)


def footsteps(rng, sr, dur, *, pace_s=0.55):
    """Footstep-like thumps: heel and toe hits (a low decaying thump plus a short scuff)."""
    n = int(sr * dur)
    x = np.zeros(n)
    for i, at in enumerate(np.arange(0.3, dur - 0.3, pace_s)):
        at += rng.uniform(-0.03, 0.03)
        f = rng.uniform(65, 95)
        thump = np.sin(2 * np.pi * f * _t(sr, 0.25)) * _decay(sr, 0.25, 0.05)
        scuff = _bandpass(rng.standard_normal(int(0.04 * sr)), sr, 300, 3000, 2) * _decay(sr, 0.04, 0.008)
        g = 1.0 if i % 2 == 0 else 0.8
        _place(x, thump, int(at * sr), g)
        _place(x, scuff, int(at * sr), 0.4 * g)
        _place(x, 0.5 * thump, int((at + 0.07) * sr), 0.6 * g)
    return x


def knocks(rng, sr, dur, *, count=3):
    """Knuckles on a door: three hard knocks of decaying low partials with a click."""
    x = np.zeros(int(sr * dur))
    for i in range(count):
        tt = _t(sr, 0.2)
        hit = (np.sin(2 * np.pi * 185 * tt) + 0.6 * np.sin(2 * np.pi * 410 * tt) + 0.3 * np.sin(2 * np.pi * 905 * tt)) * _decay(sr, 0.2, 0.03)
        hit[: int(0.002 * sr)] += rng.standard_normal(int(0.002 * sr))
        _place(x, hit, int((0.3 + 0.22 * i) * sr))
    return x


def square(t, f, harmonics=9):
    return sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, harmonics + 1, 2))


def two_tone_alarm(rng, sr, dur):
    """An electronic alarm alternating 600 and 900 Hz square tones every 0.4 s."""
    t = _t(sr, dur)
    hi = (np.floor(t / 0.4) % 2).astype(bool)
    return np.where(hi, square(t, 900), square(t, 600))


def siren(rng, sr, dur, *, period_s=4.0):
    """A siren wailing between 600 and 1400 Hz."""
    t = _t(sr, dur)
    f = 1000 + 400 * np.sin(2 * np.pi * t / period_s - np.pi / 2)
    ph = 2 * np.pi * np.cumsum(f) / sr
    x = np.sin(ph) + 0.3 * np.sin(2 * ph) + 0.15 * np.sin(3 * ph)
    return _stereo(x, np.roll(x, int(0.02 * sr)))


def beeps(rng, sr, dur, *, freq=2000.0, group=4, every_s=1.0, beep_s=0.08):
    """A kitchen-timer pattern: groups of four short 2 kHz beeps every second."""
    t = _t(sr, dur)
    phase = t % every_s
    on = (phase < group * 2 * beep_s) & ((phase // beep_s) % 2 == 0)
    return np.sin(2 * np.pi * freq * t) * on


def click(rng, sr, dur, *, at_s=0.1):
    """One short high click."""
    x = np.zeros(int(sr * dur))
    c = _bandpass(rng.standard_normal(int(0.003 * sr)), sr, 2000, None, 2) * _decay(sr, 0.003, 0.0006)
    _place(x, c, int(at_s * sr))
    return x


def clock_ticks(rng, sr, dur):
    """Clock-like mechanical ticks once a second, tick and tock on different resonances."""
    x = np.zeros(int(sr * dur))
    for i, at in enumerate(np.arange(0.2, dur - 0.1, 1.0)):
        f = 3100 if i % 2 == 0 else 2500
        tick = np.sin(2 * np.pi * f * _t(sr, 0.03)) * _decay(sr, 0.03, 0.004)
        _place(x, tick, int(at * sr))
    return x


def confirm_beep(rng, sr, dur):
    """Two rising notes, 880 then 1320 Hz, the way interfaces say OK."""
    t = _t(sr, dur)
    x = np.sin(2 * np.pi * 880 * t) * ((t > 0.1) & (t < 0.22)) + np.sin(2 * np.pi * 1320 * t) * ((t > 0.24) & (t < 0.44))
    return signal.sosfilt(signal.butter(2, 6000 / (sr / 2), output="sos"), x)


def sine_tone(rng, sr, dur, *, freq=1000.0):
    return np.sin(2 * np.pi * freq * _t(sr, dur))


def sine_drone(rng, sr, dur, *, freq=220.0):
    """A steady 220 Hz sine with a slowly beating second voice on the right."""
    t = _t(sr, dur)
    return _stereo(np.sin(2 * np.pi * freq * t), np.sin(2 * np.pi * (freq + 0.5) * t))


def log_sweep(rng, sr, dur, *, f0=50.0, f1=16000.0):
    t = _t(sr, dur)
    k = np.log(f1 / f0)
    return np.sin(2 * np.pi * f0 * dur / k * (np.exp(t / dur * k) - 1))


def square_wave(rng, sr, dur, *, freq=110.0):
    return square(_t(sr, dur), freq, 31)


def noise_burst(rng, sr, dur, *, start_s=0.5, length_s=0.5):
    """Half a second of white noise in silence."""
    t = _t(sr, dur)
    return rng.uniform(-1, 1, t.size) * ((t >= start_s) & (t < start_s + length_s))


def pink_noise(rng, sr, dur):
    return _coloured(rng, int(sr * dur), -3)


def brown_noise(rng, sr, dur):
    return _stereo(_coloured(rng, int(sr * dur), -6), _coloured(rng, int(sr * dur), -6))


def riser(rng, sr, dur):
    """A noise riser: a band of noise sweeping from 200 Hz to 8 kHz, getting louder."""
    n = int(sr * dur)
    x = _moving_band_noise(rng, n, sr, lambda tt: 200 * (40 ** (tt / dur)), 0.4)
    return x * np.linspace(0.1, 1, n) ** 2


def whoosh(rng, sr, dur):
    """A whoosh: a band of noise swelling and falling in pitch and level, panned across."""
    n = int(sr * dur)
    t = _t(sr, dur)
    mid = dur * 0.45
    x = _moving_band_noise(rng, n, sr, lambda tt: 400 + 2600 * np.exp(-((tt - mid) / (0.25 * dur)) ** 2), 0.6)
    x *= np.exp(-((t - mid) / (0.2 * dur)) ** 2)
    pan = np.clip(t / dur, 0, 1)
    return _stereo(x * np.sqrt(1 - pan), x * np.sqrt(pan))


def drips(rng, sr, dur):
    """Water-drip-like plinks: short decaying sines whose pitch jumps up, at uneven intervals."""
    x = np.zeros(int(sr * dur))
    at = 0.3
    while at < dur - 0.2:
        tt = _t(sr, 0.08)
        f = rng.uniform(700, 1100) * (1 + 1.2 * (1 - np.exp(-tt / 0.01)))
        _place(x, np.sin(2 * np.pi * np.cumsum(f) / sr) * _decay(sr, 0.08, 0.015), int(at * sr), rng.uniform(0.5, 1))
        at += rng.uniform(0.4, 1.3)
    return x


def mains_hum(rng, sr, dur):
    """Electrical hum: 50 Hz and its harmonics, a little clipped so it buzzes."""
    t = _t(sr, dur)
    x = sum(np.sin(2 * np.pi * 50 * k * t + k) / k for k in range(1, 12))
    return np.tanh(2.5 * x)


def hand_bell(rng, sr, dur, *, f=880.0, every_s=1.6):
    """A small bell struck a few times: inharmonic partials with long decays."""
    x = np.zeros(int(sr * dur))
    ring = sum(a * np.sin(2 * np.pi * f * r * _t(sr, 1.5)) * _decay(sr, 1.5, tau)
               for r, a, tau in ((1.0, 1.0, 0.6), (2.76, 0.5, 0.3), (5.40, 0.25, 0.15), (8.93, 0.12, 0.08)))
    for at in np.arange(0.2, dur - 0.5, every_s):
        _place(x, ring, int(at * sr))
    return x


def room_tone(rng, sr, dur):
    """A quiet room: soft brown noise and a faint 60 Hz hum."""
    t = _t(sr, dur)
    hum = 0.02 * np.sin(2 * np.pi * 60 * t)
    return _stereo(0.1 * _coloured(rng, t.size, -6) + hum, 0.1 * _coloured(rng, t.size, -6) + hum)


# ------------------------------------------------------------------ the catalogue


@dataclass(frozen=True)
class Sound:
    path: str  # relative, with its extension (which picks the container)
    make: Callable
    sr: int
    dur: float
    subtype: str | None  # None: the container's default
    peak_db: float
    description: str
    bext: bool = False  # add a BWF bext chunk with the description (WAV only)


def _ucs(cat: str, fx: str, ext: str) -> str:
    return f"{cat}_{fx}_{CREATOR}_{SOURCE}.{ext}"


SOUNDS: list[Sound] = [
    Sound("Weather/" + _ucs("RAIN", "Light Rain Texture", "wav"), rain, 48000, 30, "PCM_24", -6,
          "Rain-like texture: high-passed pink noise with random droplets (synthetic)", bext=True),
    Sound("Weather/" + _ucs("RAIN", "Heavy Rain Downpour", "flac"),
          lambda r, s, d: rain(r, s, d, drops_per_s=1200, bed=0.6), 96000, 20, "PCM_24", -4,
          "Heavy rain-like texture: dense droplets over loud noise (synthetic)"),
    Sound("Weather/" + _ucs("WIND", "Gusting Wind", "wav"), wind, 44100, 40, "PCM_16", -6,
          "Wind-like: noise bands with slowly drifting level and colour (synthetic)", bext=True),
    Sound("Weather/" + _ucs("WINDTonl", "Whistling Wind", "ogg"), whistling_wind, 48000, 15, None, -6,
          "Whistling tone gliding around 900 Hz over noisy wind (synthetic)"),
    Sound("Weather/" + _ucs("THUN", "Distant Thunder Rumble", "wav"), thunder, 48000, 12, "PCM_24", -3,
          "Thunder-like: a noise crack then a long low rumble (synthetic)", bext=True),
    Sound("Weather/" + _ucs("WATRDrip", "Slow Water Drips", "ogg"), drips, 44100, 12, None, -6,
          "Drip-like plinks: short sines jumping up in pitch (synthetic)"),
    Sound("Foley/" + _ucs("DOORCreak", "Slow Door Creak", "wav"), door_creak, 48000, 4, "PCM_24", -3,
          "Door-creak-like glide: stick-slip pulses through wood-like resonances (synthetic)", bext=True),
    Sound("Foley/" + _ucs("FEETHmn", "Footsteps Walking Thumps", "flac"), footsteps, 48000, 8, "PCM_16", -3,
          "Footstep-like thumps with heel and toe hits (synthetic)"),
    Sound("Foley/" + _ucs("DOORKnck", "Three Knocks", "wav"), knocks, 44100, 2, "PCM_16", -3,
          "Three knuckle-like knocks (synthetic)"),
    Sound("Foley/" + _ucs("BELLHand", "Small Hand Bell", "flac"), hand_bell, 48000, 5, "PCM_24", -6,
          "Small bell struck three times: inharmonic decaying partials (synthetic)"),
    Sound("Alarms/" + _ucs("ALRMElec", "Two Tone Alarm", "wav"), two_tone_alarm, 48000, 6, "PCM_16", -9,
          "Electronic alarm alternating 600 and 900 Hz square tones", bext=True),
    Sound("Alarms/" + _ucs("ALRMSirn", "Wailing Siren", "ogg"), siren, 48000, 16, None, -6,
          "Siren wailing between 600 and 1400 Hz"),
    Sound("Alarms/" + _ucs("BEEPTimer", "Kitchen Timer Beeps", "wav"), beeps, 44100, 5, "PCM_16", -9,
          "Groups of four short 2 kHz beeps every second"),
    Sound("UI/" + _ucs("UIClick", "Single Short Click", "wav"), click, 48000, 1, "PCM_16", -3,
          "One short high click"),
    Sound("UI/" + _ucs("UIBeep", "Confirm Two Notes", "wav"), confirm_beep, 48000, 1, "PCM_24", -9,
          "Two rising notes, 880 then 1320 Hz"),
    Sound("UI/" + _ucs("MECHClik", "Clock Ticking", "flac"), clock_ticks, 44100, 10, "PCM_16", -6,
          "Clock-like ticks once a second (synthetic)"),
    Sound("Designed/" + _ucs("DSGNRise", "Noise Riser", "wav"), riser, 48000, 6, "PCM_24", -3,
          "A band of noise sweeping from 200 Hz to 8 kHz, getting louder"),
    Sound("Designed/" + _ucs("WHSH", "Fast Noise Whoosh", "flac"), whoosh, 96000, 2, "PCM_24", -3,
          "A whoosh: a band of noise swelling and panning left to right"),
    Sound("Designed/" + _ucs("ELECBuzz", "Mains Hum 50 Hz", "wav"), mains_hum, 48000, 6, "PCM_16", -12,
          "50 Hz hum with harmonics, slightly clipped"),
    Sound("Designed/" + _ucs("AMBRoom", "Quiet Room Tone", "wav"), room_tone, 48000, 30, "PCM_24", -30,
          "A quiet room: soft brown noise and a faint 60 Hz hum (synthetic)", bext=True),
    Sound("Test Tones/sine 1 kHz test tone.wav", sine_tone, 48000, 5, "PCM_24", -18,
          "1 kHz sine test tone at -18 dBFS"),
    Sound("Test Tones/sine 220 Hz drone, stereo beating.flac", sine_drone, 44100, 25, "PCM_16", -12,
          "220 Hz sine, the right channel 0.5 Hz higher so they beat"),
    Sound("Test Tones/log sine sweep 50 Hz to 16 kHz.wav", log_sweep, 96000, 8, "PCM_24", -6,
          "Logarithmic sine sweep from 50 Hz to 16 kHz"),
    Sound("Test Tones/square wave 110 Hz.ogg", square_wave, 44100, 3, None, -12,
          "Band-limited 110 Hz square wave"),
    Sound("Noise/white noise burst 0.5 s.wav", noise_burst, 48000, 1.5, "PCM_16", -6,
          "Half a second of white noise between silences"),
    Sound("Noise/pink noise.flac", pink_noise, 48000, 10, "PCM_16", -6, "Pink noise"),
    Sound("Noise/brown noise rumble.wav", brown_noise, 44100, 20, "PCM_16", -6, "Brown (red) noise, stereo"),
]


# ------------------------------------------------------------------ writing


def bext_chunk(description: str, *, originator: str = "sfx-index demo", date: str = "2024-01-01",
               time_s: str = "12:00:00", time_reference: int = 0) -> bytes:
    """An EBU Tech 3285 v1 bext chunk (602 fixed bytes plus an empty coding history)."""

    def field(s: str, n: int) -> bytes:
        return s.encode("ascii", "replace")[:n].ljust(n, b"\0")

    body = (
        field(description, 256) + field(originator, 32) + field("SFXIDEMO", 32)
        + field(date, 10) + field(time_s, 8)
        + struct.pack("<QH", time_reference, 1) + b"\0" * 64  # time reference, version 1, UMID
        + b"\0" * 10 + b"\0" * 180  # loudness fields (unset) and reserved
    )
    return b"bext" + struct.pack("<I", len(body)) + body


def add_bext(path: Path, description: str) -> None:
    """Insert a bext chunk right after the RIFF/WAVE header and fix the RIFF size."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path} is not a RIFF/WAVE file")
    chunk = bext_chunk(description)
    out = data[:4] + struct.pack("<I", len(data) - 8 + len(chunk)) + data[8:12] + chunk + data[12:]
    path.write_bytes(out)


def write_sound(out: Path, s: Sound, rng) -> Path:
    x = np.asarray(s.make(rng, s.sr, s.dur), dtype=np.float64)
    x = _fade(x, s.sr, 0.005)
    x *= 10 ** (s.peak_db / 20) / (np.abs(x).max() + 1e-12)
    path = out / s.path
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower()
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}[ext]
    subtype = s.subtype or ("VORBIS" if fmt == "OGG" else "PCM_16")
    channels = x.shape[1] if x.ndim == 2 else 1
    with sf.SoundFile(str(path), "w", samplerate=s.sr, channels=channels, format=fmt, subtype=subtype) as f:
        f.title = path.stem if fmt != "WAV" else s.description[:60]
        f.comment = s.description
        for i in range(0, x.shape[0], 1 << 16):  # one large OGG/Vorbis write can overflow
            f.write(x[i : i + (1 << 16)])       # libvorbis's stack (libsndfile #1095)
    if s.bext:
        add_bext(path, s.description)
    return path


def make_demo_library(out: str | Path, seed: int = 0) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, s in enumerate(SOUNDS):
        written.append(write_sound(out, s, np.random.default_rng([seed, i])))
    lines = ["Synthetic demo sounds made by scripts/make_demo_library.py (rough imitations, not recordings).", ""]
    for s in SOUNDS:
        fmt = f"{s.sr / 1000:g} kHz, {s.dur:g} s"
        lines.append(f"{s.path}\n    {s.description} [{fmt}]")
    (out / "CONTENTS.txt").write_text("\n".join(lines) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="output folder (created; existing demo files are overwritten)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    files = make_demo_library(args.out, args.seed)
    size = sum(f.stat().st_size for f in files)
    print(f"wrote {len(files)} sounds ({size / 1e6:.1f} MB) to {args.out} in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

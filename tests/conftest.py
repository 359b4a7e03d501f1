"""Shared test set-up: an isolated index dir and HF cache per test, generated checkpoints and libraries.

Tests never touch the user's data dir or the network: SFX_INDEX_DIR and HF_HOME point into a
temp dir and HF_HUB_OFFLINE is set, so a test that would download fails loudly instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures_clap import tiny_clap, tiny_clap_dirs, tiny_clap_unfused  # noqa: E402,F401
from pg import _pg_server, postgres_url  # noqa: E402,F401

import audiogen  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
FIXTURES_BWF = SHARED / "fixtures" / "bwf"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SFX_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("SFX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SFX_NO_SERVER", "1")
    # Torch unless a test asks for OpenVINO (tests/test_runtime.py): an export per test's own
    # cache folder would cost every test that embeds a conversion of the model.
    monkeypatch.setenv("SFX_RUNTIME", "torch")
    monkeypatch.delenv("SFX_MODEL", raising=False)
    monkeypatch.delenv("SFX_DATABASE_URL", raising=False)


def make_library(root: Path) -> dict[str, Path]:
    """A small library of distinct sounds in mixed formats, rates and lengths."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "tone": audiogen.write_audio(root / "tones" / "tone_440.wav", audiogen.sine(44100, 2.0, freq=440), 44100),
        "low": audiogen.write_audio(root / "tones" / "tone_110.flac", audiogen.sine(48000, 3.0, freq=110), 48000),
        "noise": audiogen.write_audio(root / "noise" / "noise_burst.wav", audiogen.noise(32000, 1.5, seed=1), 32000, subtype="PCM_24"),
        "clicks": audiogen.write_audio(root / "clicks" / "clicks_fast.ogg", audiogen.clicks(48000, 4.0, every_s=0.1), 48000),
        "sweep": audiogen.write_audio(root / "sweeps" / "DOORWood_Creak Sweep_JD_Gen.wav", audiogen.sweep(48000, 2.5, f0=100, f1=4000, channels=2), 48000),
        "long": audiogen.write_audio(root / "long" / "rain_long.wav", audiogen.noise(16000, 23.0, amp=0.1, seed=7), 16000),
    }
    return files


@pytest.fixture
def library(tmp_path) -> tuple[Path, dict[str, Path]]:
    root = tmp_path / "library"
    return root, make_library(root)


@pytest.fixture
def settings(tmp_path, tiny_clap):
    from indexer.config import Settings

    return Settings(index_dir=tmp_path / "index", model=str(tiny_clap))

"""--play: the player chosen, the segment it plays, and the message when there is none."""

from __future__ import annotations

import builtins
import subprocess

import numpy as np
import pytest
import soundfile as sf

import audiogen
from indexer.config import UserError
from search import playback
from search.results import Result


def _result(path, offset):
    return Result(rank=1, path=str(path), score=0.5, offset_s=offset, end_s=offset + 1, duration_s=3.0, file_id=1, chunk_id=1)


def test_segment_starts_at_the_offset(tmp_path):
    data = audiogen.ramp(48000, 3.0, channels=2)
    src = audiogen.write_audio(tmp_path / "ramp.wav", data, 48000, subtype="FLOAT")
    out = tmp_path / "seg.wav"
    playback.write_segment(str(src), 1.0, 2.0, out)
    seg, sr = sf.read(out)
    assert sr == 48000 and seg.shape == (48000, 2)
    np.testing.assert_allclose(seg[:10], data[48000:48010], atol=1e-4)


def test_plays_with_a_command_line_player(tmp_path, monkeypatch):
    src = audiogen.write_audio(tmp_path / "tone.wav", audiogen.sine(48000, 3.0), 48000)
    calls = []
    monkeypatch.setattr(playback.shutil, "which", lambda name: "/usr/bin/aplay" if name == "aplay" else None)

    def fake_run(cmd, **kw):
        calls.append(cmd)
        assert sf.info(cmd[-1]).duration == pytest.approx(1.0, abs=0.01)  # 2.0 s -> the 3 s end
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(playback.subprocess, "run", fake_run)
    assert playback.play_result(_result(src, 2.0)) == "aplay"
    assert calls and calls[0][0] == "aplay"


def test_clear_message_when_nothing_can_play(tmp_path, monkeypatch):
    src = audiogen.write_audio(tmp_path / "tone.wav", audiogen.sine(48000, 1.0), 48000)
    monkeypatch.setattr(playback.shutil, "which", lambda name: None)
    real_import = builtins.__import__

    def no_sounddevice(name, *a, **k):
        if name == "sounddevice":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_sounddevice)
    with pytest.raises(UserError, match="no audio player found"):
        playback.play_result(_result(src, 0.0))

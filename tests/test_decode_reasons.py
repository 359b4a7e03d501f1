"""Failure reasons a person understands, and decoder chatter kept off the terminal (issue 19)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from indexer import audio
from indexer.audio import DecodeError


def _mp3(path, seconds=1.0):
    x = np.sin(np.arange(int(48000 * seconds)) * 0.05).astype("float32") * 0.5
    sf.write(path, x, 48000)
    return path


def test_an_existing_mp3_without_audio_is_not_called_a_pipe(tmp_path):
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x10" + b"\0" * 16 + os.urandom(200))
    with pytest.raises(DecodeError) as e:
        list(audio.iter_windows(bad))
    reason = str(e.value)
    assert "does not exist" not in reason and "pipe" not in reason
    assert "MP3" in reason and "damaged" in reason


def test_zero_bytes_and_images_say_what_they_are(tmp_path):
    zeros = tmp_path / "copy.wav"
    zeros.write_bytes(b"\0" * 5000)
    png = tmp_path / "cover.wav"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    with pytest.raises(DecodeError, match="only zero bytes"):
        audio.probe(zeros)
    with pytest.raises(DecodeError, match="PNG image"):
        audio.probe(png)


def test_unknown_length_is_not_printed_as_a_huge_number(tmp_path, monkeypatch):
    """libsndfile reports 2**63-1 frames for a stream of unknown length; none decoded."""

    class Unknown:
        samplerate, channels, frames, format, subtype = 44100, 2, 2**63 - 1, "MP3", "MPEG_LAYER_III"

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def read(self, n, dtype, always_2d):
            return np.zeros((0, 2), np.float32)

    monkeypatch.setattr(audio, "_open", lambda p: Unknown())
    with pytest.raises(DecodeError) as e:
        list(audio.iter_windows(tmp_path / "x.mp3"))
    assert "9223372036854775807" not in str(e.value)
    assert "no usable length" in str(e.value) and "truncated or damaged" in str(e.value)


def test_decoder_messages_do_not_reach_the_terminal(tmp_path, capfd):
    whole = _mp3(tmp_path / "whole.mp3").read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole[: len(whole) // 3])  # libmpg123: "Xing stream size off by more than 1%"
    windows = list(audio.iter_windows(cut))
    assert windows and windows[0].n_real > 0
    out, err = capfd.readouterr()
    assert "Xing" not in err and "Warning" not in err


def test_decoder_messages_are_kept_in_the_failure_reason(tmp_path, capfd):
    bad = tmp_path / "garbage.mp3"
    bad.write_bytes(b"\xff\xfb\x94\xc4" + b"\0" * 3000)
    with pytest.raises(DecodeError) as e:
        audio.probe(bad)
    assert "decoder:" in str(e.value) and "Illegal Audio-MPEG-Header" in str(e.value)
    assert "Illegal" not in capfd.readouterr().err


def test_other_lines_written_during_a_capture_still_reach_stderr(capfd):
    from indexer.decoder_log import captured

    said: list[str] = []
    with captured(said):
        os.write(2, b"Warning: Xing stream size off\nserver: GET /api/search 200\n")
    assert said == ["Warning: Xing stream size off"]
    assert "server: GET /api/search 200" in capfd.readouterr().err

"""--play: audition a result from its offset with whatever the machine has."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from indexer.config import UserError

PLAY_SECONDS = 30.0


def play_result(result, seconds: float = PLAY_SECONDS) -> str:
    """Play from result.offset_s; returns the name of the player used."""
    start = float(result.offset_s)
    if shutil.which("ffplay"):
        subprocess.run(["ffplay", "-nodisp", "-autoexit", "-loglevel", "error", "-ss", f"{start:.3f}",
                        "-t", f"{seconds:.3f}", result.path], check=False)
        return "ffplay"
    player = next((p for p in ("afplay", "aplay", "paplay", "play") if shutil.which(p)), None)
    if player:
        with tempfile.TemporaryDirectory() as tmp:
            seg = Path(tmp) / "segment.wav"
            write_segment(result.path, start, start + seconds, seg)
            subprocess.run([player, str(seg)], check=False, stdout=subprocess.DEVNULL)
        return player
    try:
        import sounddevice  # optional extra: pip install 'sfx-index[play]'
    except Exception:
        raise UserError(
            "no audio player found: install ffmpeg (ffplay), alsa-utils (aplay) or "
            "'pip install sounddevice'; meanwhile the file is " + result.path
        ) from None
    from indexer.audio import load_segment

    data, sr = load_segment(result.path, start, start + seconds)
    print(f"playing {result.path} from {start:.1f} s (Ctrl-C stops)", file=sys.stderr)
    sounddevice.play(data, sr)
    sounddevice.wait()
    return "sounddevice"


def write_segment(path: str, start_s: float, end_s: float, out: Path) -> None:
    """A 16-bit WAV of [start_s, end_s) of `path` at its own rate and channel count."""
    import soundfile as sf

    from indexer.audio import load_segment

    data, sr = load_segment(path, start_s, end_s)
    sf.write(str(out), data, sr, subtype="PCM_16")

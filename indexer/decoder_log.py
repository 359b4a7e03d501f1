"""What C decoders print: captured instead of written through the progress bar, and explained.

libsndfile's MP3 decoder (libmpg123) writes notes such as "Warning: Xing stream size off by
more than 1%" or "Note: Illegal Audio-MPEG-Header" straight to file descriptor 2, where they
land in the middle of a tqdm bar. `captured()` points fd 2 at a scratch file for the length
of one decoder call and hands back what was printed, so that the caller can log it at debug
level or put it in the file's failure reason. Lines that do not look like a decoder's (a log
line of another thread written in that instant) are written back to the real stderr.

`unreadable_reason()` turns libsndfile's opening errors into what is wrong with the file:
"File does not exist or is not a regular file (possibly a pipe?)" is what libsndfile says of
an existing MP3 in which it finds no audio frame.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# Prefixes libmpg123, libsndfile and FFmpeg put on what they print.
_DECODER_LINE = re.compile(r"^\s*(Note|Warning|Error|\[[^\]]{1,160}\]|mpg123|big_values|"
                           r"Illegal|Xing|dequantization|Trying to resync|Hit end|Frame|Decoder|part2_3)", re.I)
MAX_REASON_CHARS = 240

_state = {"pid": None, "lock": None, "sink": None}


def _scratch():
    # A lock and a scratch file per process (worker processes are forked or spawned).
    if _state["pid"] != os.getpid():
        _state.update(pid=os.getpid(), lock=threading.Lock(), sink=tempfile.TemporaryFile())
    return _state["lock"], _state["sink"]


@contextmanager
def captured(out: list[str]) -> Iterator[list[str]]:
    """Within the block, what is written to fd 2 is appended (line by line) to `out`."""
    lock, sink = _scratch()
    with lock:
        try:
            sys.stderr.flush()
        except Exception:  # a closed or replaced stderr: nothing buffered to lose
            pass
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all (a daemon): nothing to protect
            yield out
            return
        sink.seek(0)
        sink.truncate()
        os.dup2(sink.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            other = []
            for line in text.splitlines():
                if not line.strip():
                    continue
                (out if _DECODER_LINE.match(line) else other).append(line.strip())
            if other:
                try:
                    sys.stderr.write("\n".join(other) + "\n")
                except Exception:
                    pass


def summary(lines: list[str]) -> str:
    """The decoder's messages as one short line ('' when it said nothing)."""
    seen: list[str] = []
    for ln in lines:
        ln = re.sub(r"\s+", " ", ln).strip()
        if ln and ln not in seen:
            seen.append(ln)
    text = "; ".join(seen)
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


# First bytes -> what the file really is, for reasons a person understands.
_MAGIC = [
    (0, b"\x89PNG", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"%PDF", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive"),
    (0, b"wvpk", "WavPack audio"),
    (4, b"ftyp", "an MP4/M4A container"),
    (0, b"ID3", "an MP3 (ID3 tag)"),
    (0, b"RIFF", "a RIFF/WAV file"),
    (0, b"RF64", "an RF64 file"),
    (0, b"FORM", "an AIFF file"),
    (0, b"fLaC", "a FLAC file"),
    (0, b"OggS", "an Ogg file"),
    (0, b"caff", "a CAF file"),
    (0, b"<", "a text/HTML/XML file"),
    (0, b"{", "a text/JSON file"),
]


def sniff(path: str | os.PathLike) -> str | None:
    """What the first bytes say the file is, or None when they say nothing known."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    if head and not head.strip(b"\x00"):
        return "zeros"
    for at, magic, what in _MAGIC:
        if head[at:at + len(magic)] == magic:
            return what
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "an MP3 (MPEG audio frame)"
    return None


def unreadable_reason(path: str | os.PathLike, raw: str, decoder_lines: list[str] | None = None) -> str:
    """A reason a person understands for a file libsndfile would not open."""
    p = Path(path)
    kind = sniff(p)
    said = summary(decoder_lines or [])
    tail = f" (decoder: {said})" if said else ""
    if kind == "zeros":
        return "the file holds only zero bytes (an interrupted copy or a damaged disk?)"
    pipe_msg = "not a regular file" in raw and p.is_file()
    ext = p.suffix.lower().lstrip(".")
    if kind and kind.startswith("an MP3") or (pipe_msg and ext in ("mp3", "mp2", "mpga")):
        return "no readable MPEG audio frame: the MP3 is damaged, truncated, or not an MP3" + tail
    if kind and not any(k in kind for k in ("RIFF", "RF64", "AIFF", "FLAC", "Ogg", "CAF")):
        return f"not an audio format this decoder reads: the file is {kind}" + tail
    if pipe_msg:
        what = f"{kind} whose contents" if kind else "its contents"
        return f"{what} are not a format the decoder recognises (damaged, truncated or not audio)" + tail
    return f"not a readable audio file: {raw}" + tail


def claimed_text(frames: int, samplerate: int) -> str:
    """The header's length in words; libsndfile gives 2**63-1 frames for 'unknown'."""
    if frames <= 0 or frames >= 2**62 or samplerate <= 0:
        return "the header gives no usable length"
    return f"the header claims {frames / samplerate:.1f} s"

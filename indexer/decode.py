"""The per-file decode recipe, written once: facts, windows, and why a file failed.

    facts = read_facts(path)                     # probe (AudioInfo fields) + header metadata
    for part in window_parts(path, hop_s, n):    # 10 s windows, at most n held at a time
        ...
    failure_reason(exc) -> str                   # the one-line reason a failed file records
    with decode_errors_for_user(path): ...       # DecodeError -> UserError (commands on one file)

Every path that turns a file into windows uses it: the local decode workers (workers.py),
the Ray actors (ray_engine.py), `sfx-index embed` (embedding.py) and the outside-file
`similar` of search/query.py. A build records the reason and goes on (invariant 4); a command
given one file says why it cannot read it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

from . import audio, metadata
from .config import HOP_S, UserError

MAX_REASON_CHARS = 300  # an unexpected error's message is cut to this in the failure report


@dataclass
class FileFacts:
    info: dict  # audio.AudioInfo fields
    meta: dict  # metadata.read_metadata(): flat keys such as "bext.description"


def read_facts(path) -> FileFacts:
    """What the catalog keeps about a file besides its vectors (probe first: it fails fastest)."""
    info = audio.probe(path)
    return FileFacts(dict(info.__dict__), metadata.read_metadata(path))


def file_windows(path, hop_s: float = HOP_S, analysis=None, facts: FileFacts | None = None) -> Iterator[audio.Window]:
    """The file's windows, streamed; DecodeError when it has none. `analysis` (an
    indexer.analysis.StreamAnalysis) is fed the same decoded blocks: no second read. With
    `facts`, what the decode found is added to facts.info once it ends: the decoder, and for a
    file cut off part way where it breaks (its windows are those of what decoded)."""
    n = 0
    decoded: dict = {}
    listen = dict(on_block=analysis.on_block, on_mono=analysis.on_mono) if analysis is not None else {}
    for w in audio.iter_windows(path, hop_s=hop_s, info_out=decoded, **listen):
        n += 1
        yield w
    if n == 0:
        raise audio.DecodeError("no audio frames")
    if facts is not None:
        facts.info.update(decoded_facts(decoded))


def decoded_facts(decoded: dict) -> dict:
    """The file facts a finished decode adds (see audio.iter_mono_48k's info_out)."""
    out = {"decoder": decoded.get("decoder")}
    if decoded.get("truncated_at_s") is not None:
        out.update(truncated_at_s=float(decoded["truncated_at_s"]), duration_s=float(decoded["truncated_at_s"]),
                   truncated_reason=decoded.get("truncated_reason"))
    return out


def window_parts(path, hop_s: float, size: int, analysis=None, facts: FileFacts | None = None
                 ) -> Iterator[list[audio.Window]]:
    """The file's windows in lists of at most `size`: memory stays bounded for any length."""
    part: list[audio.Window] = []
    for w in file_windows(path, hop_s, analysis, facts):
        part.append(w)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


def failure_reason(exc: BaseException) -> str:
    """The one-line reason recorded for a file whose decoding raised exc."""
    if isinstance(exc, audio.DecodeError):
        return str(exc) or "cannot decode"
    if isinstance(exc, MemoryError):
        return "out of memory while decoding"
    return f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]


@contextlib.contextmanager
def decode_errors_for_user(path):
    """For a command given this one file: a file it cannot decode is the user's one-line error."""
    try:
        yield
    except audio.DecodeError as exc:
        raise UserError(f"cannot decode {path}: {exc}") from None

"""How results look: a terminal table and an M3U playlist."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from urllib.parse import quote


def clock(seconds: float | None) -> str:
    """mm:ss.s (h:mm:ss.s past an hour)."""
    if seconds is None:
        return "?"
    s = max(0.0, float(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{sec:04.1f}" if h else f"{int(m):02d}:{sec:04.1f}"


def shown(path: str) -> str:
    """A path as text any terminal can print (undecodable bytes as U+FFFD)."""
    from indexer.config import safe_text  # not indexer.catalog: importing SQLAlchemy dominated a hand-off

    return safe_text(path)


def _link(path: str, text: str) -> str:
    """An OSC 8 hyperlink, so that a terminal can open the file on click."""
    if not sys.stdout.isatty() or os.environ.get("TERM") == "dumb":
        return text
    return f"\033]8;;file://{quote(path)}\033\\{text}\033]8;;\033\\"


def table(results, missing: set[str] = frozenset()) -> str:
    """Rows in rank order. In hybrid mode the score is the fused one (1 = first for both halves)
    and `found` says which half found the file: sound (CLAP), keyword (names, descriptions), both."""
    width = shutil.get_terminal_size((120, 20)).columns
    by = any(getattr(r, "found_by", None) for r in results)
    found = f"{'found':<7}  " if by else ""
    lines = [f"{'#':>3}  {'score':>6}  {found}{'match':<15}  {'length':>8}  {'format':<13}  path / description"]
    for r in results:
        at = f"{clock(r.offset_s)}-{clock(r.end_s)}"
        found = f"{r.found_by or '':<7}  " if by else ""
        head = f"{r.rank:>3}  {r.score:6.3f}  {found}{at:<15}  {clock(r.duration_s):>8}  {r.format:<13}  "
        cut = getattr(r, "truncated_at_s", None)
        lines.append(head + _link(shown(r.path), shown(r.path)) + ("  [not on disk]" if r.path in missing else "")
                     + (f"  [cut off at {clock(cut)}]" if cut is not None else ""))
        extra = r.description or r.ucs
        if r.tags:
            extra = (extra + "  " if extra else "") + "[" + ", ".join(r.tags[:5]) + "]"
        if extra:
            lines.append(" " * len(head) + extra[: max(20, width - len(head))])
        if getattr(r, "copies", None):
            lines.append(" " * len(head) + f"(+{len(r.copies)} copies: {shown(r.copies[0])}{' ...' if len(r.copies) > 1 else ''})")
        if r.duplicates:
            lines.append(" " * len(head) + f"(+{len(r.duplicates)} identical: {shown(r.duplicates[0])}{' ...' if len(r.duplicates) > 1 else ''})")
    return "\n".join(lines)


def write_m3u(path: str | Path, results) -> None:
    """Extended M3U; VLC reads the start-time option, other players play from the top."""
    out = ["#EXTM3U"]
    for r in results:
        dur = int(round(r.duration_s or -1))
        out.append(f"#EXTINF:{dur},{shown(Path(r.path).name)} @ {clock(r.offset_s)} (score {r.score:.3f})")
        out.append(f"#EXTVLCOPT:start-time={r.offset_s:.3f}")
        out.append(r.path)
    # surrogateescape writes an undecodable name back as its original bytes.
    Path(path).write_text("\n".join(out) + "\n", encoding="utf-8", errors="surrogateescape")

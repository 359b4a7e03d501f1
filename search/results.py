"""The result row of every search: what the table, --json, the server and the Python API return.

Kept free of numpy and the catalog so that handing a query to a running server stays fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from indexer.config import UserError


class NoMatches(UserError):
    """The filters leave no file to rank: an empty answer (exit 0), like a query nothing matches."""


@dataclass
class Result:
    rank: int
    path: str
    score: float
    offset_s: float
    end_s: float
    duration_s: float | None
    file_id: int
    chunk_id: int | None
    sample_rate: int | None = None
    channels: int | None = None
    subtype: str | None = None
    container: str | None = None
    description: str | None = None
    ucs: str | None = None
    tags: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # byte-identical copies
    copies: list[str] = field(default_factory=list)  # near-duplicates folded in (search --collapse-copies)
    # Measured sound (docs/hygiene.md); None where not measurable or not measured yet.
    loudness_lufs: float | None = None
    true_peak_dbtp: float | None = None
    sample_peak_dbfs: float | None = None
    clipped_samples: int | None = None
    dc_offset: float | None = None
    silence_head_s: float | None = None
    silence_tail_s: float | None = None
    loudness_range_lu: float | None = None
    # Hybrid and keyword modes: which half found the file ("sound", "keyword", "both") and each
    # half's own score (CLAP cosine of the best window; keyword relevance, higher is better).
    # `score` is then the fused score (hybrid) or the keyword score (keyword mode).
    truncated_at_s: float | None = None  # the file breaks off there (an interrupted copy); indexed up to it
    found_by: str | None = None
    sound_score: float | None = None
    keyword_score: float | None = None

    @property
    def format(self) -> str:
        bits = {"PCM_16": "16", "PCM_24": "24", "PCM_32": "32", "PCM_U8": "8", "PCM_S8": "8", "FLOAT": "32f", "DOUBLE": "64f"}
        b = bits.get(self.subtype or "", (self.subtype or "").lower())
        sr = f"{self.sample_rate / 1000:g}k" if self.sample_rate else "?"
        return f"{sr}/{b}/{self.channels or '?'}ch"

    def as_json(self) -> dict:
        d = asdict(self)
        d["format"] = self.format
        return d

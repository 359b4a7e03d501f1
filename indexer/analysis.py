"""Measurements and fingerprint of a file, taken from the decode stream that embedding reads.

    analysis = StreamAnalysis()
    for w in audio.iter_windows(path, on_block=analysis.on_block, on_mono=analysis.on_mono):
        ...                                   # the windows go to the model as before
    result = analysis.result()                # FileAnalysis: measurements dict + fingerprint bytes

`analyse_file(path)` decodes a file for these alone (no windows, no model): the build uses it
for files indexed before measurements existed, so an older catalog is filled in without
re-embedding. VERSION is stored with each file; raising it makes the next build measure again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fingerprint import Fingerprinter
from .measure import Measurements, SoundMeter

VERSION = 2  # 2: fingerprint version 2 (band sums in float64)


@dataclass
class FileAnalysis:
    measurements: dict  # indexer.measure.KEYS -> value or None
    fingerprint: bytes  # indexer.fingerprint.Fingerprint.to_bytes()
    version: int = VERSION


class StreamAnalysis:
    """Listeners for audio.iter_windows / iter_mono_48k: on_block (native), on_mono (48 kHz)."""

    def __init__(self):
        self._meter: SoundMeter | None = None
        self._fingerprint = Fingerprinter()

    def on_block(self, block: np.ndarray, samplerate: int) -> None:
        if self._meter is None:
            self._meter = SoundMeter(samplerate, block.shape[1])
        self._meter.add(block)

    def on_mono(self, chunk: np.ndarray) -> None:
        self._fingerprint.add(chunk)

    def result(self) -> FileAnalysis:
        m = self._meter.result() if self._meter is not None else Measurements()
        return FileAnalysis(m.as_dict(), self._fingerprint.result().to_bytes())


def analyse_file(path) -> FileAnalysis:
    """Decode the file once for its measurements and fingerprint alone (DecodeError if it can't)."""
    from .audio import iter_mono_48k

    analysis = StreamAnalysis()
    for _ in iter_mono_48k(path, on_block=analysis.on_block, on_mono=analysis.on_mono):
        pass
    return analysis.result()


def analysis_result(analysis: StreamAnalysis | None) -> FileAnalysis | None:
    """The result of a stream's analysis; None if there was none or it failed (a measurement
    problem never fails a file that embedded: the next build's backfill tries it again)."""
    if analysis is None:
        return None
    try:
        return analysis.result()
    except Exception as exc:
        import logging

        logging.getLogger(__name__).debug("measurement failed: %s", exc)
        return None

"""embed_files(): CLAP vectors of every window of some files, with no index (`sfx-index embed`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import Settings


def embed_files(settings: Settings, files: list[Path], *, hop_s: float = 10.0, batch_size: int = 16) -> list[dict]:
    from .clap import ClapEncoder
    from .decode import decode_errors_for_user, window_parts

    encoder = ClapEncoder.load(settings.model, device=settings.device, precision=settings.precision, parts=("audio",),
                               int8_dir=settings.index_dir)
    out = []
    for path in files:
        rows = []
        # Streamed: an hour-long file never holds more than one batch of windows.
        with decode_errors_for_user(path):
            for batch in window_parts(path, hop_s, batch_size):
                vecs = encoder.embed_audio(np.stack([w.samples for w in batch]), [w.n_real for w in batch])
                rows.extend(
                    {"start_s": round(w.start_s, 6), "end_s": round(w.end_s, 6), "vector": v.tolist()}
                    for w, v in zip(batch, vecs)
                )
        out.append({"path": str(Path(path).resolve()), "windows": rows})
    return out

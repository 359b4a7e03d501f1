"""embed_files(): CLAP vectors of every window of some files, with no index (`sfx-index embed`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import Settings, UserError


def embed_files(settings: Settings, files: list[Path], *, hop_s: float = 10.0, batch_size: int = 16) -> list[dict]:
    from .audio import DecodeError, iter_windows
    from .clap import ClapEncoder

    from .pipeline import build_precision

    encoder = ClapEncoder.load(
        settings.model, device=settings.device, precision=build_precision(settings.precision), parts=("audio",)
    )
    out = []
    for path in files:
        rows = []
        batch = []

        def flush():
            vecs = encoder.embed_audio(np.stack([w.samples for w in batch]), [w.n_real for w in batch])
            rows.extend(
                {"start_s": round(w.start_s, 6), "end_s": round(w.end_s, 6), "vector": v.tolist()}
                for w, v in zip(batch, vecs)
            )
            batch.clear()

        try:
            # Streamed: an hour-long file never holds more than one batch of windows.
            for w in iter_windows(path, hop_s=hop_s):
                batch.append(w)
                if len(batch) == batch_size:
                    flush()
        except DecodeError as exc:
            raise UserError(f"cannot decode {path}: {exc}") from None
        if batch:
            flush()
        out.append({"path": str(Path(path).resolve()), "windows": rows})
    return out

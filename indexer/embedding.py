"""embed_files(): CLAP vectors of every window of some files, with no index (`sfx-index embed`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import Settings, UserError


def embed_files(settings: Settings, files: list[Path], *, hop_s: float = 10.0, batch_size: int = 16) -> list[dict]:
    from .audio import DecodeError, iter_windows
    from .clap import ClapEncoder

    encoder = ClapEncoder.load(settings.model, device=settings.device, precision=settings.precision, parts=("audio",))
    out = []
    for path in files:
        try:
            windows = list(iter_windows(path, hop_s=hop_s))
        except DecodeError as exc:
            raise UserError(f"cannot decode {path}: {exc}") from None
        vecs = []
        for i in range(0, len(windows), batch_size):
            part = windows[i : i + batch_size]
            vecs.append(encoder.embed_audio(np.stack([w.samples for w in part]), [w.n_real for w in part]))
        vecs = np.concatenate(vecs) if vecs else np.zeros((0, encoder.dim), np.float32)
        out.append(
            {
                "path": str(Path(path).resolve()),
                "windows": [
                    {"start_s": round(w.start_s, 6), "end_s": round(w.end_s, 6), "vector": v.tolist()}
                    for w, v in zip(windows, vecs)
                ],
            }
        )
    return out

"""The encoder a build embeds with: loaded on its runtime, int8 prepared, recorded in the catalog.

`encoder_for_build` is what the pipeline calls on its first batch: it loads the audio tower on
the runtime asked for (indexer.runtime), makes the index's int8 model first when the build
asks for `--precision int8` (calibrated on files of the library being built, its fidelity
report printed to stderr before any window is embedded with it), and records the runtime and
precision in the catalog before the first vectors are committed (indexer.catalog.embedders:
int8 and float never mix in one index).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Iterable

CALIBRATION_FILES = 512  # files looked at per root for int8 calibration windows (the first found)


def runtime_version(runtime: str) -> str | None:
    try:
        if runtime == "openvino":
            from .openvino_common import version

            return version()
        import torch

        return torch.__version__.split("+")[0]
    except ImportError:
        return None


def calibration_files(roots: Iterable[Path], per_root: int = CALIBRATION_FILES) -> list[Path]:
    from ..scan import scan

    out: list[Path] = []
    for root in roots:
        out.extend(f.path for f in itertools.islice(scan(Path(root)), per_root))
    return out


def encoder_for_build(settings, catalog, roots, echo=None):
    """The ClapEncoder of a build (see the module docstring)."""
    from ..clap import ClapEncoder

    echo = echo or (lambda line: print(line, file=sys.stderr))
    catalog.check_embedder(settings.precision)
    enc = ClapEncoder.load(settings.model, device=settings.device, precision=settings.precision,
                           parts=(), int8_dir=settings.index_dir)
    if settings.precision == "int8":  # the model must exist before the tower loads
        from .towers import prepare_int8

        prepare_int8(enc, calibration_files(roots), echo)
    enc.audio_runtime()
    facts = enc.embedding_facts()
    catalog.record_embedder(facts["runtime"], facts["precision"], runtime_version(facts["runtime"]))
    return enc

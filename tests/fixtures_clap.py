"""Generated CLAP checkpoints for tests (imported by tests/conftest.py and tests/test_clap.py).

`clap_checkpoints(root)` writes tiny fused and tiny unfused random checkpoints once per
session with scripts/make_random_clap.py; the pytest fixtures below wrap it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make_random_clap.py"


def _make_random_clap():
    spec = importlib.util.spec_from_file_location("make_random_clap", _SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_random_clap


def clap_checkpoints(root: Path) -> dict[str, Path]:
    """{'fused': dir, 'unfused': dir} of tiny random checkpoints under `root` (made if missing)."""
    make = _make_random_clap()
    out = {}
    for name, fused in (("fused", True), ("unfused", False)):
        d = Path(root) / f"tiny-{name}"
        if not (d / "model.safetensors").is_file():
            make(d, tiny=True, fused=fused, seed=0)
        out[name] = d
    return out


def full_checkpoint(root: Path) -> Path:
    """A full-size (laion/clap-htsat-fused shapes) random fused checkpoint under `root`."""
    d = Path(root) / "full-fused"
    if not (d / "model.safetensors").is_file():
        _make_random_clap()(d, tiny=False, fused=True, seed=0)
    return d


@pytest.fixture(scope="session")
def tiny_clap_dirs(tmp_path_factory) -> dict[str, Path]:
    return clap_checkpoints(tmp_path_factory.mktemp("clap"))


@pytest.fixture(scope="session")
def tiny_clap(tiny_clap_dirs) -> Path:
    """The tiny fused checkpoint directory (pass it as --model / SFX_MODEL)."""
    return tiny_clap_dirs["fused"]


@pytest.fixture(scope="session")
def tiny_clap_unfused(tiny_clap_dirs) -> Path:
    return tiny_clap_dirs["unfused"]


@pytest.fixture(scope="session")
def tiny_clap_larger(tmp_path_factory) -> Path:
    """A tiny random checkpoint of the HTSAT-base family (laion/larger_clap_*), unfused."""
    d = tmp_path_factory.mktemp("clap-larger") / "tiny-larger"
    _make_random_clap()(d, tiny=True, family="larger", seed=0)
    return d

"""The layout docs/architecture.md promises: one registry of index kinds, one decode recipe,
shared options in a neutral module, no private names across modules."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import audiogen
from indexer import audio, decode, vectors
from indexer.config import UserError
from indexer.vectors import KINDS, VectorIndex, kind_choices, kind_of, plan_index

ROOT = Path(__file__).resolve().parent.parent
NAMEDTUPLE_API = {"_make", "_asdict", "_replace", "_fields"}  # public despite the underscore


def test_cli_kind_choices_are_the_registry():
    from indexer.cli import main

    assert kind_choices() == ["auto"] + [k.name for k in KINDS]
    option = next(p for p in main.commands["reindex"].params if p.name == "kind")
    assert list(option.type.choices) == kind_choices()
    res = CliRunner().invoke(main, ["reindex", "--kind", "no-such-kind"])
    assert res.exit_code == 2 and "ivf-pqfs" in res.output


@pytest.mark.parametrize("kind", [k.name for k in KINDS])
def test_every_registered_kind_plans_builds_searches_and_round_trips(kind, tmp_path):
    """What adding a kind must give: a plan the kind owns, an index that finds a stored vector
    first, and the same answers after save and load."""
    d, n = 32, 3000
    plan = plan_index(n, d, "64M", kind=kind, exact_threshold=1000)
    assert kind_of(plan["kind"]).name == kind
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(n, dtype=np.int64) * 7
    rerank = vectors.ArrayRerank(ids, x.astype(np.float16))
    vi = VectorIndex(d, kind=kind, memory="64M", exact_threshold=1000, rerank=rerank).build(ids, x)
    assert vi.meta["kind"] == plan["kind"] and vi.kind.name == kind
    scores, found = vi.search(x[:20], 5)
    assert np.mean(found[:, 0] == ids[:20]) >= 0.9
    vi.save(tmp_path / "v.faiss")
    back = VectorIndex.load(tmp_path / "v.faiss", rerank=rerank)
    np.testing.assert_array_equal(back.search(x[:20], 5)[1], found)
    assert back.remove(ids[:10]) == 10 and back.ntotal == n - 10


def test_decode_recipe_windows_parts_and_reasons(tmp_path):
    path = audiogen.write_audio(tmp_path / "long.wav", audiogen.noise(48000, 35.0, seed=3), 48000)
    facts = decode.read_facts(path)
    assert facts.info["samplerate"] == 48000 and facts.meta["header.channels"] == "1"
    parts = list(decode.window_parts(path, 10.0, 2))
    assert [len(p) for p in parts] == [2, 2]  # 0, 10, 20 and the end-aligned 25 s window
    flat = [w.start_s for p in parts for w in p]
    assert flat == [w.start_s for w in audio.iter_windows(path)] == [0.0, 10.0, 20.0, 25.0]

    assert decode.failure_reason(audio.DecodeError("no audio frames")) == "no audio frames"
    assert decode.failure_reason(audio.DecodeError()) == "cannot decode"
    assert decode.failure_reason(MemoryError()) == "out of memory while decoding"
    assert decode.failure_reason(ValueError("x" * 1000)) == ("ValueError: " + "x" * 1000)[:300]

    bad = audiogen.write_bytes(tmp_path / "bad.wav", b"RIFF....WAVEjunk")
    with pytest.raises(audio.DecodeError):
        list(decode.file_windows(bad))
    with pytest.raises(UserError, match="cannot decode"):
        with decode.decode_errors_for_user(bad):
            list(decode.file_windows(bad))


def _imports_of_private_names(path: Path) -> list[str]:
    """`from x import _name` and `module._name` uses of another module's private names."""
    tree = ast.parse(path.read_text())
    found = []
    ours = ("indexer", "search")
    local_modules = set()  # names bound to our own modules: `from . import audio`, `import indexer.x as y`
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and (n.level or (n.module or "") in ours):
            local_modules |= {a.asname or a.name for a in n.names}
        elif isinstance(n, ast.Import):
            local_modules |= {a.asname or a.name for a in n.names if a.name.split(".")[0] in ours}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in ours):
            found += [f"from {node.module} import {a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in local_modules and node.attr.startswith("_") and not node.attr.startswith("__") \
                and node.attr not in NAMEDTUPLE_API:
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    bad = {}
    for path in sorted((ROOT / "indexer").rglob("*.py")) + sorted((ROOT / "search").rglob("*.py")):
        uses = _imports_of_private_names(path)
        if uses:
            bad[str(path.relative_to(ROOT))] = uses
    assert bad == {}


def test_both_command_lines_take_their_shared_options_from_the_neutral_module():
    for rel in ("search/cli.py", "search/tag_cli.py", "search/web/cli.py", "search/hygiene_cli.py"):
        tree = ast.parse((ROOT / rel).read_text())
        sources = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "indexer.cli" not in sources and "indexer.options" in sources, rel

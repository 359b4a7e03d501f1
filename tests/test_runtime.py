"""The runtime choice (torch / OpenVINO): fidelity to transformers fp32, determinism, the export's
check and cache, `auto`'s choice and its fallbacks, a text query without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer import runtime as rt
from indexer.clap import ClapEncoder

from fixtures_clap import tiny_clap, tiny_clap_dirs  # noqa: F401
from test_clap import N, cos, reference_audio, repeatpad, windows

needs_openvino = pytest.mark.skipif(not rt.openvino_installed(), reason="openvino is not installed")


@pytest.fixture(scope="session")
def ov_cache(tmp_path_factory):
    """One export cache for the session: each export of the tiny model costs seconds."""
    return tmp_path_factory.mktemp("ov-cache")


@pytest.fixture
def on_openvino(ov_cache, monkeypatch):
    monkeypatch.setenv("SFX_CACHE_DIR", str(ov_cache))
    monkeypatch.setenv("SFX_RUNTIME", "openvino")
    return ov_cache


def _ov(ckpt, **kw) -> ClapEncoder:
    enc = ClapEncoder.load(str(ckpt), device="cpu", precision="fp32", runtime="openvino", **kw)
    return enc


def _settled_text_export(ckpt) -> None:
    """Make the text export a query at the `auto` precision loads (bf16 where it is fast, or fp32
    where bf16 fails its check), as a first query does."""
    ClapEncoder.load(str(ckpt), device="cpu", runtime="openvino", parts=("text",))


# --- choosing -----------------------------------------------------------------------------------

def test_requested_runtime_from_argument_or_environment(monkeypatch):
    monkeypatch.delenv("SFX_RUNTIME", raising=False)
    assert rt.requested(None) == "auto"
    monkeypatch.setenv("SFX_RUNTIME", "OpenVINO")
    assert rt.requested(None) == "openvino"
    assert rt.requested("torch") == "torch"
    with pytest.raises(rt.RuntimeUnavailable, match="unknown runtime 'onnx'"):
        rt.requested("onnx")


def test_auto_is_torch_off_the_cpu_and_without_openvino(monkeypatch):
    assert rt.resolve("auto", "cuda") == "torch" and rt.resolve("auto", "mps") == "torch"
    assert rt.resolve("torch", "cpu") == "torch"
    monkeypatch.setattr(rt, "openvino_installed", lambda: False)
    assert rt.resolve("auto", "cpu") == "torch"
    with pytest.raises(rt.RuntimeUnavailable, match="pip install openvino"):
        rt.resolve("openvino", "cpu")
    with pytest.raises(rt.RuntimeUnavailable, match="--device cpu"):
        rt.resolve("openvino", "cuda")


def test_without_openvino_everything_runs_on_torch(tiny_clap, monkeypatch):
    monkeypatch.setattr(rt, "openvino_installed", lambda: False)
    enc = ClapEncoder.load(str(tiny_clap), device="cpu", precision="fp32", runtime="auto")
    assert enc.runtimes == {"audio": "torch", "text": "torch"}
    assert enc.embed_audio(windows(2)).shape == (2, enc.dim)


# --- OpenVINO: fidelity and determinism ---------------------------------------------------------

@needs_openvino
def test_openvino_audio_agrees_with_transformers_fp32(tiny_clap, on_openvino):
    enc = _ov(tiny_clap, parts=("audio",))
    assert enc.runtimes["audio"] == "openvino"
    w = windows(5, seed=2)
    short = windows(1, seed=4)[0, : 2 * 48_000 + 77]
    ours = enc.embed_audio(np.concatenate([w, repeatpad(short)[None]]), n_real=[N] * 5 + [len(short)])
    ref = reference_audio(tiny_clap, list(w) + [short])
    assert ours.dtype == np.float32 and ours.shape == (6, enc.dim)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert cos(ours, ref).min() >= 0.9999
    assert (ours @ ours.T)[np.triu_indices(6, 1)].min() < 0.99  # distinct vectors: the check means something


@needs_openvino
def test_openvino_window_vector_ignores_batch_order_and_threads(tiny_clap, on_openvino):
    from indexer.runtime.ov_audio import OvAudioTower

    enc = _ov(tiny_clap, parts=("audio",))
    mel = enc.features(windows(9, seed=5))[0][:, 0]
    alone = np.concatenate([enc.embed_mel(mel[i:i + 1]) for i in range(9)])
    rng = np.random.default_rng(0)
    for size in (2, 4, 9):
        order = rng.permutation(9)
        got = np.concatenate([enc.embed_mel(mel[order[i:i + size]]) for i in range(0, 9, size)])
        assert np.array_equal(got, alone[order]), f"batch size {size}"
    tower = enc._ov["audio"]
    feats = mel[:, None]
    by_streams = [OvAudioTower(tower.path, "fp32", streams=s).embed(feats) for s in (1, 2, 3)]
    assert all(np.array_equal(by_streams[0], b) for b in by_streams[1:])
    # A fresh process with its own thread count.
    code = ("import sys, numpy as np; from indexer.runtime.ov_audio import OvAudioTower\n"
            "x = np.load(sys.argv[2]); t = OvAudioTower(sys.argv[1], 'fp32', streams=1)\n"
            "np.save(sys.stdout.buffer, t.embed(x))\n")
    np.save(on_openvino / "feats.npy", feats)
    out = subprocess.run([sys.executable, "-c", code, str(tower.path), str(on_openvino / "feats.npy")],
                         capture_output=True, check=True, env=_env())
    import io

    assert np.array_equal(np.load(io.BytesIO(out.stdout)), by_streams[0])


@needs_openvino
def test_longer_windows_are_refused_by_the_export_and_run_on_torch(tiny_clap, on_openvino):
    enc = _ov(tiny_clap, parts=("audio",))
    feats, _ = enc.features(windows(2, seed=6))
    with pytest.raises(ValueError, match="is_longer"):
        enc._ov["audio"].embed(feats, np.array([False, True]))
    torch_enc = ClapEncoder.load(str(tiny_clap), device="cpu", precision="fp32", runtime="torch", parts=("audio",))
    n_real = [N, N + 1]
    got = enc.embed_features(feats, np.array([False, True]))
    assert cos(got[1], torch_enc.embed_features(feats, np.array([False, True]))[1]) >= 0.99999
    assert cos(got, torch_enc.embed_audio(windows(2, seed=6), n_real)).min() >= 0.9999


@needs_openvino
def test_openvino_text_agrees_with_transformers_fp32(tiny_clap, on_openvino):
    import torch
    from transformers import AutoTokenizer, ClapModel

    texts = ["dog barking", "metal scraping in stone room", "rain on a tin roof at night", ""]
    enc = _ov(tiny_clap, parts=("text",))
    assert enc.runtimes["text"] == "openvino"
    ours = enc.embed_text(texts)
    tok = AutoTokenizer.from_pretrained(tiny_clap)
    model = ClapModel.from_pretrained(tiny_clap).eval()
    with torch.inference_mode():
        ref = model.get_text_features(**tok(texts, padding=True, return_tensors="pt")).pooler_output.numpy()
    assert cos(ours, ref).min() >= 0.9999
    # A text's vector does not depend on the other texts of the call.
    assert np.array_equal(enc.embed_text([texts[1]])[0], ours[1])


def _env(**extra):
    import os

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent), **extra)
    return env


def _probe(code: str, *args: str, **env: str) -> list[str]:
    """The lines a fresh Python process running `code` prints (it must succeed)."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=_env(**env))
    assert out.returncode == 0, out.stderr
    return out.stdout.split("\n")


@needs_openvino
def test_the_compiled_text_tower_is_cached_without_a_second_copy_of_its_weights(tiny_clap, on_openvino):
    from indexer.runtime import ov_text

    _ov(tiny_clap, parts=("text",))  # the export exists
    tower = ov_text.load(tiny_clap, "fp32", use_prefetch=False)
    ref = tower.embed(["door slam"])
    old = tower.path / ov_text.OLD_COMPILED  # a full blob left by an earlier version
    old.mkdir(exist_ok=True)
    (old / "1.blob").write_bytes(b"x" * 1000)
    code = ("import sys\nimport numpy as np\nfrom indexer.runtime import ov_text\n"
            "print(ov_text.load(sys.argv[1], 'fp32', use_prefetch=False).embed(['door slam'])[0].tobytes().hex())")
    first, second = (_probe(code, str(tiny_clap))[0] for _ in range(2))  # the second reads the cache
    assert first == second == ref[0].tobytes().hex()
    assert not old.exists()
    blobs = list((tower.path / ov_text.COMPILED).glob("*.blob"))
    assert blobs, "no compiled tower was cached"
    # A blob cut short (a process that ended while OpenVINO wrote it: `sfx-search` ends with
    # os._exit) is compiled again and written whole; the vector is the same.
    whole = {b: b.stat().st_size for b in blobs}
    for b in blobs:
        b.chmod(0o600)
        b.write_bytes(b.read_bytes()[: len(b.read_bytes()) // 3])
    assert _probe(code, str(tiny_clap))[0] == first
    again = {b: b.stat().st_size for b in (tower.path / ov_text.COMPILED).glob("*.blob")}
    assert again.keys() == whole.keys() and all(again[b] > whole[b] // 2 for b in whole), (again, whole)
    if ov_text.weightless_cache():
        # A full blob holds the graph and every weight (for this tiny model, ~1.2x the IR's xml
        # and bin together); without the weights it is about the graph alone.
        graph, weights = ((tower.path / f).stat().st_size for f in ("model.xml", "model.bin"))
        assert all(b.stat().st_size < graph + weights / 2 for b in blobs), (graph, weights, [b.stat().st_size for b in blobs])


@needs_openvino
def test_a_text_query_on_openvino_imports_neither_torch_nor_transformers(tiny_clap, on_openvino):
    _settled_text_export(tiny_clap)
    code = ("import sys; from indexer.clap import ClapEncoder\n"
            "e = ClapEncoder.load(sys.argv[1], parts=('text',))\n"
            "v = e.embed_text(['door slam'])\n"
            "print(e.runtimes['text'], v.shape, sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    assert _probe(code, str(tiny_clap), SFX_RUNTIME="auto")[0] == "openvino (1, 32) []"


@needs_openvino
def test_the_query_path_imports_openvino_without_its_converter_and_an_export_still_converts():
    """runtime_module() leaves out openvino's model converter (a cold query does not need it),
    and an export in the same process still finds it."""
    code = ("import sys, torch\n"
            "from indexer.runtime.openvino_common import convert_model, core, runtime_module\n"
            "core()\n"
            "print('openvino.tools.ovc' in sys.modules, sys.modules.get('openvino.tools.ovc', 'absent'))\n"
            "ir = convert_model(torch.nn.Linear(3, 2), example_input=torch.zeros(1, 3))\n"
            "out = core().compile_model(ir, 'CPU')(torch.ones(1, 3).numpy())[0]\n"
            "print(out.shape, runtime_module() is sys.modules['openvino'])")
    assert _probe(code)[:2] == ["False absent", "(1, 2) True"]


# --- the export's check, cache and fallbacks ----------------------------------------------------

@needs_openvino
def test_a_failed_check_keeps_nothing_and_auto_falls_back_to_torch(tiny_clap, tmp_path, monkeypatch):
    from indexer.runtime import cache, ov_audio

    monkeypatch.setenv("SFX_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setattr(cache, "VERIFY_COSINE", 1.5)  # no export can pass
    with pytest.raises(rt.RuntimeUnavailable, match="differs from torch fp32.*--runtime torch"):
        _ov(tiny_clap, parts=("audio",))
    assert ov_audio.load(tiny_clap, "fp32") is None  # nothing kept
    assert cache.failed_before(ov_audio.facts(tiny_clap, "fp32"))
    enc = ClapEncoder.load(str(tiny_clap), device="cpu", precision="fp32", runtime="auto", parts=("audio",))
    assert enc.runtimes["audio"] == "torch"
    assert enc.embed_audio(windows(1)).shape == (1, enc.dim)


@needs_openvino
def test_auto_keeps_torch_where_the_export_measured_slower(tiny_clap, on_openvino):
    from indexer.runtime import ov_audio

    _ov(tiny_clap, parts=("audio",))
    entry = ov_audio.load(tiny_clap, "fp32").path.parent
    meta_file = entry / "meta.json"
    meta = json.loads(meta_file.read_text())
    assert meta["verified"]["ok"] and meta["verified"]["min_cosine"] >= 0.9999
    assert set(meta["seconds_per_window"]) == {"openvino", "torch"}
    original = meta_file.read_text()
    try:
        meta["seconds_per_window"] = {"openvino": 2.0, "torch": 1.0}
        meta_file.write_text(json.dumps(meta))
        auto = ClapEncoder.load(str(tiny_clap), device="cpu", precision="fp32", runtime="auto", parts=("audio",))
        assert auto.runtimes["audio"] == "torch"
        assert _ov(tiny_clap, parts=("audio",)).runtimes["audio"] == "openvino"  # asked for: given
    finally:
        meta_file.write_text(original)


@needs_openvino
def test_a_changed_checkpoint_gets_a_new_export(tiny_clap, on_openvino, tmp_path):
    import shutil

    from indexer.runtime import ov_audio

    copy = tmp_path / "copy"
    shutil.copytree(tiny_clap, copy)
    a = ov_audio.facts(tiny_clap, "fp32")
    b = ov_audio.facts(copy, "fp32")
    assert a != b  # another path
    before = ov_audio.facts(copy, "fp32")
    cfg = json.loads((copy / "config.json").read_text())
    cfg["logit_scale_init_value"] = 2.0
    (copy / "config.json").write_text(json.dumps(cfg))
    assert ov_audio.facts(copy, "fp32") != before
    assert ov_audio.load(copy, "fp32") is None


# --- the catalog's record of what embedded it ---------------------------------------------------

def test_catalog_records_runtimes_and_never_mixes_int8_with_float(tmp_path):
    from indexer.catalog import Catalog, EmbeddingMixMismatch

    cat = Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite'}", create=True)
    assert cat.embedders() is None
    cat.record_embedder("torch", "fp32")
    cat.record_embedder("openvino", "fp32", "2026.4.1")
    cat.record_embedder("openvino", "fp32", "2026.4.1")  # once per combination
    rec = cat.embedders()
    assert rec["family"] == "float"
    assert [(r["runtime"], r["precision"]) for r in rec["runs"]] == [("torch", "fp32"), ("openvino", "fp32")]
    with pytest.raises(EmbeddingMixMismatch, match="never mix.*--index DIR"):
        cat.record_embedder("openvino", "int8")
    cat.close()
    other = Catalog.open(f"sqlite:///{tmp_path / 'd.sqlite'}", create=True)
    other.record_embedder("openvino", "int8")
    with pytest.raises(EmbeddingMixMismatch, match="holds int8 vectors"):
        other.check_embedder("bf16")
    other.close()


needs_nncf = pytest.mark.skipif(not (rt.openvino_installed() and __import__("importlib.util").util.find_spec("nncf")),
                                reason="openvino or nncf is not installed")


@needs_nncf
def test_int8_is_calibrated_on_the_library_reported_then_used(tiny_clap, on_openvino, library, tmp_path):
    from indexer.runtime import int8, towers

    root, files = library
    with pytest.raises(rt.RuntimeUnavailable, match="--runtime openvino"):
        ClapEncoder.load(str(tiny_clap), device="cpu", precision="int8", runtime="torch", parts=())
    enc = ClapEncoder.load(str(tiny_clap), device="cpu", precision="int8", parts=(), int8_dir=tmp_path / "index")
    with pytest.raises(rt.RuntimeUnavailable, match="build --precision int8"):
        enc.embed_audio(windows(1))
    lines = []
    meta = towers.prepare_int8(enc, sorted(files.values()), lines.append)
    assert lines[0].startswith("calibrating the int8 audio model on") and "int8 fidelity on" in lines[1]
    assert "cosine to the float vectors: min" in lines[2] and "similar-searches" in lines[3]
    assert meta["fidelity"]["windows"] == len(int8.calibration_windows(sorted(files.values())))
    assert (tmp_path / "index" / int8.FOLDER / "model.xml").is_file()
    assert enc.embedding_facts() == {"runtime": "openvino", "precision": "int8"}
    got = enc.embed_audio(windows(3, seed=8))
    ref = ClapEncoder.load(str(tiny_clap), device="cpu", precision="fp32", runtime="torch",
                           parts=("audio",)).embed_audio(windows(3, seed=8))
    assert got.shape == ref.shape and not np.array_equal(got, ref)  # quantized: not the float vectors
    # The report describes the tower now in use. How close int8 comes to float on the tiny random
    # checkpoint depends on the CPU's int8 kernels (VNNI or not), so the test checks the report
    # against the vectors, not a quality bar (docs/runtime.md has the full-size figures).
    cal = int8.calibration_windows(sorted(files.values()))
    again = int8.fidelity(towers.audio_tower_float(enc).embed(enc.frontend(cal)[0]), enc.embed_audio(cal))
    assert again["min_cosine"] == pytest.approx(meta["fidelity"]["min_cosine"], abs=1e-4)
    assert again["top_k_overlap_mean"] == pytest.approx(meta["fidelity"]["top_k_overlap_mean"])
    again = []
    towers.prepare_int8(enc, [], again.append)  # made once per index: the report again, no calibration
    assert again[0].startswith("int8 fidelity on")


# --- GPUs -----------------------------------------------------------------------------------------

def test_batched_gpu_frontend_computes_the_cpu_frontend(tiny_clap):
    """The GPU frontend's ops run on the CPU too: same numbers as indexer.mel's frontend."""
    import torch

    from indexer.runtime.gpu_mel import BatchedLogMel

    enc = ClapEncoder.load(str(tiny_clap), device="cpu", precision="fp32", runtime="torch", parts=())
    w = windows(5, seed=9)
    w[3] *= 1e-4  # quiet: where float32 would drift
    ours = BatchedLogMel(enc.frontend.log_mel(), "cpu")(torch.from_numpy(w))
    np.testing.assert_allclose(ours.numpy(), enc.frontend.mel(w).numpy(), atol=2e-4)


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.skipif(not _cuda(), reason="no CUDA device on this machine (the CUDA path runs where one exists)")
def test_cuda_embeds_like_the_cpu_in_large_batches(tiny_clap):
    gpu = ClapEncoder.load(str(tiny_clap), device="cuda", precision="fp32", parts=("audio",))
    cpu = ClapEncoder.load(str(tiny_clap), device="cpu", precision="fp32", runtime="torch", parts=("audio",))
    assert gpu.runtimes["audio"] == "torch" and gpu.batch_size == ClapEncoder.gpu_batch_size
    w = windows(6, seed=10)
    assert cos(gpu.embed_audio(w), cpu.embed_audio(w)).min() >= 0.9999
    assert str(gpu.mel(w).device).startswith("cuda")


@needs_openvino
def test_a_text_tower_whose_bf16_export_failed_its_check_runs_in_fp32_on_openvino(tiny_clap, tmp_path, monkeypatch):
    """Not on torch: a query on it would import torch. Where bf16 is fast, the tiny random
    checkpoint's bf16 text export fails the check by itself; elsewhere the failure is recorded
    here as an export records it."""
    from indexer.runtime import cache, ov_text, prefetch

    monkeypatch.setenv("SFX_CACHE_DIR", str(tmp_path))
    cache.record_failure(ov_text.facts(tiny_clap, "bf16"), "the OpenVINO text export differs from transformers fp32")
    assert ov_text.usable_precision(tiny_clap, "bf16") == "fp32" == ov_text.usable_precision(tiny_clap, "fp32")
    for runtime in ("openvino", "auto"):
        enc = ClapEncoder.load(str(tiny_clap), device="cpu", precision="bf16", runtime=runtime, parts=("text",))
        assert enc.runtimes["text"] == "openvino" and enc.text_tower().precision == "fp32"
    ref = ClapEncoder.load(str(tiny_clap), device="cpu", precision="fp32", runtime="torch", parts=("text",))
    texts = ["door slam", "metal scraping in a stone room"]
    assert cos(enc.embed_text(texts), ref.embed_text(texts)).min() >= 0.9999
    # a cold query's prefetch thread loads the same fp32 tower for a bf16 query
    monkeypatch.setenv("SFX_RUNTIME", "auto")
    if not (rt.cuda_possible() or rt.mps_possible()):
        assert prefetch.start_text_tower(str(tiny_clap), precision="bf16") is True
        assert prefetch.take_text_tower(tiny_clap, "bf16").precision == "fp32"


@needs_openvino
def test_prefetched_text_tower_is_the_one_the_query_uses(tiny_clap, on_openvino, monkeypatch):
    from indexer.runtime import prefetch

    _settled_text_export(tiny_clap)
    monkeypatch.setenv("SFX_RUNTIME", "torch")
    assert prefetch.start_text_tower(str(tiny_clap)) is False  # not a query on OpenVINO
    monkeypatch.setenv("SFX_RUNTIME", "auto")
    if rt.cuda_possible() or rt.mps_possible():
        pytest.skip("this machine may have a GPU: the prefetch leaves the choice to the encoder")
    assert prefetch.start_text_tower(str(tiny_clap)) is True
    job = next(iter(prefetch._jobs.values()))
    enc = ClapEncoder.load(str(tiny_clap), device="cpu", parts=("text",))
    assert enc.runtimes["text"] == "openvino" and enc._text is job["tower"]
    assert not prefetch._jobs
    np.testing.assert_allclose(enc.embed_text(["door"]), _ov(tiny_clap, parts=("text",)).embed_text(["door"]))


@needs_openvino
def test_a_cold_query_waits_for_the_tower_thread_to_import_openvino_and_no_longer(tiny_clap, on_openvino):
    """wait_for_imports returns once the thread has imported OpenVINO (its compile may still run)."""
    _settled_text_export(tiny_clap)
    code = ("import sys\n"
            "from indexer.runtime import prefetch\n"
            "assert prefetch.start_text_tower(sys.argv[1], 'cpu')\n"
            "prefetch.wait_for_imports(timeout=60)\n"
            "print('openvino' in sys.modules, 'openvino.tools.ovc' in sys.modules)\n"
            "from indexer.clap import resolve_precision\n"
            "print(prefetch.take_text_tower(sys.argv[1], resolve_precision('auto', 'cpu')) is not None)")
    assert _probe(code, str(tiny_clap), SFX_RUNTIME="auto")[:2] == ["True False", "True"]


# --- through the command lines -------------------------------------------------------------------

_COLD_PROBE = """import json, sys
from search.cli import main
sys.argv = ['sfx-search', *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted(m for m in ('torch', 'transformers', 'openvino.tools.ovc') if m in sys.modules)),
      file=sys.stderr)
"""


@needs_openvino
def test_a_cold_sfx_search_on_openvino_answers_as_before_without_torch(tmp_path, library, tiny_clap, on_openvino,
                                                                        monkeypatch):
    """The cold command line (prefetch thread, the query's text embedded there) gives the rows
    the library API gives in a process that prefetches nothing, and imports no torch."""
    import shutil

    from click.testing import CliRunner

    from indexer import cli as index_cli
    from search import Library

    root, _ = library
    index = tmp_path / "index"
    res = CliRunner().invoke(index_cli.main, ["build", str(root), "--index", str(index), "--model", str(tiny_clap),
                                              "--workers", "1", "-q", "--runtime", "torch"])
    assert res.exit_code == 0, res.output
    monkeypatch.setenv("SFX_RUNTIME", "openvino")  # the build's --runtime torch was set for this process
    _ov(tiny_clap, parts=("text",))  # the export exists, as for every query after the first
    shutil.copytree(index, tmp_path / "copy")  # the same catalog, its text-vector cache still empty
    args = ["rain on a tin roof", "--not", "door", "--index", str(index), "--model", str(tiny_clap), "--json", "-n", "4"]
    out = subprocess.run([sys.executable, "-c", _COLD_PROBE, *args], capture_output=True, text=True,
                         env=_env(SFX_RUNTIME="auto", SFX_NO_SERVER="1"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stderr.strip().splitlines()[-1]) == []
    cold = json.loads(out.stdout)
    with Library.open(tmp_path / "copy", model=str(tiny_clap)) as lib:
        assert lib.encoder("text").runtimes["text"] == "openvino"
        ref = [r.as_json() for r in lib.search("rain on a tin roof", 4, not_text="door")]
    assert len(cold) == 4
    assert [{k: v for k, v in r.items() if k != "on_disk"} for r in cold] == json.loads(json.dumps(ref))
    # Run as the command (`python -m search.cli`), the process ends without the interpreter's
    # teardown (no atexit handler runs), its output all written (the text vector is cached by
    # now: the same rows).
    as_command = ("import atexit, runpy, sys\n"
                  "atexit.register(lambda: print('teardown ran', file=sys.stderr))\n"
                  "sys.argv = ['sfx-search', *sys.argv[1:]]\n"
                  "runpy.run_module('search.cli', run_name='__main__', alter_sys=True)\n")
    out = subprocess.run([sys.executable, "-c", as_command, *args], capture_output=True, text=True,
                         env=_env(SFX_RUNTIME="auto", SFX_NO_SERVER="1"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == cold
    assert "teardown ran" not in out.stderr


@needs_nncf
def test_builds_record_their_runtime_and_int8_never_mixes_with_float(tmp_path, library, tiny_clap, on_openvino):
    from click.testing import CliRunner

    from indexer import cli as index_cli
    from indexer.catalog import Catalog
    from search import cli as search_cli

    root, files = library
    runner = CliRunner()

    def embedders(index):
        cat = Catalog.open(f"sqlite:///{index / 'catalog.sqlite'}", create=False)
        try:
            return cat.embedders()
        finally:
            cat.close()

    flt = ["--index", str(tmp_path / "float"), "--model", str(tiny_clap), "--workers", "1", "-q"]
    res = runner.invoke(index_cli.main, ["build", str(root), *flt, "--runtime", "torch", "--json"])
    assert res.exit_code == 0, res.output
    from indexer.clap import resolve_precision

    runs = embedders(tmp_path / "float")["runs"]
    assert [(r["runtime"], r["precision"]) for r in runs] == [("torch", resolve_precision("auto", "cpu"))]
    res = runner.invoke(index_cli.main, ["build", str(root), *flt, "--precision", "int8"])
    assert res.exit_code == 1 and "never mix" in res.output
    res = runner.invoke(index_cli.main, ["build", str(root), *flt, "--runtime", "bogus"])
    assert res.exit_code == 2

    q8 = ["--index", str(tmp_path / "int8"), "--model", str(tiny_clap), "--workers", "1", "-q"]
    res = runner.invoke(index_cli.main, ["build", str(root), *q8, "--precision", "int8", "--runtime", "auto", "--json"])
    assert res.exit_code == 0, res.output
    assert "int8 fidelity on" in res.stderr and "similar-searches" in res.stderr
    rec = embedders(tmp_path / "int8")
    assert rec["family"] == "int8" and rec["runs"][0]["runtime"] == "openvino"
    res = runner.invoke(search_cli.main, ["rain", "--index", str(tmp_path / "int8"), "--model", str(tiny_clap),
                                          "--json", "-n", "3"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)) == 3

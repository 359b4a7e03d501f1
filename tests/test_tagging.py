"""Bulk tagging: zero-shot scores equal numpy over catalog vectors, sets replace, filters,
review decisions, trained heads on a separable generated library, export, eval.

The index is written through the Catalog API with vectors from the tiny random checkpoint
(the same windows and encoder as `sfx-index build`), which keeps the test quick on a shared
2-core machine.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from audiogen import write_audio  # noqa: E402
from fixtures_clap import clap_checkpoints  # noqa: E402


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A generated library (low tones vs noise bursts in two folders, a UCS-named file) and its index."""
    from indexer.audio import iter_windows, probe
    from indexer.catalog import FileInfo, ModelRecord
    from indexer.clap import ClapEncoder
    from indexer.config import Settings
    from indexer.index import Index
    from indexer.scan import content_hash, scan

    base = tmp_path_factory.mktemp("tagging")
    model = clap_checkpoints(base / "clap")["fused"]
    lib = base / "lib"
    for i in range(6):
        write_audio(lib / "tones" / f"tone{i}.wav", kind="sine", duration=1.5, freq=80 + 15 * i)
        write_audio(lib / "noise" / f"burst{i}.wav", kind="noise", duration=1.5, seed=i, amp=0.5 + 0.05 * i)
    write_audio(lib / "misc" / "DOORWood_Creak_AB_CD.wav", kind="sweep", duration=21.0)
    settings = Settings(index_dir=base / "index", model=str(model), device="cpu", precision="fp32")
    enc = ClapEncoder.load(str(model), device="cpu", precision="fp32", parts=("audio",))
    index = Index.open(settings, create=True)
    cat = index.catalog
    cat.ensure_model(ModelRecord.from_fingerprint(enc.fingerprint, enc.dim))
    root = cat.add_root(lib)
    for sf in scan(lib):
        wins = list(iter_windows(sf.path))
        vecs = enc.embed_audio(np.stack([w.samples for w in wins]), [w.n_real for w in wins])
        info = probe(sf.path)
        cat.write_file(
            root.id, sf.rel, size=sf.size, mtime_ns=sf.mtime_ns, content_hash=content_hash(sf.path),
            info=FileInfo(info.duration_s, info.samplerate, info.channels, info.subtype, info.container),
            chunks=[(w.index, w.start_s, w.end_s) for w in wins], vectors=vecs, metadata={},
        )
    cat.bump_generation()
    index.close()
    return {"settings": settings, "lib": lib, "model": model, "index_dir": settings.index_dir}


@pytest.fixture
def library(env):
    from search.query import Library

    lib = Library.from_settings(env["settings"])
    yield lib
    lib.close()


def run(env, *args):
    from search.cli import main

    res = CliRunner().invoke(
        main, list(args), env={"SFX_INDEX_DIR": str(env["index_dir"]), "SFX_MODEL": str(env["model"])},
        catch_exceptions=False,
    )
    return res


def test_zero_shot_scores_equal_numpy(library):
    from search.tagging import label_set, label_vectors, load_templates, zero_shot_rows
    from search.tagging.tagger import logit_scale_a

    labels = label_set("low tone: a low sine tone,noise burst,door creak")
    templates = load_templates()
    lv = label_vectors(labels, templates, library.text_vectors)
    # Direct: ensemble by hand from the text vectors, then per file max over its chunks.
    raw = library.text_vectors([t.replace("{}", lab.text) for lab in labels for t in templates])
    raw = raw.reshape(len(labels), len(templates), -1)
    ens = raw.mean(1)
    ens /= np.linalg.norm(ens, axis=1, keepdims=True)
    assert np.allclose(lv, ens, atol=1e-6)
    cat = library.catalog
    files = [f for f, _, _ in cat.indexed_files()]
    scale = logit_scale_a(library.model)
    for agg, exclusive in (("max", False), ("mean", False), ("max", True)):
        rows = list(zero_shot_rows(cat, labels, lv, agg=agg, exclusive=exclusive, logit_scale=scale,
                                   top_k=len(labels)))
        got = {(r.file_id, r.label): r.score for r in rows}
        for fid in files:
            _, vecs = cat.chunks_for(fid)
            sims = vecs @ ens.T
            s = sims.max(0) if agg == "max" else sims.mean(0)
            if exclusive:
                z = np.exp(scale * s - (scale * s).max())
                s = z / z.sum()
            for j, lab in enumerate(labels):
                assert got[(fid, lab.name)] == pytest.approx(float(s[j]), abs=1e-5)


def test_tag_set_replace_filter_review_export(env, library, tmp_path):
    cat = library.catalog
    res = run(env, "tag", "--labels", "hum,hiss,creak", "--exclusive", "--top-k", "1", "--name", "demo", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["files"] == 13 and rep["tags"] == 13
    first = {(s.set_name, s.source): s.tags for s in cat.tag_sets()}
    assert first[("demo", "zero-shot")] == 13
    # Exclusive scores are probabilities (> 0), so every file gets its top label.
    # Rerunning the set replaces it (top-2 now: 26 rows, not 13 + 26).
    res = run(env, "tag", "--labels", "hum,hiss,creak", "--exclusive", "--top-k", "2", "--name", "demo")
    assert res.exit_code == 0, res.output
    assert {(s.set_name, s.source): s.tags for s in cat.tag_sets()}[("demo", "zero-shot")] == 26

    # --tag in search filters by tag; a rejection overrides the machine tag.
    tagged = cat.tagged_files("hum", set_name="demo")
    assert tagged
    target = tagged[0]
    assert target.file_id in cat.filter_file_ids(tags=["hum"])
    res = run(env, "tag", "review", "hum", "--reject", target.path)
    assert res.exit_code == 0, res.output
    assert target.file_id not in cat.filter_file_ids(tags=["hum"])
    res = run(env, "hum", "--tag", "hum", "--mode", "semantic", "--json", "-n", "50")
    assert res.exit_code in (0, 1)
    if res.exit_code == 0:
        assert target.path not in {r["path"] for r in json.loads(res.output)}
    # The decision survives a rerun of the set, and an acceptance adds the label.
    run(env, "tag", "--labels", "hum,hiss,creak", "--exclusive", "--top-k", "1", "--name", "demo")
    assert target.file_id not in cat.filter_file_ids(tags=["hum"])
    untagged = cat.indexed_files()[0][0]
    assert untagged not in cat.filter_file_ids(tags=["whistle"])
    path = cat.files_by_ids([untagged])[untagged].path
    assert run(env, "tag", "review", "whistle", "--accept", path).exit_code == 0
    assert cat.filter_file_ids(tags=["whistle"]) == {untagged}
    listing = json.loads(run(env, "tag", "review", "whistle", "--json").output)
    assert any(r["path"] == path and r["decision"] == "accepted" for r in listing)

    out = tmp_path / "tags.csv"
    res = run(env, "tag", "export", "--csv", str(out), "--name", "demo")
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["path", "cat_id", "label", "score"]
    assert len(rows) > 1 and all(Path(r[0]).is_absolute() for r in rows[1:])
    assert target.path not in {r[0] for r in rows[1:] if r[2] == "hum"}
    assert run(env, "tag", "list", "--json").exit_code == 0


def test_ucs_taxonomy_stores_cat_id(env, library):
    res = run(env, "tag", "--taxonomy", "ucs", "--top-k", "2", "--exclusive", "--name", "ucs", "--json",
              "--prompt", "the sound of {}")
    assert res.exit_code == 0, res.output
    rows = [r for r in library.catalog.tagged_files(set_name="ucs") if r.source != "user"]
    assert rows and all(r.cat_id and r.source == "zero-shot" for r in rows)
    # Exclusive scores are softmax probabilities over the 752 labels.
    assert all(0.0 < r.score <= 1.0 for r in rows)


def test_head_learns_separable_folders(env, library):
    res = run(env, "tag", "train", "--from-folders", str(env["lib"]), "--name", "kind", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    # misc/ holds one file: dropped (fewer than 2); tones vs noise remain.
    assert rep["class_names"] == ["noise", "tones"]
    assert rep["head"]["top1"] >= 0.9
    assert "zero_shot" in rep and "macro_f1" in rep["zero_shot"]
    res = run(env, "tag", "--head", "kind", "--json")
    assert res.exit_code == 0, res.output
    cat = library.catalog
    tones = {f for f, _, rel in cat.indexed_files() if rel.startswith("tones/")}
    assert tones <= cat.filter_file_ids(tags=["tones"])
    # UCS names: one file only, so training refuses with a clear message.
    res = run(env, "tag", "train", "--from-ucs-names", "--name", "ucs")
    assert res.exit_code == 1 and "2 classes" in res.output


def test_eval_from_folders_reuses_index(env, tmp_path):
    report = tmp_path / "eval.json"
    res = run(env, "tag", "eval", "--from-folders", str(env["lib"] / ".."/ "lib"), "--json-out", str(report),
              "--prompt", "{}")
    assert res.exit_code == 0, res.output
    rep = json.loads(report.read_text())
    clean = rep["conditions"]["clean"]
    assert rep["reused_files"] == 13 and rep["embedded_files"] == 0  # stored vectors, no model call
    assert set(clean["retrieval"]) == {"R@1", "R@5", "R@10", "mAP"}
    assert clean["zero_shot"]["top5"] == 1.0  # 3 classes: the top 5 always holds the answer
    assert "zs top1" in res.output


def test_eval_snr_embeds_noisy_versions(env, tmp_path):
    from search.tagging.evaluate import add_noise

    x = np.sin(np.linspace(0, 200, 48000)).astype(np.float32)
    for kind in ("white", "pink"):
        n = add_noise(x, 10.0, kind) - x
        assert 10 * np.log10(np.mean(x**2) / np.mean(n**2)) == pytest.approx(10.0, abs=0.01)
    esc = tmp_path / "esc"
    (esc / "meta").mkdir(parents=True)
    rows = ["filename,fold,target,category"]
    for i in range(4):
        write_audio(esc / "audio" / f"t{i}.wav", kind="sine", duration=1.0, freq=100 + 10 * i)
        write_audio(esc / "audio" / f"n{i}.wav", kind="noise", duration=1.0, seed=i)
        rows += [f"t{i}.wav,{i % 2 + 1},0,low_tone", f"n{i}.wav,{i % 2 + 1},1,noise_burst"]
    (esc / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    res = run(env, "tag", "eval", "--esc50", str(esc), "--snr", "0", "--noise", "pink", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert list(rep["conditions"]) == ["clean", "snr 0 dB pink"]
    assert rep["embedded_files"] == 16  # 8 clean (not indexed) + 8 noisy
    assert rep["conditions"]["clean"]["head_kfold"]["top1"] >= 0.75


def test_every_tag_command_has_help_with_example():
    from search.tag_cli import tag

    runner = CliRunner()
    for name in [None, *tag.commands]:
        args = ["--help"] if name is None else [name, "--help"]
        res = runner.invoke(tag, args)
        assert res.exit_code == 0 and "Example" in res.output, name

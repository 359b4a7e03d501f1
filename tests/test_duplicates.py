"""Near-duplicates (indexer.fingerprint + search.duplicates) on generated families and look-alikes.

Each family is one recording and its copies: re-encodes (MP3, OGG, FLAC), resamples, bit
depths, gain changes, trimmed ends, a mono fold. The distractors are merely similar: the same
kind of sound from another seed (another door slam), a second take played a little slower,
a loop with three of its hits changed. Every family must come back whole, no distractor in
any group; the keeper and the differences are checked as a user reads them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from scipy.signal import lfilter

from audiogen import write_audio
from indexer.fingerprint import Fingerprint, fingerprint_file, match
from search.duplicates import DupFile, find_groups

SR = 48000
FIXTURES_BWF = Path(os.environ.get("SFX_SHARED", Path(__file__).resolve().parent.parent.parent / "shared")) / "fixtures" / "bwf"


def door_slam(seed: int, seconds: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    x = lfilter([1.0], [1.0, -0.95], rng.standard_normal(len(t))) * np.exp(-(t - 0.2).clip(0) * 5) * (t >= 0.2)
    return 0.5 * x / np.abs(x).max()


def sweep(seconds: float = 3.0, rate: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR * rate
    return 0.3 * np.sin(2 * np.pi * (300 * t + 150 * t ** 2)) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.3 * t))


def loop(seed: int, changed: int = 0, seconds: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hits = rng.random(16) < 0.6
    if changed:
        hits[rng.choice(16, changed, replace=False)] ^= True
    hit = door_slam(seed + 100, 0.25)
    hit = hit[np.flatnonzero(hit)[0]:]
    x = np.zeros(int(SR * seconds))
    for i in np.flatnonzero(hits):
        a = int(i * seconds / 16 * SR)
        x[a:a + len(hit)] += hit[: len(x) - a]
    return 0.5 * x / np.abs(x).max()


def to_stereo(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bed = 0.01 * rng.standard_normal(len(x))  # each recording has its own room tone
    return np.stack([x + bed, 0.8 * x + bed[::-1]], axis=1)


def copies(d: Path, name: str, x: np.ndarray, kinds: list[str]) -> dict[str, Path]:
    """The original as 48 kHz/24-bit WAV plus the copies named in kinds."""
    out = {"orig": write_audio(d / f"{name}.wav", x, SR, subtype="PCM_24")}
    for k in kinds:
        if k == "mp3":
            out[k] = write_audio(d / "mp3" / f"{name}.mp3", x, SR)
        elif k == "ogg":
            out[k] = write_audio(d / "ogg" / f"{name}.ogg", x, SR)
        elif k == "flac44":
            out[k] = write_audio(d / "flac" / f"{name}.flac", soxr.resample(x, SR, 44100), 44100, subtype="PCM_16")
        elif k == "wav22":
            out[k] = write_audio(d / "low" / f"{name}_22k.wav", soxr.resample(x, SR, 22050), 22050, subtype="PCM_16")
        elif k == "gain":
            out[k] = write_audio(d / "quiet" / f"{name}_m6.wav", x * 10 ** (-6 / 20), SR, subtype="PCM_24")
        elif k == "trim":
            out[k] = write_audio(d / "trim" / f"{name}_trim.wav", x[SR // 2:], SR, subtype="PCM_24")
        elif k == "tailtrim":
            out[k] = write_audio(d / "trim" / f"{name}_end.wav", x[: len(x) - int(0.4 * SR)], SR, subtype="PCM_24")
        elif k == "mono":
            out[k] = write_audio(d / "mono" / f"{name}_mono.wav", x.mean(axis=1) if x.ndim == 2 else x, SR)
    return out


def dupfile(i: int, path: Path) -> DupFile:
    info = sf.info(str(path))
    return DupFile(
        file_id=i, path=str(path), fingerprint=fingerprint_file(path), sample_rate=info.samplerate,
        channels=info.channels, subtype=info.subtype, container=info.format, size=path.stat().st_size,
        mtime_ns=path.stat().st_mtime_ns, duration_s=info.duration,
    )


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    d = tmp_path_factory.mktemp("dups")
    families = {
        "slam": copies(d, "door_slam", to_stereo(door_slam(1), 1),
                       ["mp3", "ogg", "flac44", "wav22", "gain", "trim", "mono"]),
        "sweep": copies(d, "sweep", to_stereo(sweep(), 2), ["ogg", "gain", "tailtrim", "mono"]),
        "loop": copies(d, "loop", loop(5), ["mp3", "flac44", "trim"]),
    }
    distractors = {
        "slam2": write_audio(d / "other" / "door_slam_2.wav", to_stereo(door_slam(2), 3), SR, subtype="PCM_24"),
        "slam3": write_audio(d / "other" / "door_slam_3.wav", to_stereo(door_slam(3), 4), SR, subtype="PCM_24"),
        "take2": write_audio(d / "other" / "sweep_take2.wav", to_stereo(sweep(rate=0.97), 5), SR, subtype="PCM_24"),
        "loopvar": write_audio(d / "other" / "loop_variation.wav", loop(5, changed=3), SR, subtype="PCM_24"),
        "loop2": write_audio(d / "other" / "loop_other.wav", loop(6), SR, subtype="PCM_24"),
    }
    paths = [p for fam in families.values() for p in fam.values()] + list(distractors.values())
    files = [dupfile(i, p) for i, p in enumerate(paths)]
    return families, distractors, files


def test_every_family_is_found_and_no_distractor_is_grouped(library):
    families, distractors, files = library
    groups = find_groups(files)
    found = [{g.keeper.path, *(c.file.path for c in g.copies)} for g in groups]
    expected = [{str(p) for p in fam.values()} for fam in families.values()]
    assert sorted(map(sorted, found)) == sorted(map(sorted, expected))
    grouped = set().union(*found)
    assert not grouped & {str(p) for p in distractors.values()}


def test_the_keeper_and_the_differences_read_as_a_user_expects(library):
    families, _, files = library
    groups = {Path(g.keeper.path).stem: g for g in find_groups(files)}
    slam = groups["door_slam"]
    assert slam.keeper.path == str(families["slam"]["orig"])
    assert slam.why.startswith("WAV 48 kHz/24-bit stereo: lossless over lossy, higher sample rate")
    diff = {c.file.path: c.difference for c in slam.copies}
    assert re.match(r"MP3 \d+k of door_slam\.wav", diff[str(families["slam"]["mp3"])])
    assert diff[str(families["slam"]["ogg"])].startswith("OGG Vorbis")
    assert diff[str(families["slam"]["flac44"])].startswith("FLAC 44.1 kHz/16-bit stereo of door_slam.wav")
    assert diff[str(families["slam"]["gain"])] == "-6.0 dB"
    assert "mono fold" in diff[str(families["slam"]["mono"])]
    head = re.fullmatch(r"(\d\.\d\d) s shorter at the head", diff[str(families["slam"]["trim"])])
    assert head and abs(float(head.group(1)) - 0.5) <= 0.03
    sweep_diff = {c.file.path: c.difference for c in groups["sweep"].copies}
    tail = re.search(r"(\d\.\d\d) s shorter at the tail", sweep_diff[str(families["sweep"]["tailtrim"])])
    assert tail and abs(float(tail.group(1)) - 0.4) <= 0.03
    # JSON rows carry the measured level and offset, not only the sentence.
    j = {c["path"]: c for c in slam.as_json()["copies"]}
    assert j[str(families["slam"]["gain"])]["level_db"] == pytest.approx(-6.0, abs=0.1)


def test_the_keeper_prefers_richer_metadata_then_the_older_file(tmp_path):
    x = to_stereo(door_slam(9), 9)
    a = dupfile(1, write_audio(tmp_path / "a.wav", x, SR, subtype="PCM_24"))
    b = dupfile(2, write_audio(tmp_path / "b.wav", x, SR, subtype="PCM_24"))
    a.mtime_ns, b.mtime_ns = 2, 1
    (g,) = find_groups([a, b])
    assert g.keeper is b and "older file" in g.why
    a.metadata_fields = 3
    (g,) = find_groups([a, b])
    assert g.keeper is a and "richer metadata" in g.why


def test_fingerprints_survive_storage_and_reject_other_versions(library):
    _, _, files = library
    fp = files[0].fingerprint
    back = Fingerprint.from_bytes(fp.to_bytes())
    assert np.array_equal(back.bits, fp.bits) and np.array_equal(back.strong, fp.strong)
    assert np.array_equal(back.energy_cdb, fp.energy_cdb) and back.duration_s == fp.duration_s
    assert Fingerprint.from_bytes(b"\x07" + fp.to_bytes()[1:]) is None
    assert Fingerprint.from_bytes(b"") is None


def test_silence_and_clicks_too_short_to_tell_are_never_grouped(tmp_path):
    quiet = [dupfile(i, write_audio(tmp_path / f"silence_{i}.wav", np.zeros(SR * 2), SR)) for i in range(2)]
    click = np.zeros(SR // 10)
    click[10] = 0.9
    clicks = [dupfile(2 + i, write_audio(tmp_path / f"click_{i}.wav", click * (0.5 + i * 0.3), SR)) for i in range(2)]
    assert find_groups(quiet + clicks) == []


@pytest.mark.skipif(not FIXTURES_BWF.is_dir(), reason="needs the shared BWF fixtures")
def test_real_recordings_and_their_generated_copies(tmp_path):
    names = ["smpl_alarm_citizen_loop1.wav", "sound_grinder_pro new_camera bumb 1.wav", "izotoperx_cues_float.wav"]
    paths, family_of = [], {}
    for n, name in enumerate(names):
        src = FIXTURES_BWF / name
        data, sr = sf.read(str(src), always_2d=True)
        made = [
            write_audio(tmp_path / f"{n}" / "copy.flac", data, sr, subtype="PCM_16"),
            write_audio(tmp_path / f"{n}" / "copy.ogg", data, sr),
            write_audio(tmp_path / f"{n}" / "quiet.wav", data * 0.5, sr, subtype="PCM_24"),
            write_audio(tmp_path / f"{n}" / "up.wav", soxr.resample(data, sr, 96000), 96000, subtype="PCM_24"),
        ]
        for p in [src, *made]:
            family_of[str(p)] = n
            paths.append(p)
    groups = find_groups([dupfile(i, p) for i, p in enumerate(paths)])
    assert len(groups) == len(names)
    for g in groups:
        members = [g.keeper.path, *(c.file.path for c in g.copies)]
        assert len(members) == 5 and len({family_of[m] for m in members}) == 1
        assert not g.keeper.lossy


def test_match_is_symmetric_in_its_decision(library):
    families, distractors, files = library
    by_path = {f.path: f.fingerprint for f in files}
    fam = families["slam"]
    for k in ("mp3", "trim", "gain"):
        a, b = by_path[str(fam["orig"])], by_path[str(fam[k])]
        assert match(a, b) is not None and match(b, a) is not None
    assert match(by_path[str(fam["orig"])], by_path[str(distractors["slam2"])]) is None


def test_each_bulk_step_is_announced_before_the_pairs_are_compared(library):
    """The CLI's progress: the look-alike search and the screen, which take most of a large
    library's time, are announced as they start; the pairs left for `match` go through the bar."""
    _, _, files = library
    said, compared = [], []

    def progress(pairs):
        for pair in pairs:
            compared.append(pair)
            yield pair

    find_groups(files, progress=progress, stage=said.append)
    assert said[0] == f"finding look-alikes among {len(files)} fingerprinted files"
    assert said[1].startswith("screening ") and said[1].endswith(" candidate pairs")
    screened = int(said[1].split()[1])
    assert 0 < len(compared) <= screened

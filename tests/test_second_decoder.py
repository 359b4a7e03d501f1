"""Files a DAW opens, we open: FFmpeg (PyAV) behind libsndfile, and files cut off part way.

The files are generated with PyAV's own encoders (AAC, ALAC, WavPack, MP3 in Matroska) or
with soundfile, then damaged the way copies and tag editors damage them.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from indexer import audio

av = pytest.importorskip("av")

SR = 48000


def tone(seconds: float, channels: int = 1, sr: int = SR) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = (0.5 * np.sin(2 * np.pi * 440 * t) * (1 + 0.3 * np.sin(2 * np.pi * 0.7 * t))).astype(np.float32) * 0.7
    return np.tile(x, (channels, 1))  # (channels, frames)


def encode(path, codec: str, x: np.ndarray, sr: int = SR, fmt: str | None = None, sample_fmt: str | None = None):
    """Write (channels, frames) float32 with one of FFmpeg's encoders; returns the path."""
    layout = "mono" if x.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=sr)
        s.layout = layout
        target = sample_fmt or s.codec_context.codec.audio_formats[0].name
        s.codec_context.format = target
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x), format="fltp", layout=layout)
        frame.sample_rate = sr
        for f in av.AudioResampler(format=target, layout=layout, rate=sr).resample(frame):
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


@pytest.mark.parametrize("name, codec, container, subtype, kw", [
    ("take.m4a", "aac", "MP4", "AAC", {}),
    ("take_alac.m4a", "alac", "MP4", "ALAC", {"sample_fmt": "s16p"}),
    ("take.wv", "wavpack", "WAVPACK", "WAVPACK", {"sample_fmt": "s16p"}),
    ("take.mka", "libmp3lame", "MKA", "MPEG_LAYER_III", {}),
])
def test_formats_libsndfile_refuses_are_decoded_by_ffmpeg(tmp_path, name, codec, container, subtype, kw):
    x = tone(12.5, channels=2)
    p = encode(tmp_path / name, codec, x, **kw)
    with pytest.raises(Exception):
        sf.info(str(p))  # libsndfile refuses it: the second decoder is what reads it
    info = audio.probe(p)
    assert (info.decoder, info.container, info.subtype, info.channels) == ("ffmpeg", container, subtype, 2)
    assert info.duration_s == pytest.approx(12.5, abs=0.1)
    meta: dict = {}
    windows = list(audio.iter_windows(p, info_out=meta))
    assert [round(w.start_s, 1) for w in windows] == [0.0, pytest.approx(2.5, abs=0.1)]
    assert meta["decoder"] == "ffmpeg" and "truncated_at_s" not in meta
    mono = audio.decode_mono_48k(p)
    ref = x.mean(axis=0)
    n = min(len(mono), len(ref))
    lossless = codec in ("alac", "wavpack")
    if lossless:
        assert np.abs(mono[:n] - ref[:n]).max() < 1e-3
    else:  # a lossy codec delays and colours the signal: it still carries the same tone
        seg = mono[SR:3 * SR]
        peak_hz = np.argmax(np.abs(np.fft.rfft(seg))) * SR / len(seg)
        assert peak_hz == pytest.approx(440, abs=2)
        assert np.sqrt((seg ** 2).mean()) == pytest.approx(np.sqrt((ref[SR:3 * SR] ** 2).mean()), rel=0.2)


def test_an_mp3_libsndfile_rejects_but_a_daw_plays(tmp_path, capfd):
    """Zero padding a tag editor left after the ID3 tag: libmpg123 gives up after 64 KB of it."""
    plain = tmp_path / "plain.mp3"
    sf.write(plain, tone(3.0)[0], SR)
    tag = b"ID3\x04\x00\x00\x00\x00\x00\x10" + b"TIT2\x00\x00\x00\x06\x00\x00\x03hello"
    odd = tmp_path / "odd_tag.mp3"
    odd.write_bytes(tag + b"\0" * 70000 + plain.read_bytes())
    with pytest.raises(Exception):
        sf.info(str(odd))
    capfd.readouterr()  # what libmpg123 printed just now, when called directly
    info = audio.probe(odd)
    assert info.decoder == "ffmpeg" and info.container == "MP3"
    assert info.duration_s == pytest.approx(3.0, abs=0.1)  # counted, not FFmpeg's bit-rate estimate
    meta: dict = {}
    assert len(list(audio.iter_windows(odd, info_out=meta))) == 1 and "truncated_at_s" not in meta
    assert "libmpg123" not in capfd.readouterr().err


def test_segments_of_an_ffmpeg_file_match_the_whole_decode(tmp_path):
    p = encode(tmp_path / "long.m4a", "aac", tone(25.0, channels=2))
    whole, sr = audio.load_segment(p)
    for start in (0.0, 5.0, 12.3, 20.0):
        part, sr2 = audio.load_segment(p, start, start + 1.0)
        a = int(start * sr)
        assert sr2 == sr and part.shape == (48000, 2)
        np.testing.assert_allclose(part, whole[a:a + len(part)], atol=1e-6)


@pytest.mark.parametrize("kind", ["wav", "flac", "wv"])
def test_a_file_cut_off_part_way_gives_what_decoded_and_says_where(tmp_path, kind):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, SR * 25)).astype(np.float32)
    whole = tmp_path / f"whole.{kind}"
    if kind == "wv":
        encode(whole, "wavpack", x, sample_fmt="s16p")
    else:
        sf.write(whole, x.T, SR)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(data[: len(data) // 2])  # an interrupted copy
    meta: dict = {}
    windows = list(audio.iter_windows(cut, info_out=meta))
    assert len(windows) >= 1
    assert 8.0 < meta["truncated_at_s"] < 14.0
    assert "25.0 s" in meta["truncated_reason"]
    meta = {}
    list(audio.iter_windows(whole, info_out=meta))
    assert "truncated_at_s" not in meta


def test_an_index_holds_m4a_and_wavpack_and_the_page_plays_them(tmp_path, tiny_clap):
    import io

    from starlette.testclient import TestClient

    from indexer import pipeline
    from indexer.config import Settings
    from search.query import Library
    from search.web.app import create_app

    lib = tmp_path / "lib"
    lib.mkdir()
    files = {"m4a": encode(lib / "door.m4a", "aac", tone(3.0, 2)),
             "wv": encode(lib / "hum.wv", "wavpack", tone(2.0, 2), sample_fmt="s16p")}
    settings = Settings(index_dir=tmp_path / "index", model=str(tiny_clap))
    report = pipeline.build(settings, [str(lib)], workers=1, progress=False)
    assert report.new == 2 and report.failed == 0, report.failures
    with Library.from_settings(settings) as library:
        rows = {k: library.catalog.file_by_path(p) for k, p in files.items()}
        assert (rows["m4a"].container, rows["wv"].container) == ("MP4", "WAVPACK")
        with TestClient(create_app(library, index_dir=settings.index_dir, allowed_hosts=["testserver"])) as c:
            for key, row in rows.items():
                r = c.get(f"/api/files/{row.id}/audio")
                assert r.status_code == 200 and r.headers["content-type"] == "audio/wav", key
                data, sr = sf.read(io.BytesIO(r.content))
                assert len(data) / sr == pytest.approx(row.duration_s, abs=0.05)
                r = c.get(f"/api/files/{row.id}/audio", params={"start": 1.0, "end": 1.5, "download": 1})
                assert r.status_code == 200 and len(sf.read(io.BytesIO(r.content))[0]) == 24000
                assert c.get(f"/api/files/{row.id}/waveform").status_code == 200


def test_a_build_records_the_decoder_and_where_cut_files_break(tmp_path, tiny_clap):
    import json

    from click.testing import CliRunner

    from indexer import cli as index_cli
    from indexer import pipeline
    from indexer.config import Settings
    from search import cli as search_cli

    lib = tmp_path / "lib"
    lib.mkdir()
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (SR * 25, 2)).astype(np.float32)
    sf.write(lib / "whole.wav", x, SR)
    data = (lib / "whole.wav").read_bytes()
    (lib / "copy_interrupted.wav").write_bytes(data[: len(data) // 2])
    encode(lib / "door.m4a", "aac", tone(3.0, 2))
    settings = Settings(index_dir=tmp_path / "index", model=str(tiny_clap))
    report = pipeline.build(settings, [str(lib)], workers=1, progress=False)
    assert report.failed == 0 and report.new == 3
    from indexer.catalog import Catalog

    cat = Catalog.open(settings.catalog_url)
    try:
        rows = {p.name: cat.file_by_path(p) for p in lib.iterdir()}
    finally:
        cat.close()
    assert rows["door.m4a"].decoder == "ffmpeg" and rows["whole.wav"].decoder == "libsndfile"
    cut = rows["copy_interrupted.wav"]
    assert cut.truncated_at_s == pytest.approx(12.5, abs=0.01) and cut.duration_s == pytest.approx(12.5, abs=0.01)
    assert rows["whole.wav"].truncated_at_s is None

    out = CliRunner().invoke(index_cli.main, ["status", "--index", str(settings.index_dir)]).output
    assert "cut off: " in out and "copy_interrupted.wav: indexed up to 12.5 s" in out
    st = json.loads(CliRunner().invoke(index_cli.main, ["status", "--index", str(settings.index_dir), "--json"]).stdout)
    assert st["truncated_count"] == 1 and st["truncated"][0]["indexed_to_s"] == pytest.approx(12.5, abs=0.01)
    res = CliRunner().invoke(search_cli.main, ["copy interrupted", "--mode", "keyword", "--json", "--index",
                                               str(settings.index_dir), "--model", settings.model])
    row = json.loads(res.stdout)[0]
    assert row["path"].endswith("copy_interrupted.wav") and row["truncated_at_s"] == pytest.approx(12.5, abs=0.01)

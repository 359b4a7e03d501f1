"""Metadata (indexer.metadata): real recorder files read in place, tags, UCS names, fuzzing."""

from __future__ import annotations

import csv
import json
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiogen import sine, write_audio, write_bytes
from indexer.metadata import (
    UcsName,
    parse_bext,
    parse_info,
    parse_ixml,
    parse_ucs_name,
    read_metadata,
    riff_chunks,
    ucs_table,
)
from indexer.resources import data_file

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "bwf"
if not FIXTURES.is_dir():
    FIXTURES = Path("/work/shared/fixtures/bwf")
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures/bwf not present")
REAL = sorted(p for p in FIXTURES.glob("*") if p.suffix.lower() == ".wav") if FIXTURES.is_dir() else []
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------ real recorder files


@needs_fixtures
def test_sound_devices_bext_and_ixml():
    m = read_metadata(FIXTURES / "sounddevices_A101_1.WAV")
    assert m["header.container"] == "WAV" and m["header.subtype"] == "PCM_24"
    assert m["header.samplerate"] == "48000" and m["header.channels"] == "2" and m["header.frames"] == "240239"
    assert m["bext.originator"] == "Sound Dev: 702T S#GR1112089007"
    assert m["bext.originator_reference"] == "USSDVGR1112089007124001008206301"
    assert m["bext.origination_date"] == "2018-12-31" and m["bext.origination_time"] == "12:40:00"
    assert m["bext.time_reference"] == "2190940753"
    assert float(m["bext.time_reference_s"]) == pytest.approx(2190940753 / 48000, abs=1e-6)
    assert m["bext.coding_history"] == "A=PCM,F=48000,W=24,M=stereo,R=48000,T=2 Ch"
    assert m["bext.description"].startswith("sSPEED=023.976-ND\nsTAKE=1\n")
    assert (m["ixml.project"], m["ixml.scene"], m["ixml.take"], m["ixml.tape"]) == ("BMH", "A101", "1", "18Y12M31")
    assert m["ixml.track.1.name"] == "MKH516 A" and m["ixml.track.2.name"] == "Boom"
    assert m["ixml.tracks"] == "MKH516 A, Boom"
    assert "ixml.note" not in m  # empty in the file


@needs_fixtures
def test_metacorder_ixml_note_and_circled():
    m = read_metadata(FIXTURES / "metacorder_Sr001-2C-01_01.WAV")
    assert m["ixml.project"] == "WAVINFO Test"
    assert (m["ixml.scene"], m["ixml.take"], m["ixml.tape"]) == ("2C", "01", "Sr001")
    assert m["ixml.note"] == "Tail Slate Cloth noise" and m["ixml.circled"] == "FALSE"
    assert m["ixml.track.1.name"] == "Boom"
    assert m["bext.originator"] == "Metacorder Demo"
    assert m["bext.origination_date"] == "2019:01:01" and m["bext.origination_time"] == "13:37:40"
    # iXML stores the same reference as a signed 32-bit LOW (-1940552340); bext is unsigned.
    assert m["bext.time_reference"] == str(-1940552340 + 2**32)


@needs_fixtures
def test_nuendo_bext_v2_loudness_umid_and_wavex():
    m = read_metadata(FIXTURES / "nuendo 5.1.wav")
    assert m["header.channels"] == "6" and m["header.container"] == "WAV"
    assert m["bext.description"] == "wavinfo Test Project Nuendo output"
    assert m["bext.originator"] == "Nuendo" and m["bext.version"] == "2"
    assert m["bext.originator_reference"] == "USJPHNNNNNNNNN202829RRRRRRRRR"
    assert m["bext.time_reference"] == "172800000" and m["bext.time_reference_s"] == "3600"
    assert m["bext.umid"].startswith("156ECFA135254E389E355306EB4AA8CD")
    assert m["bext.loudness_value"] == "-80.00" and m["bext.max_true_peak_level"] == "-120.00"
    assert m["bext.coding_history"] == "A=PCM,F=48000,W=24,T=Nuendo"
    assert m["ixml.project"] == "wavinfo Test Project"
    assert m["ixml.track.4.function"] == "LFE-5.1"


@needs_fixtures
def test_sound_grinder_info_after_odd_sized_data_and_id3():
    m = read_metadata(FIXTURES / "sound_grinder_pro new_camera bumb 1.wav")
    assert m["info.INAM"] == "camera bumb 1"
    assert m["info.IKEY"] == "Sound Effect, movement, microphone, bump"
    assert m["info.ICMT"] == "Comments" and m["info.IART"] == "Jamie Hardt"
    assert m["info.ICRD"] == "2010-12-28" and m["info.ICOP"] == "© 2010 Jamie Hardt"
    assert m["info.IPRD"] == "Test Sounds" and m["info.ISFT"] == "Sound Grinder Pro"
    assert m["tag.artist"] == "Jamie Hardt" and m["tag.encoded_by"] == "Sound Grinder Pro 2.1.7"


@needs_fixtures
def test_sound_forge_info_and_izotope_markers():
    m = read_metadata(FIXTURES / "smpl_alarm_citizen_loop1.wav")
    assert m["info.ISFT"] == "Sonic Foundry Sound Forge 6.0"
    assert m["info.IENG"] == "Kelly Bailey" and m["info.ICRD"] == "2004-05-28"
    assert m["header.samplerate"] == "22050"
    m = read_metadata(FIXTURES / "izotoperx_cues_float.wav")
    assert m["header.subtype"] == "FLOAT"
    assert m["marker.1.label"] == "Marker 1" and m["marker.2.note"] == "Marker Comment 1"
    assert m["marker.3.note"].startswith("Лорем ипсум")


@needs_fixtures
def test_all_values_are_strings():
    for p in REAL:
        m = read_metadata(p)
        assert m and all(isinstance(k, str) and isinstance(v, str) and v for k, v in m.items())


# ------------------------------------------------------------------ generated files: tags, RF64


def test_flac_ogg_vorbis_comments(tmp_path):
    import mutagen

    for ext in ("flac", "ogg"):
        p = write_audio(tmp_path / f"t.{ext}", sine(44100, 0.3), 44100)
        f = mutagen.File(p)
        f["TITLE"] = "Door creak"
        f["GENRE"] = "Foley"
        f["COMMENT"] = ["one", "two"]
        f.save()
        m = read_metadata(p)
        assert (m["tag.title"], m["tag.genre"], m["tag.comment"]) == ("Door creak", "Foley", "one; two")
        assert m["header.container"] == ext.upper()


def test_mp3_and_aiff_id3(tmp_path):
    from mutagen.aiff import AIFF
    from mutagen.id3 import COMM, ID3, TCON, TIT2, TPE1, TXXX

    mp3 = write_audio(tmp_path / "t.mp3", sine(44100, 0.3), 44100)
    tags = ID3()
    tags.add(TIT2(encoding=3, text="Glass smash"))
    tags.add(TPE1(encoding=3, text="JD"))
    tags.add(TCON(encoding=3, text="SFX"))
    tags.add(COMM(encoding=3, lang="eng", desc="", text="close mic"))
    tags.add(TXXX(encoding=3, desc="Library", text="Test Lib"))
    tags.save(mp3)
    m = read_metadata(mp3)
    assert (m["tag.title"], m["tag.artist"], m["tag.genre"], m["tag.comment"], m["tag.library"]) == (
        "Glass smash", "JD", "SFX", "close mic", "Test Lib")
    aiff = write_audio(tmp_path / "t.aiff", sine(44100, 0.3), 44100)
    f = AIFF(aiff)
    f.add_tags()
    f.tags.add(TIT2(encoding=3, text="Metal hit"))
    f.save()
    assert read_metadata(aiff)["tag.title"] == "Metal hit"


def _aiff_with_name(tmp_path) -> Path:
    p = write_audio(tmp_path / "n.aif", sine(44100, 0.1), 44100)
    raw = bytearray(p.read_bytes())
    name = b"Wind gust"  # odd length: padded
    chunk = b"NAME" + struct.pack(">I", len(name)) + name + b"\x00"
    raw += chunk
    raw[4:8] = struct.pack(">I", len(raw) - 8)
    return write_bytes(p, bytes(raw))


def test_aiff_text_chunks(tmp_path):
    assert read_metadata(_aiff_with_name(tmp_path))["tag.title"] == "Wind gust"


def _riff(chunks: list[tuple[bytes, bytes]], form=b"RIFF") -> bytes:
    body = b"WAVE"
    for cid, data in chunks:
        body += cid + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) & 1 else b"")
    return form + struct.pack("<I", len(body)) + body


def _bext(description="Thunder far", originator="rec", ref=96000 * 10, history="A=PCM,F=96000\r\n") -> bytes:
    b = bytearray(602)
    b[0 : len(description)] = description.encode()
    b[256 : 256 + len(originator)] = originator.encode()
    b[320:330] = b"2024-01-02"
    b[330:338] = b"03:04:05"
    b[338:346] = struct.pack("<Q", ref)
    b[346:348] = struct.pack("<H", 1)
    return bytes(b) + history.encode()


FMT_96K = struct.pack("<HHIIHH", 1, 1, 96000, 192000, 2, 16)


def test_rf64_written_by_soundfile_and_bext_time_in_seconds(tmp_path):
    p = write_audio(tmp_path / "x.rf64", sine(48000, 0.2), 48000, subtype="PCM_16")
    with open(p, "rb") as f:
        chunks = riff_chunks(f, p.stat().st_size)
    assert [c for c, _, _ in chunks][:1] == [b"ds64"]
    data = [s for c, _, s in chunks if c == b"data"]
    assert data == [9600 * 2]
    # A hand-made BWF with bext + INFO (odd-sized) + iXML, then a RF64 twin of it.
    ixml = b"<BWFXML><PROJECT>P</PROJECT><USER><MIC>MKH 8040</MIC></USER></BWFXML>"
    info = b"INFO" + b"INAM" + struct.pack("<I", 5) + b"Boom\x00\x00"
    raw = _riff([(b"fmt ", FMT_96K), (b"bext", _bext()), (b"data", b"\x00\x01" * 1001), (b"LIST", info), (b"iXML", ixml)])
    m = read_metadata(write_bytes(tmp_path / "bwf.wav", raw))
    assert m["bext.description"] == "Thunder far" and m["bext.time_reference_s"] == "10"
    assert m["bext.coding_history"] == "A=PCM,F=96000" and m["info.INAM"] == "Boom"
    assert m["ixml.project"] == "P" and m["ixml.user.mic"] == "MKH 8040"
    rf = bytearray(raw)
    rf[0:4] = b"RF64"
    m = read_metadata(write_bytes(tmp_path / "bwf.rf64", bytes(rf)))
    assert m["bext.description"] == "Thunder far" and m["ixml.project"] == "P"


def test_ixml_user_text_and_garbage_after_root():
    m = parse_ixml(b"<BWFXML><USER>MIC=Schoeps\nLOC=roof</USER><NOTE>n</NOTE></BWFXML>\x00\x00junk<")
    assert m == {"ixml.user": "MIC=Schoeps\nLOC=roof", "ixml.note": "n"}


def test_ixml_entity_expansion_refused():
    bomb = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
    <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
    <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
    <BWFXML><PROJECT>&lol3;</PROJECT></BWFXML>"""
    assert parse_ixml(bomb) == {}
    ext = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><BWFXML><NOTE>&e;</NOTE></BWFXML>'
    assert parse_ixml(ext) == {}


def test_lying_chunk_sizes(tmp_path):
    raw = _riff([(b"fmt ", FMT_96K), (b"bext", _bext())])
    # bext claims 4 GB: clamped to the file, still parsed.
    lying = raw[:12 + 24] + b"bext" + struct.pack("<I", 0xFFFFFFF0) + raw[12 + 24 + 8 :]
    m = read_metadata(write_bytes(tmp_path / "lie.wav", lying))
    assert m["bext.description"] == "Thunder far"
    assert read_metadata(write_bytes(tmp_path / "cut.wav", lying[:200]))["bext.description"] == "Thunder far"
    assert read_metadata(write_bytes(tmp_path / "empty.wav", b"")) == {}
    assert read_metadata(tmp_path / "missing.wav") == {}


# ------------------------------------------------------------------ UCS


def test_ucs_table_from_ucs_8_2_1():
    t = ucs_table()
    assert len(t) == 752
    assert t["DOORWood"] == ("DOORS", "WOOD") and t["AIRBrst"] == ("AIR", "BURST") and t["WHSH"] == ("SWOOSHES", "WHOOSH")
    src = Path("/work/shared/reference/ucs/ucs-8.2.1-en.json")
    with data_file("taxonomies", "ucs.csv").open("r", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["cat_id", "category", "subcategory", "description"]
    assert all(r["description"].strip() for r in rows)
    assert next(r for r in rows if r["cat_id"] == "DOORWood")["description"] == "wooden door"
    if src.is_file():
        ref = {e["CatID"]: e for e in json.loads(src.read_text())}
        assert {r["cat_id"]: (r["category"], r["subcategory"]) for r in rows} == {
            k: (e["Category"], e["SubCategory"]) for k, e in ref.items()}
        assert not any(r["description"] == ref[r["cat_id"]]["Explanations"] for r in rows)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("DOORWood_Creak Open Slow_JD_Field.wav",
         UcsName("DOORWood", "Creak Open Slow", "JD", "Field", "", "", "DOORS", "WOOD")),
        ("/lib/x/DOORWood-Barn_Acme-Creak Open_JD_Field_take 2.flac",
         UcsName("DOORWood", "Creak Open", "JD", "Field", "Barn", "Acme", "DOORS", "WOOD", "take 2")),
        ("GLASBrk_Bottle Smash - Big_ABC_Lib One.WAV",
         UcsName("GLASBrk", "Bottle Smash - Big", "ABC", "Lib One", "", "", "GLASS", "BREAK")),
        ("RAIN_Light On Roof_XY_Rain Pack.wav", UcsName("RAIN", "Light On Roof", "XY", "Rain Pack", "", "", "RAIN", "GENERAL")),
    ],
)
def test_parse_ucs_name(name, expected):
    assert parse_ucs_name(name) == expected


@pytest.mark.parametrize("name", ["doorwood_Creak_JD_Field.wav", "DOORWood_Creak.wav", "DOORWood_Creak_JD.wav",
                                  "NOTACAT_x_y_z.wav", "camera bumb 1.wav", "", "_", "DOORWood__JD_Field.wav",
                                  "Sr001-2C-01_01.WAV"])
def test_not_ucs(name):
    assert parse_ucs_name(name) is None


def test_read_metadata_has_ucs_fields(tmp_path):
    p = write_audio(tmp_path / "WATRSplsh-Pool_Cannonball_JD_Summer.wav", sine(48000, 0.1), 48000)
    m = read_metadata(p)
    assert (m["ucs.cat_id"], m["ucs.category"], m["ucs.subcategory"]) == ("WATRSplsh", "WATER", "SPLASH")
    assert (m["ucs.fx_name"], m["ucs.creator_id"], m["ucs.source_id"], m["ucs.user_category"]) == (
        "Cannonball", "JD", "Summer", "Pool")


# ------------------------------------------------------------------ fuzzing: nothing escapes


@FUZZ
@given(st.binary(max_size=2000), st.one_of(st.none(), st.integers(-5, 10**6)))
def test_fuzz_bext(data, sr):
    out = parse_bext(data, sr)
    assert all(isinstance(v, str) for v in out.values())


@FUZZ
@given(st.binary(max_size=3000))
def test_fuzz_ixml_bytes(data):
    assert isinstance(parse_ixml(data), dict)
    assert isinstance(parse_ixml(b"<BWFXML>" + data + b"</BWFXML>"), dict)


@FUZZ
@given(st.text(max_size=400))
def test_fuzz_ixml_text(text):
    doc = f"<BWFXML><PROJECT>{text}</PROJECT><USER>{text}</USER><TRACK_LIST><TRACK>{text}</TRACK></TRACK_LIST></BWFXML>"
    assert isinstance(parse_ixml(doc.encode("utf-8", "surrogatepass")), dict)


@FUZZ
@given(st.binary(max_size=2000))
def test_fuzz_info(data):
    assert isinstance(parse_info(b"INFO" + data), dict)
    assert isinstance(parse_info(b"adtl" + data), dict)
    assert isinstance(parse_info(data), dict)


@FUZZ
@given(st.text(max_size=200))
def test_fuzz_ucs(name):
    r = parse_ucs_name(name)
    assert r is None or r.cat_id in ucs_table()
    parse_ucs_name(name.replace(" ", "_"))


@FUZZ
@given(st.lists(st.sampled_from(sorted(ucs_table())[:50] + ["x", "-", "_", " ", "DOOR", "Wood"]), max_size=12))
def test_fuzz_ucs_structured(parts):
    name = "_".join(parts) + ".wav"
    r = parse_ucs_name(name)
    assert r is None or (r.cat_id and r.fx_name and r.creator_id and r.source_id)


_SEEDS = [p.read_bytes()[:20000] for p in REAL] + [
    _riff([(b"fmt ", FMT_96K), (b"bext", _bext()), (b"LIST", b"INFOINAM\x03\x00\x00\x00ab\x00\x00"),
           (b"iXML", b"<BWFXML><PROJECT>P</PROJECT></BWFXML>")])]


@FUZZ
@given(st.data())
def test_fuzz_mutated_files(data):
    """Real files (cut to 20 kB) and a hand-made BWF with flipped bytes, cuts and splices."""
    raw = bytearray(data.draw(st.sampled_from(_SEEDS)))
    for _ in range(data.draw(st.integers(0, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    if data.draw(st.booleans()):  # a size field set to something huge
        i = data.draw(st.integers(0, max(0, len(raw) - 4)))
        raw[i : i + 4] = struct.pack("<I", data.draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0xFFFFFFFF])))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / data.draw(st.sampled_from(["x.wav", "x.rf64", "DOORWood_A_B_C.wav", "x.flac", "x.aif"]))
        p.write_bytes(bytes(raw))
        out = read_metadata(p)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in out.items())

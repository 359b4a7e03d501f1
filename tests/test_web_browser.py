"""End-to-end in Debian's Chromium (headless, driven by Playwright): search, listen from the
match, seek on the waveform, play a transcoded AIFF, keyboard, "similar". Saves a screenshot
to test-output/web-audition.png."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
OUT = Path(__file__).resolve().parent.parent / "test-output"


@pytest.fixture(scope="module")
def server_url(tmp_path_factory, tiny_clap):
    if CHROMIUM is None:
        pytest.skip("chromium not found (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    from search.query import Library
    from search.web.app import create_app
    from search.web.server import ServerFile, ThreadedServer, bind
    from test_web_api import build_web_library

    settings, _ = build_web_library(tmp_path_factory.mktemp("browser"), tiny_clap)
    lib = Library.from_settings(settings)
    sock = bind("127.0.0.1", 0)
    app = create_app(lib, index_dir=settings.index_dir,
                     server_file=ServerFile(settings.index_dir, "127.0.0.1", sock.getsockname()[1]))
    with ThreadedServer(app, sock) as url:
        yield url
    lib.close()


@pytest.fixture(scope="module")
def page(server_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(server_url + "/")
        yield pg
        browser.close()
        assert not errors, errors


def _row(page, name):
    return page.locator(".result", has=page.locator(".name", has_text=name))


def _playing_from(page, at: float):
    page.wait_for_function(
        "at => { const p = document.getElementById('player'); return !p.paused && p.currentTime >= at; }",
        arg=at, timeout=15000,
    )


def test_search_play_seek_similar_and_screenshot(page):
    page.fill("#q", "rain on a tin roof")
    page.press("#q", "Enter")
    page.wait_for_selector(".result")
    assert page.locator(".result").count() == 8
    assert "results for" in page.inner_text("#status")

    # Play from the matching window's offset.
    rain = _row(page, "rain_long.wav")
    offset = float(rain.get_attribute("data-offset"))
    rain.locator(".play").click()
    _playing_from(page, offset)
    assert page.evaluate("document.getElementById('player').currentTime") >= offset
    assert "playing" in rain.get_attribute("class")

    # Click three quarters into the waveform: playback seeks there.
    box = rain.locator(".wave").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    _playing_from(page, 0.7 * 23.0)

    # An AIFF (browsers cannot play it) plays through the on-the-fly WAV.
    aiff = _row(page, "room_tone.aiff")
    aiff_offset = float(aiff.get_attribute("data-offset"))
    aiff.locator(".play").click()
    page.wait_for_function("() => document.getElementById('player').src.includes('/audio')")
    _playing_from(page, aiff_offset)

    # Keyboard: Space stops, arrows move the selection.
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press(" ")
    page.wait_for_function("() => document.getElementById('player').paused")
    before = int(page.locator(".result.selected").get_attribute("data-index"))
    page.keyboard.press("ArrowDown")
    down = min(before + 1, 7)
    assert int(page.locator(".result.selected").get_attribute("data-index")) == down
    page.keyboard.press("ArrowUp")  # from the last row, down stays there and up leaves it
    assert int(page.locator(".result.selected").get_attribute("data-index")) == max(down - 1, 0)

    # The waveform images load (PNG from the API).
    page.wait_for_function("() => [...document.querySelectorAll('.wave img')].every(i => i.complete && i.naturalWidth > 0)")

    OUT.mkdir(exist_ok=True)
    rain.locator(".play").click()
    _playing_from(page, offset)
    page.screenshot(path=str(OUT / "web-audition.png"))

    # "Similar" on the sweep: that file comes first.
    _row(page, "DOORWood_Creak").locator("button.similar").click()
    page.wait_for_function("() => { const s = document.getElementById('status');"
                           " return s.textContent.includes('sounds like') && !s.classList.contains('busy'); }")
    assert "DOORWood_Creak" in page.locator(".result .name").first.inner_text()
    page.screenshot(path=str(OUT / "web-audition-similar.png"))


def test_filter_controls_come_from_the_declaration(page):
    from indexer.filterspec import FILTERS

    for spec in FILTERS:
        assert page.locator(f"#{spec.name}").count() == 1, spec.name
    page.fill("#q", "rain on a tin roof")
    page.press("#q", "Enter")
    page.wait_for_function("() => { const s = document.getElementById('status');"
                           " return s.textContent.includes('results for') && !s.classList.contains('busy'); }")
    done = ("sel => { const s = document.getElementById('status'); const names = [...document.querySelectorAll("
            "'.result .name')].map(n => n.textContent); return !s.classList.contains('busy') && names.length > 0"
            " && names.every(n => n.includes(sel)); }")
    # A select searches again at once, with its filter.
    page.select_option("#ext", "aiff")
    page.wait_for_function(done, arg=".aiff", timeout=15000)
    page.select_option("#ext", "")
    # So does a number, once it is entered.
    page.fill("#channels", "6")
    page.locator("#channels").blur()
    page.wait_for_function(done, arg="hum_6ch", timeout=15000)
    assert page.locator(".result").count() == 1
    page.fill("#channels", "")
    page.locator("#channels").blur()


def test_a_slow_older_answer_does_not_overwrite_a_newer_one(page):
    # The page's fetch is slowed for the filtered query only, so its answer lands after the
    # answer to the newer, unfiltered one; the list must keep the newer answer.
    page.evaluate("""() => { window.fetchBefore = window.fetch;
      window.fetch = (u, o) => String(u).includes('ext=aiff')
        ? new Promise(r => setTimeout(r, 1500)).then(() => window.fetchBefore(u, o))
        : window.fetchBefore(u, o); }""")
    try:
        page.fill("#q", "rain on a tin roof")
        page.press("#q", "Enter")
        idle = "() => !document.getElementById('status').classList.contains('busy')"
        page.wait_for_function(idle)
        page.select_option("#ext", "aiff")
        page.select_option("#ext", "")
        page.wait_for_function(idle)
        page.wait_for_timeout(2500)  # the slow answer has arrived by now
        names = page.locator(".result .name").all_text_contents()
        assert len(names) > 1 and not all(".aiff" in n for n in names), names
        assert "results for" in page.locator("#status").text_content()
    finally:
        page.evaluate("() => { window.fetch = window.fetchBefore; }")

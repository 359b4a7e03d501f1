"""The page's feedback, label and collection modes in Debian's Chromium (headless, Playwright):
mark two results and refine; answer label candidates with the keyboard; keep a result in a
collection and export it."""

from __future__ import annotations

import pytest

from test_web_browser import ARGS, CHROMIUM

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_clap):
    if CHROMIUM is None:
        pytest.skip("chromium not found (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    from search.query import Library
    from search.web.app import create_app
    from search.web.server import ThreadedServer, bind
    from test_feedback import build_feedback_library

    settings, files = build_feedback_library(tmp_path_factory.mktemp("browser-feedback"), tiny_clap)
    lib = Library.from_settings(settings)
    sock = bind("127.0.0.1", 0)
    app = create_app(lib, index_dir=settings.index_dir)
    with ThreadedServer(app, sock) as url:
        yield url, lib, files
    lib.close()


@pytest.fixture
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(server[0] + "/")
        yield pg
        browser.close()
        assert not errors, errors


def names(page) -> list[str]:
    return page.locator("#results > .result .name").all_inner_texts()


def wait_idle(page, text: str) -> None:
    try:
        page.wait_for_function(
            "t => { const s = document.getElementById('status'); return s.textContent.includes(t) && !s.classList.contains('busy'); }",
            arg=text, timeout=15000)
    except Exception:
        raise AssertionError(f"waited for {text!r}; the status says {page.inner_text('#status')!r}") from None


def test_mark_two_results_refine_and_the_order_changes(page):
    page.fill("#q", "rain on a tin roof")
    page.press("#q", "Enter")
    wait_idle(page, "results for")
    before = names(page)
    assert len(before) == 9
    # Like the last result with the button, and the one before it with the keyboard.
    rows = page.locator("#results > .result")
    rows.nth(8).locator(".fb-like").click()
    rows.nth(7).click(position={"x": 5, "y": 5})
    page.keyboard.press("+")
    assert page.locator("#results > .result.liked").count() == 2
    assert page.inner_text("#refine") == "Refine (2)"
    page.keyboard.press("r")
    wait_idle(page, "refined with 2 more-like-this")
    after = names(page)
    assert after != before
    assert sorted(after) == sorted(before)
    # The liked ones come first now, still marked; the marks stay for the next refine.
    assert set(after[:2]) == {before[7], before[8]}
    liked = page.locator("#results > .result.liked .name").all_inner_texts()
    assert set(liked) == {before[7], before[8]}
    # Disliking the top result keeps it visible and marked after refining again.
    page.locator("#results > .result").first.locator(".fb-unlike").click()
    page.click("#refine")
    wait_idle(page, "and 1 not-this")
    assert page.locator("#results > .result.disliked").count() == 1
    assert page.locator("#results > .result.liked").count() == 1


def test_answer_five_label_candidates_with_the_keyboard_and_see_the_figures(page, server):
    _url, lib, _files = server
    page.click("#label-mode")
    page.fill("#label-name", "humming machine")
    page.press("#label-name", "Enter")
    wait_idle(page, "Is it “humming machine”?")
    assert page.inner_text("#label-count").startswith("0 answers")
    assert "trains once there are 2 yes and 2 no" in page.inner_text("#label-figures")
    page.press("#label-name", "Escape")
    for i, key in enumerate("yynny", 1):
        first = page.locator("#results > .result .name").first.inner_text()
        page.keyboard.press(key)
        page.wait_for_function("n => document.getElementById('label-count').textContent.startsWith(n + ' answer')",
                               arg=str(i), timeout=15000)
        # The answered file leaves the candidates.
        assert first not in page.locator("#results > .result .name").all_inner_texts()
    assert "(3 yes, 2 no)" in page.inner_text("#label-count")
    figures = page.inner_text("#label-figures")
    assert "2-fold: accuracy" in figures and "macro-F1" in figures
    assert "least sure" in page.inner_text("#results")
    # The answers are the catalog's user decisions.
    from search.tagging.active import decisions, resolve_label

    got = decisions(lib.catalog, resolve_label("humming machine"))
    assert sorted(got.values()) == [False, False, True, True, True]
    page.click("#label-save")
    page.wait_for_function("() => document.getElementById('toast').textContent.includes('Saved head')")
    assert lib.catalog.load_head("humming machine") is not None


def test_keep_results_in_a_collection_and_export_it(page, server, tmp_path):
    _url, lib, files = server
    page.fill("#q", "door creak")
    page.press("#q", "Enter")
    wait_idle(page, "results for")
    first, second = names(page)[:2]
    page.click("#pulls")
    page.fill("#pull-name", "browser pull")
    page.dispatch_event("#pull-name", "change")
    page.locator("#results > .result").first.locator(".keep").click()
    page.wait_for_function("() => document.getElementById('pull-count').textContent.startsWith('1 item')")
    page.locator("#results > .result").nth(1).click(position={"x": 5, "y": 5})
    page.keyboard.press("k")
    page.wait_for_function("() => document.getElementById('pull-count').textContent.startsWith('2 items')")
    assert page.locator("#pull-items .pull-name").all_inner_texts() == [first, second]
    # Reorder in the panel, then download the M3U.
    page.locator("#pull-items li").nth(1).locator("button[title='Move up']").click()
    page.wait_for_function("n => document.querySelector('#pull-items .pull-name').textContent === n", arg=second)
    with page.expect_download() as dl:
        page.click("#pull-m3u")
    text = open(dl.value.path()).read()
    lines = text.splitlines()
    paths = [ln for ln in lines if ln.startswith("/")]
    assert [p.split("/")[-1] for p in paths] == [second, first]
    assert any(ln.startswith("#EXTVLCOPT:start-time=") for ln in lines)
    # Region WAVs into a folder named in the prompt.
    out = tmp_path / "pull-wavs"
    page.once("dialog", lambda d: d.accept(str(out)))
    page.click("#pull-wavs")
    page.wait_for_function("() => document.getElementById('toast').textContent.includes('Wrote 2 WAV files')")
    assert len(list(out.glob("*.wav"))) == 2

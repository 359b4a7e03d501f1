"""The write-back panel in Debian's Chromium (headless, Playwright): open a result's metadata,
take the suggested UCS category, preview, confirm, see the file written, undo (issue 15).
Saves a screenshot to test-output/web-writeback.png."""

from __future__ import annotations

import pytest

import audiogen
from indexer.metadata import read_metadata
from indexer.writeback.atomic import file_hash
from test_web_browser import ARGS, CHROMIUM, OUT

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_clap):
    if CHROMIUM is None:
        pytest.skip("chromium not found (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    from indexer import pipeline
    from indexer.catalog import TagRow
    from indexer.config import Settings
    from search.query import Library
    from search.web.app import create_app
    from search.web.server import ThreadedServer, bind

    root = tmp_path_factory.mktemp("wbbrowser")
    path = audiogen.write_audio(root / "lib" / "old door.wav", kind="sweep", duration=1.5)
    settings = Settings(index_dir=root / "index", model=str(tiny_clap))
    pipeline.build(settings, [str(root / "lib")], workers=1, progress=False)
    lib = Library.from_settings(settings)
    fid = lib.catalog.file_by_path(path).id
    lib.catalog.replace_tag_set("ucs", [TagRow(fid, "door wood", "DOORWood", 0.77)], source="zero-shot", model="m")
    sock = bind("127.0.0.1", 0)
    with ThreadedServer(create_app(lib, index_dir=settings.index_dir), sock) as url:
        yield url, path
    lib.close()


def test_metadata_panel_preview_confirm_undo(served):
    from playwright.sync_api import sync_playwright

    url, path = served
    original = file_hash(path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.fill("#q", "old door")
        page.press("#q", "Enter")
        page.locator(".result .wb-open").first.click()
        panel = page.locator("#wb-panel")
        cat = panel.locator("input[data-field=cat_id]")
        cat.wait_for()
        assert cat.input_value() == "DOORWood"
        assert "0.77" in panel.inner_text()
        panel.locator("input[data-field=description]").fill("Old door, slow creak")
        panel.locator("button", has_text="Add to batch").click()
        panel.locator("button", has_text="Preview").click()
        page.wait_for_selector("text=Preview: nothing is written yet")
        assert "Old door, slow creak" in panel.inner_text()
        assert file_hash(path) == original  # the preview wrote nothing
        OUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUT / "web-writeback.png"))
        panel.locator("button.wb-confirm").click()
        page.wait_for_selector("text=Wrote 1 files")
        meta = read_metadata(path)
        assert meta["ixml.user.catid"] == "DOORWood" and meta["bext.description"] == "Old door, slow creak"
        panel.locator("button", has_text="Undo this change").click()
        page.wait_for_function("() => document.getElementById('wb-panel').hidden")
        assert file_hash(path) == original

        # Batch view: the shown results' UCS suggestions above the threshold, previewed first.
        page.fill(".wb-bulk input", "0.9")
        page.click(".wb-bulk button")
        page.wait_for_selector("text=No shown result has a new UCS suggestion")
        page.fill(".wb-bulk input", "0.5")
        page.click(".wb-bulk button")
        page.wait_for_selector("text=Preview: nothing is written yet")
        assert "DOORWood" in panel.inner_text() and file_hash(path) == original
        panel.locator("button.wb-confirm").click()
        page.wait_for_selector("text=Wrote 1 files")
        assert read_metadata(path)["ixml.user.catid"] == "DOORWood"
        browser.close()
    assert not errors, errors

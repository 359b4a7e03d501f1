"""The page in Chromium (Playwright), for a day of auditioning (issue 19): a spectrogram on
demand, tag chips hidden until asked for."""

from __future__ import annotations

import pytest

from test_web_browser import page, server_url  # noqa: F401  (the same server and browser fixtures)

pytestmark = pytest.mark.browser


def test_spectrogram_on_demand_and_tags_hidden_until_asked(page):  # noqa: F811
    page.fill("#q", "rain on a tin roof")
    page.press("#q", "Enter")
    page.wait_for_selector(".result .spectro")
    assert page.evaluate("document.body.classList.contains('hide-tags')")
    page.click("#show-tags")
    assert not page.evaluate("document.body.classList.contains('hide-tags')")
    assert page.inner_text("#show-tags") == "Tags: on"
    page.click("#show-tags")
    first = page.locator(".result").first
    first.locator("button.spectro").click()
    page.wait_for_function(
        "() => { const i = document.querySelector('.result img.spectrogram'); return i && i.complete && i.naturalWidth > 0; }",
        timeout=30000,
    )
    first.locator("button.spectro").click()
    assert first.locator("img.spectrogram").count() == 0

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


def test_dense_list_sorting_picking_volume_loop_autoplay_and_a_dragged_region(page):  # noqa: F811
    page.fill("#q", "rain on a tin roof")
    page.press("#q", "Enter")
    page.wait_for_selector(".result .spectro")
    n = page.locator(".result").count()
    assert n >= 5
    page.check("#dense")
    assert page.evaluate("document.body.classList.contains('dense')")
    heights = page.evaluate("[...document.querySelectorAll('.result')].map(li => li.getBoundingClientRect().height)")
    assert max(heights) < 40  # 20+ rows fit on an 800 px laptop screen

    page.click("#sort button[data-key=name]")
    names = page.evaluate("[...document.querySelectorAll('.result .name')].map(a => a.textContent)")
    assert names == sorted(names)
    page.click("#sort button[data-key=name]")
    names = page.evaluate("[...document.querySelectorAll('.result .name')].map(a => a.textContent)")
    assert names == sorted(names, reverse=True)

    page.locator(".result").nth(1).click(modifiers=["Control"])
    page.locator(".result").nth(3).click(modifiers=["Shift"])
    assert page.locator(".result.picked").count() == 3
    assert page.inner_text("#download-picked") == "Download picked (3)"

    page.evaluate("() => { const v = document.getElementById('volume'); v.value = '0.3';"
                  " v.dispatchEvent(new Event('input')); }")
    page.check("#loop")
    assert page.evaluate("[document.getElementById('player').volume, document.getElementById('player').loop]") == [0.3, True]
    page.uncheck("#loop")

    page.check("#autoplay")
    page.locator(".result .rank").first.click()
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => { const p = document.getElementById('player'); return !p.paused; }", timeout=15000)
    second = page.locator(".result").nth(1).get_attribute("data-file-id")
    assert page.evaluate("document.getElementById('player').dataset.fileId") == second
    page.keyboard.press("Escape")
    page.uncheck("#autoplay")

    page.uncheck("#dense")
    wave = page.locator(".result").first.locator(".wave")
    box = wave.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    menu = page.locator(".result").first.locator(".region-menu")
    assert menu.count() == 1
    start, end = float(menu.get_attribute("data-start")), float(menu.get_attribute("data-end"))
    assert 0 <= start < end
    href = menu.locator("a.region-wav").get_attribute("href")
    assert f"start={start:g}" in href.replace(".0&", "&") or f"start={start}" in href
    assert "download=1" in href
    menu.locator("button.region-play").click()
    page.wait_for_function("() => !document.getElementById('player').paused", timeout=15000)
    page.keyboard.press("Escape")

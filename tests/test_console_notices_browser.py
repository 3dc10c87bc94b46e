"""Bulk notices in a real browser (the setup of tests/test_console_browser.py): a district
administrator uploads a CSV, previews, starts, pauses, resumes and watches the notice reach
100% through the simulator provider (the page following it by its script alone).
``CONSOLE_SHOTS=<dir>`` also saves the compose, preview and progress pages at 1280 and 360
pixels, in English and Hindi.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.console_site import PASSWORD, Site
from tests.test_console_browser import (
    SHOTS,
    axe,
    browser,
    check_accessible,
    no_sideways_scroll,
    page,
    playwright_api,
    pytestmark,
    sign_in,
    site,
)

__all__ = ["axe", "browser", "page", "pytestmark", "site"]  # fixtures and the skip, by name

NUMBERS = [f"+9198765{i:05d}" for i in range(10, 16)]


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "numbers.csv"
    rows = ["phone,name", *(f"{n},someone" for n in NUMBERS), "12345,too short", NUMBERS[0]]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def compose(page: Any, site: Site, csv: Path) -> None:
    """The compose form filled for a CSV audience, and its preview asked for."""
    page.goto(f"{site.url}/console/notices/new")
    page.fill("#var_area_update_service", "Water supply")
    page.fill("#var_area_update_place", "Theog")
    page.fill("#var_area_update_update", "restored")
    page.check("input[name=audience][value=csv]")
    page.set_input_files("#csv", str(csv))
    page.click("main form button[type=submit]")


def test_a_district_admin_sends_a_csv_notice_and_watches_it_done(
    page: Any, site: Site, axe: str, tmp_path: Path
) -> None:
    expect = playwright_api.expect
    sign_in(page, site, "district_admin")
    page.click("nav >> text=Notices")
    check_accessible(page, axe, "notices")
    page.click("text=New notice")
    check_accessible(page, axe, "notice-compose")
    compose(page, site, _csv(tmp_path))
    refused = page.locator("table.refused").inner_text()
    assert re.search(r"8\s+not a valid number", refused), refused  # line 8: 12345
    assert page.locator("dd.recipients").inner_text() == str(len(NUMBERS))
    assert "SMS segment" in page.locator("section.preview").inner_text()
    check_accessible(page, axe, "notice-preview")
    page.click("button:has-text('Start sending')")
    assert "on its way" in page.locator("[role=status]").inner_text()
    page.click("button:has-text('Pause')")  # the provider's pace holds it a few seconds
    expect(page.locator("button:has-text('Resume')")).to_be_visible()
    check_accessible(page, axe, "notice-progress")
    page.click("button:has-text('Resume')")
    expect(page.locator("b[data-field=percent]")).to_have_text("100", timeout=30_000)
    expect(page.locator("h2 .state")).to_have_text("done")
    for number in NUMBERS:
        assert any("Theog" in m["text"] for m in site.sms_to(number)), number
    page.click("text=All notices")
    assert "done" in page.locator("table.notices").inner_text()


@pytest.mark.skipif(not SHOTS, reason="CONSOLE_SHOTS=<dir> saves screenshots of every page")
def test_screenshots_of_the_notice_pages(browser: Any, site: Site, tmp_path: Path) -> None:
    assert SHOTS is not None
    csv = _csv(tmp_path)
    for width in (1280, 360):
        for lang in ("en", "hi"):
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            page.set_default_timeout(10_000)
            try:
                sign_in(page, site, "district_admin", PASSWORD)
                current = page.evaluate("document.documentElement.lang")
                if current != lang:
                    page.click(f"button[name=lang][value={'hi' if lang == 'hi' else 'en_IN'}]")
                page.goto(f"{site.url}/console/notices/new")
                no_sideways_scroll(page)
                page.screenshot(path=f"{SHOTS}/notice-compose-{width}-{lang}.png", full_page=True)
                compose(page, site, csv)
                no_sideways_scroll(page)
                page.screenshot(path=f"{SHOTS}/notice-preview-{width}-{lang}.png", full_page=True)
                page.click("form.start button[type=submit]")
                page.locator("b[data-field=percent]").wait_for()
                no_sideways_scroll(page)
                page.screenshot(path=f"{SHOTS}/notice-progress-{width}-{lang}.png", full_page=True)
                page.goto(f"{site.url}/console/notices")
                page.screenshot(path=f"{SHOTS}/notices-{width}-{lang}.png", full_page=True)
            finally:
                context.close()

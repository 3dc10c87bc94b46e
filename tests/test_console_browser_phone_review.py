"""The phone simulator and the monthly review in a real browser (the set-up and checks of
tests/test_console_browser.py): a Hindi registration dialled on the simulator's keypad ends
in a ticket whose acknowledgement reaches its inbox; a feedback reply from the simulator
closes a resolved complaint; the review of a seeded month shows its figures.

``CONSOLE_SHOTS=<dir>`` saves each page at 1280 and 360 pixels, in English and Hindi.
"""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import expect

from gateway.config import load_config
from gateway.storage.db import using_database
from tests import test_console_browser as shared
from tests.console_site import CITIZEN, PASSWORD, Site
from tests.review_data import build_october
from tests.test_console_browser import SHOTS, check_accessible, no_sideways_scroll, sign_in

# The console's browser fixtures: one gateway and one browser for this module too.
site, axe, browser, page = shared.site, shared.axe, shared.browser, shared.page

pytestmark = pytest.mark.usefixtures("site")


def press(page: Any, keys: str) -> None:
    """Type ``keys`` on the phone's keypad, then the green key."""
    for key in keys:
        page.click(f".keypad button[value='{key}']")
    page.click(".calls .call")


def screen(page: Any) -> str:
    return str(page.locator("#ussd-screen").inner_text())


def wait_for_inbox(page: Any, text: str) -> str:
    """The inbox once it shows ``text``, without reloading: the page fetches it again."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        inbox = str(page.locator(".inbox").inner_text())
        if text in inbox:
            return inbox
        page.wait_for_timeout(500)
    raise AssertionError(f"{text!r} did not reach the simulator's inbox: {inbox}")


def test_a_hindi_registration_on_the_simulator_ends_in_a_ticket_and_its_sms(
    page: Any, site: Site, axe: str
) -> None:
    page.goto(f"{site.url}/console/simulator")  # no account: the simulator provider sends
    page.click("button:has-text('हिन्दी')")
    page.fill("#number", "98123 45611")
    page.click("button[value=number]")
    assert "+919812345611" in page.locator(".inbox h2").inner_text()
    press(page, "*1100#")
    first = screen(page)
    assert "हिन्दी" in first and "English" in first
    assert re.search(r"\d+/182 GSM7|\d+/80 UCS2", page.locator(".budget").inner_text())
    check_accessible(page, axe, "simulator")
    press(page, "1")  # Hindi
    assert "नई शिकायत" in screen(page)
    for keys in ("1", "2", "9", "2", "1"):  # new, Jal Shakti, Shimla, Theog, the first issue
        press(page, keys)
    assert "UCS2" in page.locator(".budget").inner_text()
    press(page, "1")  # confirm
    done = screen(page)
    ticket = re.search(r"शिकायत सं.: (\d+)", done)
    assert ticket, done
    assert "सत्र समाप्त" in page.locator(".screen").inner_text()
    inbox = wait_for_inbox(page, ticket.group(1))
    assert "जल शक्ति" in inbox


def test_a_feedback_reply_from_the_simulator_closes_the_complaint(
    browser: Any, site: Site, axe: str
) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    officer = context.new_page()
    officer.set_default_timeout(10_000)
    try:
        sign_in(officer, site, "officer")
        officer.goto(f"{site.url}/console/complaints/{site.tickets['theog']}")
        officer.fill("#resolve-remark", "Valve replaced")
        officer.click("form[action$='/resolve'] button")
        officer.click("section.preview button")
        assert "Done" in officer.locator("[role=status]").inner_text()
        phone = context.new_page()
        phone.set_default_timeout(10_000)
        phone.goto(f"{site.url}/console/simulator")
        no_sideways_scroll(phone)
        phone.fill("#number", CITIZEN)
        phone.click("button[value=number]")
        wait_for_inbox(phone, "Valve replaced")
        phone.click(".quick button[value='1']")
        assert "sent by the phone" in phone.locator(".inbox").inner_text()
        officer.goto(f"{site.url}/console/complaints/{site.tickets['theog']}")
        assert "Closed" in officer.locator("main").inner_text()
    finally:
        context.close()


def _seed_october(site: Site) -> None:
    config = load_config(site.data_dir.parent / "config.yaml", environ={})

    async def seed() -> None:
        async with using_database(config):
            await build_october()

    with ThreadPoolExecutor(1) as pool:  # the test may be inside an event loop
        pool.submit(asyncio.run, seed()).result()


def test_the_review_of_a_seeded_month_shows_its_figures(page: Any, site: Site, axe: str) -> None:
    _seed_october(site)
    sign_in(page, site, "state_reviewer")
    page.click("nav >> text=Monthly review")
    page.fill("input[name=month]", "2026-10")
    page.click("form.filters-row button")
    figures = {
        name: page.locator(f"#total-{name}").inner_text()
        for name in ("received", "resolved", "on-time", "escalated", "satisfaction", "pending")
    }
    assert figures == {"received": "4", "resolved": "4", "on-time": "3", "escalated": "3",
                       "satisfaction": "25%", "pending": "4"}  # fmt: skip
    departments = page.locator("#table-department").inner_text()
    assert "Jal Shakti" in departments and "Revenue" in departments
    assert page.locator("svg.chart").count() == 4
    check_accessible(page, axe, "review")
    with page.expect_download() as download:
        page.click("text=Download CSV")
    assert download.value.suggested_filename == "review-2026-10.csv"
    page.click("text=Print view")
    # The click returns before the print view has loaded: wait for it and its stylesheet.
    page.wait_for_url(re.compile(r"print=1"))
    page.wait_for_load_state("load")
    expect(page.locator("header.top")).to_be_hidden()
    page.emulate_media(media="print")
    expect(page.locator("form.filters-row")).to_be_hidden()


@pytest.mark.skipif(not SHOTS, reason="CONSOLE_SHOTS=<dir> saves screenshots of every page")
def test_screenshots_of_the_simulator_and_the_review(browser: Any, site: Site) -> None:
    assert SHOTS is not None
    for width in (1280, 360):
        for lang in ("en", "hi"):
            context = browser.new_context(viewport={"width": width, "height": 800})
            shot = context.new_page()
            try:
                shot.goto(f"{site.url}/console/signin")
                if lang == "hi":
                    shot.click("button:has-text('हिन्दी')")
                shot.fill("#username", "state_admin")
                shot.fill("#password", PASSWORD)
                shot.click("main button[type=submit]")
                shot.goto(f"{site.url}/console/simulator")
                shot.fill("#number", f"98123 {width:04d}{1 if lang == 'hi' else 2}")
                shot.click("button[value=number]")
                press(shot, "")  # a new number: the language menu
                press(shot, "1" if lang == "hi" else "2")
                for keys in ("1", "2", "9", "2", "1", "1"):  # a registration, to its ticket
                    press(shot, keys)
                wait_for_inbox(shot, re.findall(r"\d{9}", screen(shot))[0])
                for _ in range(40):  # the worker's delivery shown, for the picture
                    if shot.locator(".state-delivered").count():
                        break
                    time.sleep(0.25)
                    shot.reload()
                shot.screenshot(path=f"{SHOTS}/simulator-{width}-{lang}.png", full_page=True)
                shot.goto(f"{site.url}/console/simulator")
                shot.click(".calls .end")
                shot.goto(f"{site.url}/console/review?month=2026-10")
                shot.screenshot(path=f"{SHOTS}/review-{width}-{lang}.png", full_page=True)
            finally:
                context.close()

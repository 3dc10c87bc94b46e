"""The staff console in a real browser: Debian's Chromium driven by Playwright, against
``server.py`` running on a scratch database (tests/console_site.py).

One browser for the module, a fresh context (cookies) per test. Every page visited is
checked with axe-core: no serious or critical violation. ``CONSOLE_SHOTS=<dir>`` saves a
screenshot of each page, at 1280 and 360 pixels, in English and Hindi.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console_site import CITIZEN, PASSWORD, Site, axe_source, running_site

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"
)
SHOTS = os.environ.get("CONSOLE_SHOTS")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("console"), redis_url) as running:
        yield running


@pytest.fixture(scope="module")
def axe() -> str:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sampark"
    return axe_source(cache)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


def sign_in(page: Any, site: Site, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{site.url}/console/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]:has-text('Sign in'), button[type=submit]:has-text('साइन इन')")


def check_accessible(page: Any, axe: str, name: str) -> None:
    """No serious or critical axe-core violation on the page (and its screenshot saved)."""
    page.wait_for_load_state("load")
    page.evaluate(axe)
    result = page.evaluate("async () => await axe.run(document)")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: " + "; ".join(bad)
    if SHOTS:
        width = page.viewport_size["width"]
        lang = page.evaluate("document.documentElement.lang")
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}-{width}-{lang}.png", full_page=True)


def no_sideways_scroll(page: Any) -> None:
    page.wait_for_load_state("load")  # the stylesheet applied
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
        " > document.documentElement.clientWidth).map(e => e.tagName + '.' + e.className)"
        ".slice(0, 5)"
    )
    assert width <= page.viewport_size["width"], f"{page.url}: {width}px wide: {wide}"


def test_sign_in_and_a_wrong_password_is_refused(page: Any, site: Site, axe: str) -> None:
    sign_in(page, site, "officer", "not the password")
    assert page.locator("[role=alert]").inner_text() == "Wrong username or password."
    assert page.url.endswith("/console/signin")
    check_accessible(page, axe, "signin")
    sign_in(page, site, "officer")
    assert page.url == f"{site.url}/console/"
    assert page.locator("h1").inner_text() == "Your complaints"
    cookie = next(c for c in page.context.cookies() if c["name"] == "sampark_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.click("text=Sign out")
    assert page.url.endswith("/console/signin")
    page.goto(f"{site.url}/console/")
    assert page.url.endswith("/console/signin")


def test_an_officer_sees_only_their_scope(page: Any, site: Site, axe: str) -> None:
    sign_in(page, site, "officer")
    table = page.locator("table.complaints").inner_text()
    assert site.tickets["theog"] in table and site.tickets["kangra"] not in table
    assert CITIZEN not in table and "+91******5670" in table  # masked
    check_accessible(page, axe, "list")
    answer = page.goto(f"{site.url}/console/complaints/{site.tickets['kangra']}")
    assert answer is not None and answer.status == 404
    # A mistyped ticket is caught by its check digit.
    wrong = site.tickets["theog"][:-1] + str((int(site.tickets["theog"][-1]) + 1) % 10)
    page.goto(f"{site.url}/console/")
    page.fill("#q", wrong)
    page.click("button:has-text('Search')")
    assert "check digit" in page.locator("[role=alert]").inner_text()


def test_an_officer_resolves_on_a_phone_and_the_citizen_gets_the_sms(
    browser: Any, site: Site, axe: str
) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        sign_in(page, site, "officer")
        no_sideways_scroll(page)
        page.click(f"a:has-text('{site.tickets['theog']}')")
        no_sideways_scroll(page)
        check_accessible(page, axe, "complaint")
        page.fill("#resolve-remark", "Pipe repaired, supply restored")
        page.click("form[action$='/resolve'] button")
        preview = page.locator("section.preview")
        assert "Pipe repaired, supply restored" in preview.locator(".sms").inner_text()
        assert re.search(r"\d+ SMS segment", preview.inner_text())
        check_accessible(page, axe, "preview")
        no_sideways_scroll(page)
        page.click("section.preview button")
        assert "Done" in page.locator("[role=status]").inner_text()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            texts = [m["text"] for m in site.sms_to(CITIZEN)]
            if any("Pipe repaired, supply restored" in t for t in texts):
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"the resolution SMS did not reach the provider: {texts}")
    finally:
        context.close()


def test_an_agent_registers_a_callers_complaint(page: Any, site: Site, axe: str) -> None:
    sign_in(page, site, "agent")
    page.click("nav >> text=Register a complaint")
    check_accessible(page, axe, "register")
    page.fill("#phone", "98123 45699")
    page.select_option("#language", "hi")
    page.select_option("#department", "electricity")
    page.select_option("#issue_type", "no_power")
    page.select_option("#district", "shimla")
    page.select_option("#block", "theog")
    page.fill("#description", "No power since morning")
    page.click("button:has-text('Register')")
    assert "Registered: ticket" in page.locator("[role=status]").inner_text()
    ack = page.locator(".timeline .sms").first.inner_text()
    assert re.search(r"\d{9}", ack)  # the ticket, in the caller's Hindi SMS


def test_a_district_admin_adds_an_officer(page: Any, site: Site, axe: str) -> None:
    sign_in(page, site, "district_admin")
    page.click("nav >> text=Accounts")
    check_accessible(page, axe, "accounts")
    form = page.locator("form[action='/console/accounts']")
    form.locator("input[name=username]").fill("je_kotkhai")
    form.locator("input[name=name]").fill("JE Kotkhai")
    form.locator("select[name=role]").select_option("officer")
    form.locator("select[name=department]").select_option("jal_shakti")
    form.locator("select[name=level]").select_option("block")
    form.locator("input[name=area]").fill("theog")
    form.locator("button").click()
    assert "Account je_kotkhai added." in page.locator("[role=status]").inner_text()
    assert "je_kotkhai" in page.locator("table.accounts").inner_text()
    # Outside the district: refused.
    form.locator("input[name=username]").fill("je_chamba")
    form.locator("input[name=name]").fill("JE Chamba")
    form.locator("select[name=role]").select_option("officer")
    form.locator("select[name=level]").select_option("block")
    form.locator("input[name=area]").fill("chamba")
    form.locator("button").click()
    assert "outside your district" in page.locator("[role=alert]").inner_text()


def test_the_hindi_switch_is_remembered_for_the_account(browser: Any, site: Site, axe: str) -> None:
    for round_ in range(2):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        try:
            sign_in(page, site, "state_admin")
            if round_ == 0:
                page.click("button:has-text('हिन्दी')")
            assert page.locator("h1").inner_text() == "आपकी शिकायतें"
            assert page.evaluate("document.documentElement.lang") == "hi"
            check_accessible(page, axe, "list")
        finally:
            context.close()


def test_a_form_without_its_csrf_token_is_refused(page: Any, site: Site) -> None:
    sign_in(page, site, "officer")
    answer = page.request.post(
        f"{site.url}/console/complaints/{site.tickets['theog']}/note",
        form={"remark": "no token"},
        max_redirects=0,
    )
    assert answer.status == 403
    page.goto(f"{site.url}/console/complaints/{site.tickets['theog']}")
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
    page.click("text=Sign out")
    assert "403" in page.content()


@pytest.mark.skipif(not SHOTS, reason="CONSOLE_SHOTS=<dir> saves screenshots of every page")
def test_screenshots_of_every_page(browser: Any, site: Site) -> None:
    """Each page at 1280 and 360 pixels, in English and Hindi, for a person to look at."""
    assert SHOTS is not None
    pages = {
        "list": "/console/",
        "complaint": f"/console/complaints/{site.tickets['kangra']}",
        "register": "/console/register",
        "accounts": "/console/accounts",
    }
    for width in (1280, 360):
        for lang in ("en", "hi"):
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            try:
                page.goto(f"{site.url}/console/signin")
                if lang == "hi":
                    page.click("button:has-text('हिन्दी')")
                page.screenshot(path=f"{SHOTS}/signin-{width}-{lang}.png", full_page=True)
                page.fill("#username", "state_admin")
                page.fill("#password", PASSWORD)
                page.click("main button[type=submit]")
                current = page.evaluate("document.documentElement.lang")
                if current != lang:
                    page.click(f"button[name=lang][value={'hi' if lang == 'hi' else 'en_IN'}]")
                for name, path in pages.items():
                    page.goto(f"{site.url}{path}")
                    page.screenshot(path=f"{SHOTS}/{name}-{width}-{lang}.png", full_page=True)
                page.goto(f"{site.url}{pages['complaint']}")
                page.fill("#note-remark", "Engineer visits tomorrow")
                page.click("form[action$='/note'] button")
                page.screenshot(path=f"{SHOTS}/preview-{width}-{lang}.png", full_page=True)
            finally:
                context.close()

"""The phone simulator at /console/simulator over HTTP (no browser): who may open it, a dial
through the signed USSD callback, an SMS reply through the inbound path, the inbox."""

from __future__ import annotations

import re
from typing import Any

import yaml
from aiohttp.test_utils import TestClient

from gateway.app import CALLBACKS, CONFIG, SIGNER
from gateway.storage.models import InboundMessage, UssdSession
from tests.conftest import SHIPPED_CONFIG, AppFactory, make_config
from tests.staff_helpers import ROLES
from tests.test_console import account, csrf, sign_in


async def press(client: TestClient[Any, Any], **form: str) -> str:
    token = await csrf(client, "/console/simulator")
    answer = await client.post("/console/simulator", data={"csrf": token, **form})
    assert answer.status == 200, await answer.text()
    return await answer.text()


def screen_of(html: str) -> str:
    found = re.search(r'<pre class="ussd"[^>]*>(.*?)</pre>', html, re.S)
    assert found, html
    return found.group(1)


async def test_anyone_dials_through_the_signed_callback_with_the_simulator_provider(
    client: TestClient[Any, Any],
) -> None:
    page = await client.get("/console/simulator", allow_redirects=False)
    assert page.status == 200  # no sign-in while no SMS really goes out
    assert 'href="/console/simulator"' in await (await client.get("/console/signin")).text()
    html = await press(client, action="number", number="98123 45600")
    assert "+919812345600" in html
    html = await press(client, action="call", typed="")
    first = screen_of(html)
    assert re.search(r"\d+/(182 GSM7|80 UCS2)", html), html
    secret = client.app[SIGNER].path("/ussd/africastalking")
    assert secret is not None and secret.split("/")[3] not in html  # the secret stays home
    assert not client.app[SIGNER].refused  # taken at the signed path
    html = await press(client, key="1", typed="")
    assert 'value="1"' in html  # typed, not sent yet
    html = await press(client, action="call", typed="1")
    assert screen_of(html) != first
    html = await press(client, action="end")  # mid-session: the network says it ended
    assert '<pre class="ussd"' not in html
    recorder = client.app[CALLBACKS].sessions
    assert recorder is not None
    await recorder.flush()
    ended = await UssdSession.get(phone="+919812345600")
    assert ended.end_status == "Incomplete" and ended.hops == 2


async def test_an_sms_reply_goes_through_the_inbound_path(client: TestClient[Any, Any]) -> None:
    await press(client, action="number", number="+919812345601")
    html = await press(client, action="sms", quick="HELP")
    assert await InboundMessage.filter(sender="+919812345601", text="HELP").count() == 1
    assert "sent by the phone" in html and "HELP" in html
    html = await press(client, action="sms", text="")
    assert "write the SMS first" in html


async def test_with_a_real_provider_only_a_state_admin_and_only_test_numbers(
    start_app: AppFactory, tmp_path: Any, database_url: str, redis_url: str
) -> None:
    config = make_config(
        tmp_path, database_url, redis_url,
        sms={"provider": "africastalking", "africastalking": {"username": "u", "api_key": "k"}},
        console={"simulator_numbers": ["+9190000000"]},
        tickets={"key": "a private test key"},
    )  # fmt: skip
    client = await start_app(config)
    page = await client.get("/console/simulator", allow_redirects=False)
    assert page.status == 303  # sign in first
    assert 'href="/console/simulator"' not in await (await client.get("/console/signin")).text()
    await account(client, "officer", **ROLES["officer"])
    await sign_in(client, "officer")
    assert (await client.get("/console/simulator")).status == 404
    await client.post("/console/signout", data={"csrf": await csrf(client)})
    await account(client, "state_admin", **ROLES["state_admin"])
    await sign_in(client, "state_admin")
    html = await (await client.get("/console/simulator")).text()
    assert "+919000000000" in html
    html = await press(client, action="number", number="+919812345678")
    assert "not one of the test numbers" in html
    assert client.app[CONFIG].console.simulator_numbers == ["+9190000000"]


async def test_no_input_answers_500(client: TestClient[Any, Any]) -> None:
    for form in (
        {"action": "number", "number": "not a number"}, {"action": "number", "number": ""},
        {"key": "A"}, {"action": "nuke"}, {"action": "call", "typed": "*999#"},
        {"action": "call", "typed": "x" * 1000}, {"action": "sms", "text": "y" * 1000},
        {"action": "clear"}, {"action": "end"},
    ):  # fmt: skip
        await press(client, **form)
    token = await csrf(client, "/console/simulator")
    for bad in ("typed=%00", "number=%ED%A0%80", "action=number&number=%ED%A0%80"):
        answer = await client.post(
            "/console/simulator",
            data=f"csrf={token}&{bad}".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
        )
        assert answer.status in (303, 400), (bad, answer.status)
    html = await press(client, action="call", typed="*999#")
    assert "it is the only code served here" in html


async def test_the_screen_is_measured_against_the_languages_budget(
    start_app: AppFactory, tmp_path: Any, database_url: str, redis_url: str
) -> None:
    raw = yaml.safe_load(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    for lang in raw["languages"]:
        if lang["code"] == "hi":
            lang["screen_budget"] = 70
    config = make_config(tmp_path, database_url, redis_url, languages=raw["languages"])
    client = await start_app(config)
    await press(client, action="number", number="+919812345602")
    html = await press(client, action="call", typed="")  # the language list, in Hindi too
    assert "/70 UCS2" in html
    html = await press(client, action="call", typed="2")  # English: GSM-7, 182
    assert "/182 GSM7" in html

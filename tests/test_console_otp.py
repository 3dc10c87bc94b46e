"""The console's second factor (``console.otp``): the right password texts a one-time code
through the outbox, and only that code, once, finishes the sign-in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.config import Config
from gateway.storage.models import AuditRecord, OutboundMessage
from gateway.web.keys import CONFIG
from tests.conftest import AppFactory, make_config
from tests.staff_helpers import ROLES
from tests.test_console import account, csrf, sign_in

PHONE = "+919800100001"


async def otp_client(
    start_app: AppFactory, tmp_path: Path, database_url: str, redis_url: str, **console: Any
) -> TestClient[Any, Any]:
    config: Config = make_config(
        tmp_path, database_url, redis_url, console={"otp": True, **console}
    )
    return await start_app(config)


async def texted_code(to: str) -> str:
    message = (
        await OutboundMessage.filter(recipient=to, template="staff_sign_in_code")
        .order_by("-id")
        .first()
    )
    assert message is not None, "no sign-in code was written to the outbox"
    found = re.search(r"\b(\d{6})\b", message.text)
    assert found, message.text
    return found.group(1)


async def type_code(client: TestClient[Any, Any], code: str) -> int:
    token = await csrf(client, "/console/signin/code")
    answer = await client.post(
        "/console/signin/code", data={"csrf": token, "code": code}, allow_redirects=False
    )
    return answer.status


async def test_the_right_password_texts_a_code_and_only_the_code_signs_in(
    start_app: AppFactory, tmp_path: Path, database_url: str, redis_url: str
) -> None:
    client = await otp_client(start_app, tmp_path, database_url, redis_url)
    await account(client, "officer", phone=PHONE, **ROLES["officer"])
    status, _ = await sign_in(client, "officer")
    assert status == 303
    assert (await client.get("/console/", allow_redirects=False)).status == 303  # not yet in
    code = await texted_code(PHONE)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert await type_code(client, wrong) == 401
    assert await type_code(client, code) == 303
    page = await client.get("/console/")
    assert page.status == 200 and "Your complaints" in await page.text()
    actions = [r.action for r in await AuditRecord.filter(actor="staff:officer")]
    assert actions == ["console.signin"]
    assert await AuditRecord.filter(action="console.code_failed").count() == 1
    message = await OutboundMessage.get(template="staff_sign_in_code")
    assert message.essential and message.complaint_id is None


async def test_a_code_works_once_and_goes_after_too_many_wrong_tries(
    start_app: AppFactory, tmp_path: Path, database_url: str, redis_url: str
) -> None:
    # Failed sign-ins are throttled too (tested apart): here only the code's own tries count.
    client = await otp_client(
        start_app, tmp_path, database_url, redis_url, failures_per_account=100
    )
    await account(client, "officer", phone=PHONE, **ROLES["officer"])
    await sign_in(client, "officer")
    used = await texted_code(PHONE)
    assert await type_code(client, used) == 303
    await client.post("/console/signout", data={"csrf": await csrf(client)})
    await sign_in(client, "officer")
    fresh = await texted_code(PHONE)
    wrong = f"{(int(fresh) + 1) % 10**6:06d}"
    for _ in range(client.app[CONFIG].console.otp_tries):
        assert await type_code(client, wrong) == 401
    assert await type_code(client, fresh) == 401  # gone after the tries


async def test_wrong_codes_count_as_failed_sign_ins(
    start_app: AppFactory, tmp_path: Path, database_url: str, redis_url: str
) -> None:
    client = await otp_client(start_app, tmp_path, database_url, redis_url, otp_tries=10)
    await account(client, "officer", phone=PHONE, **ROLES["officer"])
    await sign_in(client, "officer")
    code = await texted_code(PHONE)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(client.app[CONFIG].console.failures_per_account):
        assert await type_code(client, wrong) == 401
    assert await type_code(client, code) == 303  # back to the password page, not signed in
    assert (await client.get("/console/", allow_redirects=False)).status == 303
    status, text = await sign_in(client, "officer")
    assert status == 429 and "Too many failed sign-ins" in text


async def test_an_account_without_a_number_cannot_sign_in_with_otp_on(
    start_app: AppFactory, tmp_path: Path, database_url: str, redis_url: str
) -> None:
    client = await otp_client(start_app, tmp_path, database_url, redis_url)
    await account(client, "officer", **ROLES["officer"])
    status, text = await sign_in(client, "officer")
    assert status == 403 and "no registered number" in text
    assert not await OutboundMessage.filter(template="staff_sign_in_code").exists()

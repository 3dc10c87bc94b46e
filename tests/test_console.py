"""The staff console over HTTP (no browser): sign-in, sessions, CSRF, throttling, the same
scope as the API, set-password links, the ``staff password`` command, its catalogs."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from gateway.app import CLOCK, CONFIG, REDIS
from gateway.cli.staff import staff_command
from gateway.staff.accounts import NewStaff, add_staff
from gateway.staff.passwords import create_password_link, set_password
from gateway.storage.models import (
    AuditRecord,
    Complaint,
    ComplaintStatus,
    OutboundMessage,
    StaffMember,
)
from tests.conftest import ROOT
from tests.staff_helpers import ROLES, auth, make_staff_token
from tests.test_api_complaints import complaint
from tests.test_staff_cli import parse

PASSWORD = "a good long pass 1"


async def account(client: TestClient[Any, Any], username: str, **fields: Any) -> StaffMember:
    staff = await add_staff(
        client.app[CONFIG], NewStaff(username=username, name=username, **fields), actor="test"
    )
    await set_password(staff, PASSWORD, actor="test")
    return staff


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


async def sign_in(
    client: TestClient[Any, Any], username: str, password: str = PASSWORD
) -> tuple[int, str]:
    page = await client.get("/console/signin")
    token = csrf_of(await page.text())
    answer = await client.post(
        "/console/signin",
        data={"csrf": token, "username": username, "password": password},
        allow_redirects=False,
    )
    return answer.status, await answer.text()


async def csrf(client: TestClient[Any, Any], path: str = "/console/") -> str:
    return csrf_of(await (await client.get(path)).text())


async def test_sign_in_sets_a_strict_session_and_every_page_a_strict_policy(
    client: TestClient[Any, Any],
) -> None:
    await account(client, "officer", **ROLES["officer"])
    page = await client.get("/console/", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/console/signin"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert (await sign_in(client, "officer", "wrong password"))[0] == 401
    token = await csrf(client, "/console/signin")
    answer = await client.post(
        "/console/signin",
        data={"csrf": token, "username": "officer", "password": PASSWORD},
        allow_redirects=False,
    )
    assert answer.status == 303
    set_cookie = answer.headers["Set-Cookie"]
    assert set_cookie.startswith("sampark_console=")
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert "Path=/console" in set_cookie and "Max-Age=1800" in set_cookie
    assert "Secure" not in set_cookie  # console.secure_cookies is for HTTPS
    page = await client.get("/console/")
    assert page.status == 200 and "Your complaints" in await page.text()
    actions = [r.action for r in await AuditRecord.filter(actor="staff:officer")]
    assert actions == ["console.signin"]
    assert await AuditRecord.filter(action="console.signin_failed").count() == 1
    asset = await client.get("/console/static/console.css")
    assert asset.status == 200 and asset.headers["Content-Security-Policy"]


async def test_a_post_without_its_csrf_token_is_refused(client: TestClient[Any, Any]) -> None:
    await account(client, "officer", **ROLES["officer"])
    answer = await client.post(
        "/console/signin", data={"username": "officer", "password": PASSWORD}
    )
    assert answer.status == 403
    await sign_in(client, "officer")
    c = await complaint(client)
    for data in ({"remark": "x"}, {"remark": "x", "csrf": "forged"}):
        answer = await client.post(f"/console/complaints/{c.ticket}/note", data=data)
        assert answer.status == 403
    assert (await Complaint.get(id=c.id)).status is not ComplaintStatus.IN_PROGRESS


async def test_failed_sign_ins_are_throttled_per_account(client: TestClient[Any, Any]) -> None:
    await account(client, "officer", **ROLES["officer"])
    limit = client.app[CONFIG].console.failures_per_account
    for _ in range(limit):
        assert (await sign_in(client, "officer", "wrong password"))[0] == 401
    status, text = await sign_in(client, "officer")  # right, but too late
    assert status == 429 and "Too many failed sign-ins" in text
    assert await AuditRecord.filter(action="console.signin_throttled").count() == 1


async def test_signing_out_ends_the_session_and_idleness_too(
    client: TestClient[Any, Any],
) -> None:
    await account(client, "officer", **ROLES["officer"])
    await sign_in(client, "officer")
    jar = client.session.cookie_jar.filter_cookies(client.make_url("/console/"))
    identity = jar["sampark_console"].value
    redis = client.app[REDIS]
    key = f"sampark:console:session:{identity}"
    ttl = await redis.ttl(key)
    assert 0 < ttl <= client.app[CONFIG].console.idle_minutes * 60
    # Idle past the limit: out.
    data = json.loads(await redis.get(key))
    data["session"]["seen"] -= client.app[CONFIG].console.idle_minutes * 60 + 1
    await redis.set(key, json.dumps(data))
    page = await client.get("/console/", allow_redirects=False)
    assert page.status == 303
    # Signing out deletes the session: the old cookie no longer works.
    await sign_in(client, "officer")
    identity = client.session.cookie_jar.filter_cookies(client.make_url("/console/"))[
        "sampark_console"
    ].value
    await client.post("/console/signout", data={"csrf": await csrf(client)})
    assert not await redis.exists(f"sampark:console:session:{identity}")
    assert await AuditRecord.filter(action="console.signout").count() == 1


async def test_the_console_refuses_what_the_api_refuses(client: TestClient[Any, Any]) -> None:
    """Same scope: outside it, 404 in both; read-only (a tehsil officer, a block-level
    complaint), both refuse to act."""
    mine = await complaint(client)
    elsewhere = await complaint(client, district="kangra", block="dharamshala")
    tehsil = dict(role=ROLES["officer"]["role"], department="jal_shakti", level="tehsil",
                  area="theog")  # fmt: skip
    await account(client, "tehsil_officer", **tehsil)
    token = await make_staff_token(client, "tehsil_api", **tehsil)
    await sign_in(client, "tehsil_officer")
    for c, status in ((mine, 200), (elsewhere, 404)):
        page = await client.get(f"/console/complaints/{c.ticket}")
        api = await client.get(f"/api/v1/complaints/{c.ticket}", headers=auth(token))
        assert page.status == api.status == status
    page = await client.get(f"/console/complaints/{mine.ticket}")
    assert "You can read this complaint but not act on it." in await page.text()
    answer = await client.post(
        f"/console/complaints/{mine.ticket}/resolve",
        data={"csrf": await csrf(client), "remark": "done", "confirm": "yes"},
    )
    api = await client.post(
        f"/api/v1/complaints/{mine.ticket}/resolve", json={"remark": "done"}, headers=auth(token)
    )
    assert answer.status == api.status == 403
    assert (await Complaint.get(id=mine.id)).status is not ComplaintStatus.RESOLVED
    listing = await (await client.get("/console/")).text()
    assert mine.ticket in listing and elsewhere.ticket not in listing


async def test_a_typed_ticket_is_checked_and_found(client: TestClient[Any, Any]) -> None:
    await account(client, "officer", **ROLES["officer"])
    c = await complaint(client)
    assert c.ticket is not None
    await sign_in(client, "officer")
    found = await client.get("/console/", params={"q": c.ticket}, allow_redirects=False)
    assert found.headers["Location"] == f"/console/complaints/{c.ticket}"
    typo = c.ticket[:-1] + str((int(c.ticket[-1]) + 1) % 10)
    page = await (await client.get("/console/", params={"q": typo})).text()
    assert "the check digit does not match" in page


async def test_a_set_password_link_works_once(client: TestClient[Any, Any]) -> None:
    staff = await add_staff(
        client.app[CONFIG], NewStaff(username="new", name="New", **ROLES["agent"]), actor="test"
    )
    secret = await create_password_link(staff, actor="test", now=client.app[CLOCK]())
    path = f"/console/password/{secret}"
    page = await client.get(path)
    assert page.status == 200
    token = csrf_of(await page.text())
    short = await client.post(path, data={"csrf": token, "password": "short", "again": "short"})
    assert short.status == 400
    done = await client.post(
        path, data={"csrf": token, "password": PASSWORD, "again": PASSWORD}, allow_redirects=False
    )
    assert done.status == 303
    assert (await client.get(path)).status == 404  # used
    assert (await sign_in(client, "new"))[0] == 303


async def test_staff_password_reads_stdin_never_an_argument(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_staff(
        client.app[CONFIG], NewStaff(username="agent", name="A", **ROLES["agent"]), actor="test"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))
    lines: list[str] = []
    args = parse("password", "agent", "--password-stdin")
    assert await staff_command(client.app[CONFIG], args, out=lines.append, err=lines.append) == 0
    assert (await sign_in(client, "agent"))[0] == 303
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert await staff_command(client.app[CONFIG], args, out=lines.append, err=lines.append) == 2
    assert lines[-1].startswith("error: password:")
    with pytest.raises(SystemExit):
        parse("password", "agent", PASSWORD)  # no place for it on the command line


def test_the_console_catalogs_are_complete_and_current() -> None:
    with (ROOT / "babel-console.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f, "babel-console.cfg")
    extracted = {
        message
        for _, _, message, _, _ in extract_from_dir(
            str(ROOT), method_map, options_map, keywords={"_": None, "C_": None}
        )
    }
    with (ROOT / "locales" / "console.pot").open("rb") as f:
        in_pot = {m.id for m in read_po(f) if m.id}
    assert extracted == in_pot, "locales/console.pot is stale: run `make translations`"
    for lang in ("hi", "en_IN"):
        with (ROOT / "locales" / lang / "LC_MESSAGES" / "console.po").open("rb") as f:
            catalog = read_po(f, locale=lang)
        missing = [m for m in in_pot if not (catalog.get(m) and catalog[m].string)]
        assert not missing, f"{lang}: untranslated {missing}"


async def test_a_transfer_shows_the_citizens_sms_before_it_is_made(
    client: TestClient[Any, Any],
) -> None:
    await account(client, "district_admin", **ROLES["district_admin"])
    c = await complaint(client)
    await sign_in(client, "district_admin")
    path = f"/console/complaints/{c.ticket}/transfer"
    token = await csrf(client)
    form = {"csrf": token, "department": "revenue", "block": "", "remark": "Land matter"}
    preview = await client.post(path, data=form)
    text = await preview.text()
    assert preview.status == 200 and "The citizen will get this SMS" in text
    assert (await Complaint.get(id=c.id)).department == "jal_shakti"  # nothing done yet
    assert not await OutboundMessage.filter(complaint_id=c.id, template="complaint_transferred")
    wrong = await client.post(path, data={**form, "department": "", "block": "nowhere"})
    assert wrong.status == 400 and "block" in await wrong.text()
    done = await client.post(path, data={**form, "confirm": "yes"}, allow_redirects=False)
    assert done.status == 303
    assert (await Complaint.get(id=c.id)).department == "revenue"
    sent = await OutboundMessage.get(complaint_id=c.id, template="complaint_transferred")
    assert sent.text in text.replace("&#39;", "'")  # the preview was the SMS sent


async def test_no_input_answers_500(client: TestClient[Any, Any]) -> None:
    """Odd queries, forms and paths get a page or a 4xx naming the field, never a 500."""
    await account(client, "state_admin", **ROLES["state_admin"])
    c = await complaint(client)
    await sign_in(client, "state_admin")
    token = await csrf(client)
    for params in (
        {"level": "9"}, {"level": "x" * 50}, {"status": "lost"}, {"from": "2026-13-01"},
        {"overdue": "perhaps"}, {"page": "-1"}, {"page": "99999999"}, {"q": "\x00"},
        {"q": "1" * 500}, {"department": "\ud800"}, {"block": "nowhere"},
    ):  # fmt: skip
        answer = await client.get("/console/", params=params)
        assert answer.status in (200, 400), (params, answer.status)
    for path in ("/console/complaints/%00", "/console/complaints/" + "9" * 200):
        assert (await client.get(path)).status == 404
    note = f"/console/complaints/{c.ticket}/note"
    answer = await client.post(note, data={"csrf": token, "remark": "a\x00b"})
    assert answer.status == 400 and "remark" in await answer.text()
    answer = await client.post(note, data={"csrf": token, "remark": "x" * 501})
    assert answer.status == 400
    answer = await client.post(
        "/console/accounts",
        data={"csrf": token, "username": "long", "name": "n" * 81, "role": "agent"},
    )
    assert answer.status == 400 and "name: at most 80" in await answer.text()
    answer = await client.post(
        "/console/accounts", data={"csrf": token, "username": "x", "name": "X", "role": "king"}
    )
    assert answer.status == 400


async def test_an_administrator_reopens_a_closed_account_in_the_console(
    client: TestClient[Any, Any],
) -> None:
    await account(client, "district_admin", **ROLES["district_admin"])
    await account(client, "agent", **ROLES["agent"])
    await sign_in(client, "district_admin")
    token = await csrf(client, "/console/accounts")
    closed = await client.post(
        "/console/accounts/deactivate", data={"csrf": token, "username": "agent"},
        allow_redirects=False,
    )  # fmt: skip
    assert closed.status == 303 and not (await StaffMember.get(username="agent")).active
    page = await (await client.get("/console/accounts")).text()
    assert 'action="/console/accounts/reactivate"' in page
    reopened = await client.post(
        "/console/accounts/reactivate", data={"csrf": token, "username": "agent"},
        allow_redirects=False,
    )  # fmt: skip
    assert reopened.status == 303 and (await StaffMember.get(username="agent")).active
    again = await client.post(
        "/console/accounts/reactivate", data={"csrf": token, "username": "agent"}
    )
    assert again.status == 409 and "open already" in await again.text()
    assert await AuditRecord.filter(action="staff.reactivate", target="staff:agent").count() == 1
    await client.post("/console/signout", data={"csrf": token})
    status, _ = await sign_in(client, "agent")
    assert status == 303

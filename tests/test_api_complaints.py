"""The staff complaints API: every role against every endpoint, filters, pagination,
actions through the lifecycle (with their SMS), agent registration."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import COMPLAINTS, CONFIG, LIFECYCLE
from gateway.complaints.registration import NewComplaint
from gateway.storage.db import tortoise_config
from gateway.storage.models import (
    Channel,
    Complaint,
    ComplaintEvent,
    MessageStatus,
    OutboundMessage,
)

from .conftest import run_worker
from .staff_helpers import ROLES, auth, make_staff_token

_phones = itertools.count(100)


def next_phone() -> str:
    return f"+9198120{next(_phones):05d}"


async def complaint(
    client: TestClient[Any, Any],
    *,
    phone: str | None = None,
    department: str = "jal_shakti",
    district: str = "shimla",
    block: str = "theog",
    description: str | None = None,
) -> Complaint:
    """A complaint registered the way USSD registers one (acknowledgement included)."""
    new = NewComplaint(
        phone=phone or next_phone(),
        language="hi",
        department=department,
        district=district,
        block=block,
        channel=Channel.USSD,
        source_key=f"test:{next(_phones)}",
        issue_type=None if description else "no_water_supply",
        description=description,
    )
    registration = await client.app[COMPLAINTS].register(new)
    return await Complaint.get(id=registration.complaint_id)


async def tokens(client: TestClient[Any, Any]) -> dict[str, str]:
    return {role: await make_staff_token(client, role, **fields) for role, fields in ROLES.items()}


# Every role x every endpoint ------------------------------------------------------------
REGISTER_BODY = {
    "department": "jal_shakti",
    "district": "shimla",
    "block": "theog",
    "issue_type": "pipeline_leak",
    "language": "en_IN",
}

ENDPOINTS: dict[str, tuple[str, str, dict[str, Any] | None, str | None]] = {
    # name: (method, path, body, the SMS template a successful call writes)
    "list": ("GET", "/api/v1/complaints", None, None),
    "detail": ("GET", "/api/v1/complaints/{ticket}", None, None),
    "notes": (
        "POST",
        "/api/v1/complaints/{ticket}/notes",
        {"remark": "New pipe laid, supply tomorrow"},
        "complaint_status_update",
    ),
    "resolve": (
        "POST",
        "/api/v1/complaints/{ticket}/resolve",
        {"remark": "Supply restored"},
        "complaint_resolved",
    ),
    "transfer": (
        "POST",
        "/api/v1/complaints/{ticket}/transfer",
        {"remark": "Land dispute", "department": "revenue"},
        "complaint_transferred",
    ),
    "reassign": (
        "POST",
        "/api/v1/complaints/{ticket}/reassign",
        {"officer": "bdo_desk", "remark": "JE on leave"},
        "officer_new_complaint",
    ),
    "register": ("POST", "/api/v1/complaints", REGISTER_BODY, "complaint_registered"),
}

ROLE_NAMES = tuple(ROLES)


def row(*codes: int | str) -> dict[str, int | str]:
    return dict(zip(ROLE_NAMES, codes, strict=True))


EXPECTED: dict[str, dict[str, int | str]] = {
    # agent, officer, officer_elsewhere, district_admin, district_admin_elsewhere,
    # state_reviewer, state_admin
    "list": row("seen", "seen", "unseen", "seen", "unseen", "seen", "seen"),
    "detail": row(200, 200, 404, 200, 404, 200, 200),
    "notes": row(200, 200, 404, 200, 404, 403, 200),
    "resolve": row(403, 200, 404, 200, 404, 403, 200),
    "transfer": row(403, 200, 404, 200, 404, 403, 200),
    "reassign": row(403, 200, 404, 200, 404, 403, 200),
    "register": row(201, 403, 403, 201, 403, 403, 201),
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_every_role_against_the_endpoint(client: TestClient[Any, Any], endpoint: str) -> None:
    method, path, body, template = ENDPOINTS[endpoint]
    staff = await tokens(client)
    got: dict[str, int | str] = {}
    for role, token in staff.items():
        c = await complaint(client)  # fresh for each role: actions change it
        assert c.ticket is not None
        events_before = await ComplaintEvent.filter(complaint_id=c.id).count()
        messages_before = await OutboundMessage.all().count()
        payload = dict(body or {})
        if endpoint == "register":
            payload["phone"] = next_phone()
        resp = await client.request(
            method, path.format(ticket=c.ticket), json=body and payload, headers=auth(token)
        )
        answer = await resp.json()
        got[role] = resp.status
        if endpoint == "list":
            assert resp.status == 200
            got[role] = "seen" if c.ticket in {i["ticket"] for i in answer["items"]} else "unseen"
        elif resp.status >= 400:
            assert set(answer["error"]) >= {"code", "message"}
            # Refused: nothing happened, nothing was sent.
            assert await ComplaintEvent.filter(complaint_id=c.id).count() == events_before
            assert await OutboundMessage.all().count() == messages_before
        elif template is not None:
            templates = [
                m.template
                for m in await OutboundMessage.all().order_by("id").offset(messages_before)
            ]
            assert template in templates, (role, templates)
            if endpoint == "register":
                new = await Complaint.get(ticket=answer["ticket"])
                assert new.channel is Channel.PHONE_CALL
                event = await ComplaintEvent.filter(complaint_id=new.id).order_by("id").first()
            else:
                event = await ComplaintEvent.filter(complaint_id=c.id).order_by("-id").first()
            assert event is not None and event.actor == f"staff:{role}"
    assert got == EXPECTED[endpoint]


# Listing -------------------------------------------------------------------------------
async def test_filters(client: TestClient[Any, Any]) -> None:
    token = (await tokens(client))["state_admin"]
    theog = await complaint(client, description="Handpump near school broken")
    chamba = await complaint(client, district="chamba", block="mehla")
    revenue = await complaint(client, department="revenue", description="Mutation pending")
    late = await complaint(client)
    await Complaint.filter(id=late.id).update(due_at=datetime.now(UTC) - timedelta(days=1))
    old = await complaint(client)
    await Complaint.filter(id=old.id).update(created_at=datetime(2026, 10, 5, 6, 0, tzinfo=UTC))
    await client.app[LIFECYCLE].resolve(revenue.id, "Mutation entered", actor="test")

    async def tickets(**query: str) -> set[str | None]:
        resp = await client.get("/api/v1/complaints", params=query, headers=auth(token))
        assert resp.status == 200, await resp.text()
        return {i["ticket"] for i in (await resp.json())["items"]}

    everything = {c.ticket for c in (theog, chamba, revenue, late, old)}
    assert await tickets() == everything
    assert await tickets(status="resolved") == {revenue.ticket}
    assert await tickets(department="revenue") == {revenue.ticket}
    assert await tickets(district="chamba") == {chamba.ticket}
    assert await tickets(block="mehla") == {chamba.ticket}
    assert await tickets(level="1") == everything
    assert await tickets(level="2") == set()
    assert await tickets(level="block") == everything  # a level's code, as accounts name it
    assert await tickets(level="tehsil") == set()
    assert await tickets(overdue="true") == {late.ticket}
    assert await tickets(overdue="false") == everything - {late.ticket}
    assert await tickets(to="2026-10-31") == {old.ticket}
    assert await tickets(**{"from": "2026-10-05", "to": "2026-10-05"}) == {old.ticket}
    assert old.ticket not in await tickets(**{"from": "2026-11-01"})
    assert await tickets(q="handpump") == {theog.ticket}
    assert await tickets(q="%") == set() and await tickets(q="_") == set()  # not wildcards
    assert theog.ticket and await tickets(q=theog.ticket[2:7]) >= {theog.ticket}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"limit": "101"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"level": "x"}, "level"),
        ({"level": "5"}, "level"),
        ({"level": "0"}, "level"),
        ({"overdue": "maybe"}, "overdue"),
        ({"from": "yesterday"}, "from"),
        ({"department": "space"}, "department"),
        ({"block": "atlantis"}, "block"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_list_parameters_name_the_field(
    client: TestClient[Any, Any], query: dict[str, str], field: str
) -> None:
    token = await make_staff_token(client, "admin", **ROLES["state_admin"])
    resp = await client.get("/api/v1/complaints", params=query, headers=auth(token))
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["field"] == field and error["code"] == "invalid"


async def test_cursor_pagination_walks_everything_once_newest_first(
    client: TestClient[Any, Any],
) -> None:
    token = await make_staff_token(client, "admin", **ROLES["state_admin"])
    made = [await complaint(client) for _ in range(7)]
    # Three share one creation time: the id breaks the tie.
    same = datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=UTC)
    await Complaint.filter(id__in=[c.id for c in made[2:5]]).update(created_at=same)
    expected = [
        c.ticket
        for c in sorted(await Complaint.all(), key=lambda c: (c.created_at, c.id), reverse=True)
    ]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/api/v1/complaints", params=params, headers=auth(token))
        assert resp.status == 200
        page = await resp.json()
        seen += [i["ticket"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and pages == 4


async def test_phone_numbers_are_masked_and_detail_shows_events_and_messages(
    client: TestClient[Any, Any],
) -> None:
    token = await make_staff_token(client, "je", **ROLES["officer"])
    c = await complaint(client, phone="+919812345678", description="Tap dry for a week")
    headers = auth(token)
    resp = await client.post(
        f"/api/v1/complaints/{c.ticket}/notes", json={"remark": "Valve fixed"}, headers=headers
    )
    assert resp.status == 200
    assert (await resp.json())["status"] == "in_progress"
    await run_worker(client.app)

    listing = await client.get("/api/v1/complaints", headers=headers)
    detail = await client.get(f"/api/v1/complaints/{c.ticket}", headers=headers)
    for resp in (listing, detail):
        text = await resp.text()
        assert "9812345678" not in text and "9800100001" not in text
    assert (await listing.json())["items"][0]["phone"] == "+91******5678"
    body = await detail.json()
    assert body["description"] == "Tap dry for a week"
    assert [(e["kind"], e["actor"]) for e in body["events"]] == [
        ("registered", "citizen"),
        ("assigned", "system"),
        ("note", "staff:je"),
    ]
    assert body["events"][-1]["remark"] == "Valve fixed"
    sent = {(m["template"], m["to"], m["status"]) for m in body["messages"]}
    assert sent == {
        ("complaint_registered", "+91******5678", MessageStatus.DELIVERED.value),
        ("officer_new_complaint", "+91******0001", MessageStatus.DELIVERED.value),
        ("complaint_status_update", "+91******5678", MessageStatus.DELIVERED.value),
    }
    note = next(m for m in body["messages"] if m["template"] == "complaint_status_update")
    assert "Valve fixed" in note["text"]


# Actions -------------------------------------------------------------------------------
async def test_an_action_the_status_does_not_allow_is_409(client: TestClient[Any, Any]) -> None:
    token = await make_staff_token(client, "je", **ROLES["officer"])
    c = await complaint(client)
    url = f"/api/v1/complaints/{c.ticket}/resolve"
    assert (await client.post(url, json={"remark": "done"}, headers=auth(token))).status == 200
    again = await client.post(url, json={"remark": "done"}, headers=auth(token))
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "illegal_transition"
    assert await OutboundMessage.filter(template="complaint_resolved").count() == 1


async def test_a_change_by_another_process_between_read_and_write_is_409(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real race: the action has read the complaint when another process (the worker,
    say) commits a change to it; the action's write then finds its snapshot stale. Nothing
    is done, the caller is told to try again, and trying again works."""
    database = tortoise_config(client.app[CONFIG])["connections"]["default"]
    if not isinstance(database, dict):
        pytest.skip("PostgreSQL locks the row an action reads: the other process waits")
    token = await make_staff_token(client, "admin", **ROLES["state_admin"])
    c = await complaint(client)
    notices = client.app[LIFECYCLE].notices
    draft = notices.draft

    def the_other_process_writes_first(*args: Any, **kwargs: Any) -> Any:
        # Called between the action's read and its write: a second connection to the same
        # file (another process) adds a note, committed at once.
        monkeypatch.setattr(notices, "draft", draft)
        with contextlib.closing(sqlite3.connect(database["credentials"]["file_path"])) as other:
            other.execute("UPDATE complaint SET status = 'in_progress' WHERE id = ?", (c.id,))
            other.commit()
        return draft(*args, **kwargs)

    monkeypatch.setattr(notices, "draft", the_other_process_writes_first)
    url = f"/api/v1/complaints/{c.ticket}/resolve"
    resp = await client.post(url, json={"remark": "Supply restored"}, headers=auth(token))
    assert resp.status == 409, await resp.text()
    assert (await resp.json())["error"]["code"] == "concurrent_change"
    assert (await Complaint.get(id=c.id)).status == "in_progress"
    assert not await ComplaintEvent.filter(complaint_id=c.id, kind="resolved").exists()
    assert not await OutboundMessage.filter(template="complaint_resolved").exists()

    again = await client.post(url, json={"remark": "Supply restored"}, headers=auth(token))
    assert again.status == 200 and (await again.json())["status"] == "resolved"


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("notes", {}, "remark"),
        ("notes", {"remark": "   "}, "remark"),
        ("notes", {"remark": "x" * 501}, "remark"),
        ("resolve", {"remark": 5}, "remark"),
        ("transfer", {"remark": "wrong place"}, "department"),
        ("transfer", {"remark": "wrong place", "department": "space"}, "department"),
        ("transfer", {"remark": "wrong place", "block": "atlantis"}, "block"),
        ("transfer", {"remark": "same place", "department": "jal_shakti"}, "department"),
        ("transfer", {"remark": "same place", "block": "theog"}, "block"),
        ("reassign", {}, "officer"),
        ("reassign", {"officer": "nobody"}, "officer"),
        ("reassign", {"officer": "js_theog_je"}, "officer"),  # has it already
        ("reassign", {"officer": "js_theog_ae"}, "officer"),  # tehsil level
        ("reassign", {"officer": "bdo_desk", "extra": 1}, "extra"),
    ],
)
async def test_invalid_action_bodies_name_the_field(
    client: TestClient[Any, Any], action: str, body: dict[str, Any], field: str
) -> None:
    token = await make_staff_token(client, "admin", **ROLES["state_admin"])
    c = await complaint(client)
    resp = await client.post(f"/api/v1/complaints/{c.ticket}/{action}", json=body,
                             headers=auth(token))  # fmt: skip
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["field"] == field
    assert await ComplaintEvent.filter(complaint_id=c.id).count() == 2  # registered, assigned


async def test_reassign_tells_the_new_officer_and_keeps_the_deadline(
    client: TestClient[Any, Any],
) -> None:
    token = await make_staff_token(client, "dc", **ROLES["district_admin"])
    c = await complaint(client)
    resp = await client.post(
        f"/api/v1/complaints/{c.ticket}/reassign",
        json={"officer": "bdo_desk", "remark": "JE on leave"},
        headers=auth(token),
    )
    assert resp.status == 200
    after = await Complaint.get(id=c.id)
    assert (after.officer, after.due_at, after.level) == ("bdo_desk", c.due_at, 1)
    event = await ComplaintEvent.filter(complaint_id=c.id).order_by("-id").first()
    assert event is not None
    assert (event.kind, event.actor, event.remark) == (
        "assigned",
        "staff:dc",
        "bdo_desk: JE on leave",
    )
    told = await OutboundMessage.filter(template="officer_new_complaint").order_by("-id").first()
    assert told is not None and told.recipient == "+919800100011" and c.ticket in told.text
    await run_worker(client.app)
    await told.refresh_from_db()
    assert told.status == MessageStatus.DELIVERED

    # At the tehsil level, the officers of the tehsil level (and only they) may take it.
    await Complaint.filter(id=c.id).update(level=2, officer="js_theog_ae")
    url = f"/api/v1/complaints/{c.ticket}/reassign"
    wrong = await client.post(url, json={"officer": "bdo_desk"}, headers=auth(token))
    assert wrong.status == 400 and "tehsil" in (await wrong.json())["error"]["message"]
    right = await client.post(url, json={"officer": "sdm_desk"}, headers=auth(token))
    assert right.status == 200 and (await right.json())["officer"] == "sdm_desk"


async def test_an_officer_loses_a_complaint_transferred_out_of_their_scope(
    client: TestClient[Any, Any],
) -> None:
    token = await make_staff_token(client, "je", **ROLES["officer"])
    c = await complaint(client)
    resp = await client.post(
        f"/api/v1/complaints/{c.ticket}/transfer",
        json={"remark": "Chamba's pipeline", "block": "mehla"},
        headers=auth(token),
    )
    assert resp.status == 200
    assert (await resp.json())["block"] == "mehla"
    assert (await client.get(f"/api/v1/complaints/{c.ticket}", headers=auth(token))).status == 404


# Registration for a caller -------------------------------------------------------------
async def test_a_retried_registration_with_the_same_key_creates_one_complaint(
    client: TestClient[Any, Any],
) -> None:
    token = await make_staff_token(client, "agent", **ROLES["agent"])
    body = {**REGISTER_BODY, "phone": "98123 45678"}
    headers = auth(token, **{"Idempotency-Key": "call-42"})
    first = await client.post("/api/v1/complaints", json=body, headers=headers)
    second = await client.post("/api/v1/complaints", json=body, headers=headers)
    assert (first.status, second.status) == (201, 200)
    one, two = await first.json(), await second.json()
    assert one["ticket"] == two["ticket"] and (one["created"], two["created"]) == (True, False)
    assert await Complaint.all().count() == 1
    ack = await OutboundMessage.filter(template="complaint_registered")
    assert len(ack) == 1 and ack[0].recipient == "+919812345678" and ack[0].language == "en_IN"
    other = await client.post("/api/v1/complaints", json=body, headers=auth(token))
    assert other.status == 201 and (await other.json())["ticket"] != one["ticket"]
    await run_worker(client.app)
    await ack[0].refresh_from_db()
    assert ack[0].status == MessageStatus.DELIVERED


@pytest.mark.parametrize(
    "change",
    [
        {"phone": "9812345000"},
        {"block": "mashobra"},
        {"issue_type": "dirty_water"},
        {"issue_type": None, "description": "Tank leaking"},
    ],
)
async def test_a_key_reused_for_another_complaint_is_409_not_the_first_ticket(
    client: TestClient[Any, Any], change: dict[str, Any]
) -> None:
    token = await make_staff_token(client, "agent", **ROLES["agent"])
    headers = auth(token, **{"Idempotency-Key": "call-43"})
    body = {**REGISTER_BODY, "phone": "9812345678"}
    first = await client.post("/api/v1/complaints", json=body, headers=headers)
    assert first.status == 201
    resp = await client.post("/api/v1/complaints", json={**body, **change}, headers=headers)
    assert resp.status == 409
    error = (await resp.json())["error"]
    assert (error["code"], error["field"]) == ("idempotency_conflict", "Idempotency-Key")
    assert await Complaint.all().count() == 1
    again = await client.post("/api/v1/complaints", json=body, headers=headers)
    assert again.status == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({"phone": None}, "phone"),
        ({"department": "space"}, "department"),
        ({"block": "mehla"}, "block"),
        ({"issue_type": "potholes"}, "issue_type"),
        ({"issue_type": None}, "description"),
        ({"language": "fr"}, "language"),
    ],
)
async def test_invalid_registrations_name_the_field(
    client: TestClient[Any, Any], change: dict[str, Any], field: str
) -> None:
    token = await make_staff_token(client, "agent", **ROLES["agent"])
    body = {**REGISTER_BODY, "phone": "+919812345678", **change}
    resp = await client.post("/api/v1/complaints", json=body, headers=auth(token))
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["field"] == field
    assert not await Complaint.exists()


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ("0177-2623456", "phone: a landline: cannot receive SMS"),  # was +1772623456
        ("98123456789", "phone: not a valid number for IN"),  # was +98123456789, Iran
        ("1800112233", "phone: toll-free: cannot receive SMS"),  # was +1800112233
        ("+447911123456", "phone: a number of GB: SMS go to IN numbers only"),
    ],
)
async def test_a_caller_who_cannot_receive_sms_is_refused_with_the_reason(
    client: TestClient[Any, Any], phone: str, reason: str
) -> None:
    token = await make_staff_token(client, "agent", **ROLES["agent"])
    body = {**REGISTER_BODY, "phone": phone}
    resp = await client.post("/api/v1/complaints", json=body, headers=auth(token))
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert (error["field"], error["message"]) == ("phone", reason)
    assert not await Complaint.exists() and not await OutboundMessage.exists()


async def test_the_monthly_limit_is_429(client: TestClient[Any, Any]) -> None:
    token = await make_staff_token(client, "agent", **ROLES["agent"])
    limit = 10
    for _ in range(limit):
        await complaint(client, phone="+919812345678")
    body = {**REGISTER_BODY, "phone": "+919812345678"}
    resp = await client.post("/api/v1/complaints", json=body, headers=auth(token))
    assert resp.status == 429
    assert (await resp.json())["error"]["code"] == "monthly_limit"
    assert await Complaint.all().count() == limit


async def test_the_openapi_document_lists_the_complaint_operations(
    client: TestClient[Any, Any],
) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    paths = doc["paths"]
    assert set(paths["/api/v1/complaints"]) == {"get", "post"}
    for action in ("notes", "resolve", "transfer", "reassign"):
        assert "200" in paths[f"/api/v1/complaints/{{ticket}}/{action}"]["post"]["responses"]
    names = {p["name"] for p in paths["/api/v1/complaints"]["get"]["parameters"]}
    assert {"status", "from", "to", "q", "cursor", "limit", "overdue"} <= names


@pytest.mark.parametrize("ticket", ["9" * 23, "12345678901234567", "x" * 200])
async def test_a_ticket_longer_than_any_ticket_is_404_not_500(
    client: TestClient[Any, Any], ticket: str
) -> None:
    token = await make_staff_token(client, "sa", role="state_admin")
    for method, path in [("GET", ""), ("POST", "/notes")]:
        resp = await client.request(
            method, f"/api/v1/complaints/{ticket}{path}", json={"remark": "x"}, headers=auth(token)
        )
        assert resp.status == 404, await resp.text()
        assert (await resp.json())["error"]["code"] == "not_found"

"""The scope rule (gateway/complaints/scope.py) on every path: every kind of account against every
staff endpoint and by SMS, for a complaint at the block level and for one the citizen sent
back up to the tehsil level by answering "not solved"."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import CONFIG, LIFECYCLE
from gateway.complaints.scope import OutOfScope, Scope, scope_of
from gateway.config import Config
from gateway.storage.models import (
    Complaint,
    ComplaintEvent,
    OutboundMessage,
    StaffMember,
    StaffRole,
)

from .staff_helpers import ROLES, auth, make_staff_token
from .test_api_complaints import REGISTER_BODY, complaint, next_phone
from .test_campaigns import VARIABLES
from .test_lifecycle import sms

ACCOUNTS: dict[str, dict[str, Any]] = {
    "agent": ROLES["agent"],  # Shimla
    "agent_state": dict(role=StaffRole.AGENT),
    "je_theog": ROLES["officer"],  # Jal Shakti, block Theog, acts as js_theog_je
    "jal_theog": dict(
        role=StaffRole.OFFICER, department="jal_shakti", level="block", area="theog"
    ),  # the same post, tied to no configured officer
    "bdo_theog": dict(
        role=StaffRole.OFFICER, level="block", area="theog", officer_code="bdo_desk"
    ),  # every department's desk in block Theog
    "ae_theog": dict(
        role=StaffRole.OFFICER,
        department="jal_shakti",
        level="tehsil",
        area="theog",
        officer_code="js_theog_ae",
    ),
    "je_chamba": ROLES["officer_elsewhere"],
    "dc_shimla": ROLES["district_admin"],
    "dc_kangra": ROLES["district_admin_elsewhere"],
    "reviewer": ROLES["state_reviewer"],
    "admin": ROLES["state_admin"],
}
OFFICER_PHONES = {  # config.yaml's officers, for the accounts that act as one
    "je_theog": "+919800100001",
    "ae_theog": "+919800100002",
    "bdo_theog": "+919800100011",
}

PREVIEW_BODY = {
    "template": "area_update",
    "variables": VARIABLES,
    "audience": {"filter": {"department": "jal_shakti", "block": "theog"}},
}
ACTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "notes": ("notes", {"remark": "Parts ordered"}),
    "resolve": ("resolve", {"remark": "Supply restored"}),
    "transfer": ("transfer", {"remark": "Land matter", "department": "revenue"}),
    "reassign": ("reassign", {"remark": "On leave"}),  # officer: the desk of its level
}
DESK = {1: "bdo_desk", 2: "sdm_desk"}
ENDPOINTS = ("list", "detail", *ACTIONS, "register", "preview", "review", "sms")

# list: seen/unseen; an action: its status, "out" for 403 out_of_scope (may read, not act);
# preview and review: how many of the complaint they count ("n=1") or the status; sms: the
# officer's "<ticket> DONE" resolved it or was refused ("-": the account is no officer's).
# fmt: off
BLOCK_LEVEL = {  # registered: level 1, with js_theog_je
    # the columns of ENDPOINTS
    "agent":       ("seen",   200, 200,   403,   403,   403,   201, 403,   403,   "-"),
    "agent_state": ("seen",   200, 200,   403,   403,   403,   201, 403,   403,   "-"),
    "je_theog":    ("seen",   200, 200,   200,   200,   200,   403, "n=1", "n=1", "done"),
    "jal_theog":   ("seen",   200, 200,   200,   200,   200,   403, "n=1", "n=1", "-"),
    "bdo_theog":   ("seen",   200, "out", "out", "out", "out", 403, "n=1", "n=1", "refused"),
    "ae_theog":    ("seen",   200, "out", "out", "out", "out", 403, "n=1", "n=1", "refused"),
    "je_chamba":   ("unseen", 404, 404,   404,   404,   404,   403, "n=0", "n=0", "-"),
    "dc_shimla":   ("seen",   200, 200,   200,   200,   200,   201, "n=1", "n=1", "-"),
    "dc_kangra":   ("unseen", 404, 404,   404,   404,   404,   403, "n=0", "n=0", "-"),
    "reviewer":    ("seen",   200, 403,   403,   403,   403,   403, 403,   "n=1", "-"),
    "admin":       ("seen",   200, 200,   200,   200,   200,   201, "n=1", "n=1", "-"),
}
REOPENED = {  # resolved by js_theog_je, "not solved": reopened at level 2, with js_theog_ae
    "agent":       ("seen",   200, 200,   403,   403,   403,   201, 403,   403,   "-"),
    "agent_state": ("seen",   200, 200,   403,   403,   403,   201, 403,   403,   "-"),
    "je_theog":    ("unseen", 404, 404,   404,   404,   404,   403, "n=0", "n=0", "refused"),
    "jal_theog":   ("unseen", 404, 404,   404,   404,   404,   403, "n=0", "n=0", "-"),
    "bdo_theog":   ("unseen", 404, 404,   404,   404,   404,   403, "n=0", "n=0", "refused"),
    "ae_theog":    ("seen",   200, 200,   200,   200,   200,   403, "n=1", "n=1", "done"),
    "je_chamba":   ("unseen", 404, 404,   404,   404,   404,   403, "n=0", "n=0", "-"),
    "dc_shimla":   ("seen",   200, 200,   200,   200,   200,   201, "n=1", "n=1", "-"),
    "dc_kangra":   ("unseen", 404, 404,   404,   404,   404,   403, "n=0", "n=0", "-"),
    "reviewer":    ("seen",   200, 403,   403,   403,   403,   403, 403,   "n=1", "-"),
    "admin":       ("seen",   200, 200,   200,   200,   200,   201, "n=1", "n=1", "-"),
}
# fmt: on
CASES = {"block_level": BLOCK_LEVEL, "reopened_to_tehsil": REOPENED}


async def make_case(client: TestClient[Any, Any], case: str) -> Complaint:
    """A Jal Shakti complaint in Theog, as ``case`` describes it."""
    c = await complaint(client)
    if case == "reopened_to_tehsil":
        lifecycle = client.app[LIFECYCLE]
        await lifecycle.resolve(c.id, "Pipe repaired", actor="officer:js_theog_je")
        await lifecycle.feedback(c.id, satisfied=False)
        await c.refresh_from_db()
        assert (c.status, c.level, c.officer) == ("reopened", 2, "js_theog_ae")
    return c


async def outcome(
    client: TestClient[Any, Any], endpoint: str, username: str, token: str, c: Complaint
) -> int | str:
    """What ``username`` gets from ``endpoint`` for complaint ``c``, in the table's terms."""
    headers = auth(token)
    if endpoint == "list":
        resp = await client.get("/api/v1/complaints", headers=headers)
        tickets = {i["ticket"] for i in (await resp.json())["items"]}
        return "seen" if c.ticket in tickets else "unseen"
    if endpoint == "detail":
        return (await client.get(f"/api/v1/complaints/{c.ticket}", headers=headers)).status
    if endpoint == "register":
        body = {**REGISTER_BODY, "phone": next_phone()}
        return (await client.post("/api/v1/complaints", json=body, headers=headers)).status
    if endpoint == "preview":
        resp = await client.post("/api/v1/campaigns/preview", json=PREVIEW_BODY, headers=headers)
        return f"n={(await resp.json())['recipients']}" if resp.status == 200 else resp.status
    if endpoint == "review":
        month = datetime.now(ZoneInfo(client.app[CONFIG].service.timezone)).strftime("%Y-%m")
        resp = await client.get(f"/api/v1/reports/monthly?month={month}", headers=headers)
        return (
            f"n={(await resp.json())['total']['received']}" if resp.status == 200 else resp.status
        )
    if endpoint == "sms":
        return await by_sms(client, username, c)
    return await act(client, endpoint, headers, c)


async def act(
    client: TestClient[Any, Any], endpoint: str, headers: dict[str, str], c: Complaint
) -> int | str:
    path, body = ACTIONS[endpoint]
    if endpoint == "reassign":
        body = {**body, "officer": DESK[c.level]}
    events = await ComplaintEvent.filter(complaint_id=c.id).count()
    messages = await OutboundMessage.all().count()
    resp = await client.post(f"/api/v1/complaints/{c.ticket}/{path}", json=body, headers=headers)
    if resp.status >= 400:
        # Refused: nothing happened, nothing was sent.
        assert await ComplaintEvent.filter(complaint_id=c.id).count() == events
        assert await OutboundMessage.all().count() == messages
    if resp.status == 403 and (await resp.json())["error"]["code"] == "out_of_scope":
        return "out"
    return resp.status


async def by_sms(client: TestClient[Any, Any], username: str, c: Complaint) -> str:
    phone = OFFICER_PHONES.get(username)
    if phone is None:
        return "-"
    before = c.status
    assert await sms(client, phone, f"{c.ticket} DONE Pipe replaced") == 200
    await c.refresh_from_db()
    last = await OutboundMessage.filter(recipient=phone).order_by("-id").first()
    assert last is not None
    if last.template == "officer_refused":
        assert c.status == before
        return "refused"
    assert last.template == "officer_action_done" and c.status == "resolved"
    return "done"


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_every_account_against_every_endpoint_and_sms(
    client: TestClient[Any, Any], case: str, endpoint: str
) -> None:
    tokens = {name: await make_staff_token(client, name, **f) for name, f in ACCOUNTS.items()}
    shared = None if endpoint in (*ACTIONS, "sms") else await make_case(client, case)
    got = {}
    for username, token in tokens.items():
        c = shared or await make_case(client, case)  # an action changes it: a fresh one
        got[username] = await outcome(client, endpoint, username, token, c)
    column = ENDPOINTS.index(endpoint)
    assert got == {name: row[column] for name, row in CASES[case].items()}


async def test_api_and_sms_refuse_the_block_officer_the_reopened_complaint(
    client: TestClient[Any, Any],
) -> None:
    """The issue's case, step by step: the block officer resolved it, the citizen said "not
    solved", it went up to the tehsil: the block officer may no longer resolve it."""
    token = await make_staff_token(client, "je_theog", **ACCOUNTS["je_theog"])
    c = await make_case(client, "reopened_to_tehsil")
    resp = await client.post(
        f"/api/v1/complaints/{c.ticket}/resolve", json={"remark": "Done"}, headers=auth(token)
    )
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    assert await by_sms(client, "je_theog", c) == "refused"
    await c.refresh_from_db()
    assert (c.status, c.level) == ("reopened", 2)


async def test_an_escalation_between_reading_and_acting_is_refused(
    client: TestClient[Any, Any],
) -> None:
    """The check is made on the row the action locks, not on what a handler read before."""
    lifecycle = client.app[LIFECYCLE]
    c = await complaint(client)
    scope = Scope(department="jal_shakti", block="theog", level=1, officer="js_theog_je")
    assert scope.refusal(c) is None
    await lifecycle.resolve(c.id, "Fixed", actor="officer:js_theog_je")
    await lifecycle.feedback(c.id, satisfied=False)  # now at level 2
    with pytest.raises(OutOfScope, match="its level is 2, yours is 1"):
        await lifecycle.resolve(c.id, "Fixed again", actor="officer:js_theog_je", scope=scope)
    await c.refresh_from_db()
    assert c.status == "reopened"


@pytest.mark.parametrize(
    ("scope", "reading", "acting"),
    [
        (Scope(), {}, {}),
        (Scope(district="shimla"), {"district": "shimla"}, {"district": "shimla"}),
        (
            Scope(department="jal_shakti", tehsil="theog", level=2, officer="js_theog_ae"),
            {"department": "jal_shakti", "tehsil": "theog", "level__lte": 2},
            {"department": "jal_shakti", "tehsil": "theog", "level": 2, "officer": "js_theog_ae"},
        ),
    ],
)
def test_a_scope_reads_down_and_acts_at_its_level(
    scope: Scope, reading: dict[str, Any], acting: dict[str, Any]
) -> None:
    assert scope.reading() == reading and scope.acting() == acting
    assert Scope.from_json(scope.as_json()) == scope


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (ACCOUNTS["ae_theog"], Scope(department="jal_shakti", tehsil="theog", level=2,
                                     officer="js_theog_ae")),
        (ACCOUNTS["bdo_theog"], Scope(block="theog", level=1, officer="bdo_desk")),
        (dict(role=StaffRole.OFFICER, department="pwd", level="state"),
         Scope(department="pwd", level=4)),
        # A level the config no longer has: nothing at all.
        (dict(role=StaffRole.OFFICER, level="gram_panchayat", area="theog"), Scope(level=0)),
        (ACCOUNTS["dc_shimla"], Scope(district="shimla")),
        (ACCOUNTS["agent_state"], Scope()),
        (ACCOUNTS["reviewer"], Scope(writable=False)),
    ],
)  # fmt: skip
def test_the_scope_of_each_kind_of_account(
    config: Config, fields: dict[str, Any], expected: Scope
) -> None:
    assert scope_of(StaffMember(username="x", name="x", **fields), config) == expected

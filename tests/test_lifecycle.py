"""The complaint's life after registration, driven through the real HTTP endpoints and a
real worker: officers act by SMS, citizens answer by SMS, deadlines escalate."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import LIFECYCLE
from gateway.complaints.lifecycle import IllegalTransition, InvalidTransfer
from gateway.storage.models import Complaint, ComplaintEvent, OutboundMessage
from tests.conftest import Clock, Phone, run_worker, signed

OFFICER_L1 = "+919800100001"  # Jal Shakti, Theog (config.yaml)
OFFICER_L2 = "+919800100002"
_ids = itertools.count(1)


async def sms(client: TestClient[Any, Any], sender: str, text: str, msg_id: str = "") -> int:
    form = {
        "from": sender,
        "to": "51100",
        "text": text,
        "date": "2026-11-23 10:15:02",
        "id": msg_id or f"ATXid_in_{next(_ids)}",
        "linkId": "",
    }
    resp = await client.post(signed(client, "/sms/africastalking/inbound"), data=form)
    return resp.status


async def register(client: TestClient[Any, Any], number: str, language: str) -> Complaint:
    phone = Phone(client, number=number)
    await phone.dial()
    await phone.walk(language, "1", "2", "9", "2", "1", "1")  # Jal Shakti, Shimla, Theog
    assert phone.ended
    return await Complaint.filter(citizen__phone=number).order_by("-id").first()  # type: ignore[return-value]


async def texts_to(number: str) -> list[tuple[str, str]]:
    rows = await OutboundMessage.filter(recipient=number).order_by("id")
    return [(m.template, m.text) for m in rows]


@pytest.mark.parametrize("language, lang_code", [("2", "en_IN"), ("1", "hi")])
async def test_whole_story_by_sms(
    app_client: TestClient[Any, Any], language: str, lang_code: str
) -> None:
    client = app_client
    citizen = "+919811112222"
    c = await register(client, citizen, language)
    assert c.status == "assigned" and c.officer == "js_theog_je" and c.level == 1
    officer_sms = await texts_to(OFFICER_L1)
    assert [t for t, _ in officer_sms] == ["officer_new_complaint"]
    assert c.ticket in officer_sms[0][1]

    # The L1 officer resolves by SMS; the citizen is asked for feedback.
    assert await sms(client, OFFICER_L1, f"{c.ticket} DONE Pipeline repaired") == 200
    await c.refresh_from_db()
    assert c.status == "resolved"
    # Not solved: reopened one level up, with the L2 officer.
    assert await sms(client, citizen, "2") == 200
    await c.refresh_from_db()
    assert (c.status, c.level, c.officer) == ("reopened", 2, "js_theog_ae")
    assert [t for t, _ in await texts_to(OFFICER_L2)] == ["officer_escalated"]
    # The L1 officer may no longer act on it.
    await sms(client, OFFICER_L1, f"{c.ticket} DONE again")
    await c.refresh_from_db()
    assert c.status == "reopened"
    assert (await texts_to(OFFICER_L1))[-1][0] == "officer_refused"
    # The L2 officer resolves; the citizen says it is solved: closed.
    await sms(client, OFFICER_L2, f"{c.ticket} DONE New pipe laid")
    await sms(client, citizen, "haan")
    await c.refresh_from_db()
    assert c.status == "closed" and c.closed_at is not None

    await run_worker(client.app)
    got = await OutboundMessage.filter(recipient=citizen).order_by("id")
    assert [m.template for m in got] == [
        "complaint_registered",
        "complaint_resolved",
        "complaint_reopened",
        "complaint_resolved",
        "complaint_closed",
    ]
    assert all(m.language == lang_code and m.status == "delivered" for m in got)
    assert all(c.ticket in m.text for m in got)
    kinds = [e.kind for e in await ComplaintEvent.filter(complaint_id=c.id).order_by("id")]
    assert kinds == ["registered", "assigned", "resolved", "reopened", "resolved", "closed"]


async def test_a_retried_inbound_callback_is_processed_once(
    app_client: TestClient[Any, Any],
) -> None:
    client = app_client
    c = await register(client, "+919811113333", "2")
    for _ in range(3):
        assert await sms(client, OFFICER_L1, f"{c.ticket} DONE fixed", msg_id="ATXid_same") == 200
    assert await OutboundMessage.filter(template="complaint_resolved").count() == 1
    assert await ComplaintEvent.filter(complaint_id=c.id, kind="resolved").count() == 1


async def test_escalation_across_all_levels(app_client: TestClient[Any, Any], clock: Clock) -> None:
    client = app_client
    lifecycle = client.app[LIFECYCLE]
    c = await register(client, "+919811114444", "2")
    assert await lifecycle.escalate_overdue() == 0
    for days, level, officer in (
        (8, 2, "js_theog_ae"),
        (8, 3, "js_shimla_xen"),
        (15, 4, "js_state_ce"),
    ):
        clock.advance(days=days)
        assert await lifecycle.escalate_overdue() == 1
        await c.refresh_from_db()
        assert (c.level, c.officer, c.status) == (level, officer, "assigned")
        assert c.due_at > clock.now
        assert await lifecycle.escalate_overdue() == 0, "not twice"
    clock.advance(days=15)
    assert await lifecycle.escalate_overdue() == 1
    await c.refresh_from_db()
    assert c.needs_review and c.level == 4
    assert await lifecycle.escalate_overdue() == 0
    escalated = await OutboundMessage.filter(template="complaint_escalated").count()
    assert escalated == 3
    assert await OutboundMessage.filter(template="officer_escalated").count() == 3


async def test_two_workers_racing_escalate_once(
    app_client: TestClient[Any, Any], clock: Clock
) -> None:
    client = app_client
    lifecycle = client.app[LIFECYCLE]
    complaints = [await register(client, f"+91981111550{i}", "2") for i in range(4)]
    clock.advance(days=8)
    moved = await asyncio.gather(lifecycle.escalate_overdue(), lifecycle.escalate_overdue())
    assert sum(moved) == 4
    for c in complaints:
        await c.refresh_from_db()
        assert c.level == 2
        assert await ComplaintEvent.filter(complaint_id=c.id, kind="escalated").count() == 1
    assert await OutboundMessage.filter(template="complaint_escalated").count() == 4


async def test_no_feedback_reminds_then_closes(
    app_client: TestClient[Any, Any], clock: Clock
) -> None:
    client = app_client
    lifecycle = client.app[LIFECYCLE]
    c = await register(client, "+919811116666", "2")
    await sms(client, OFFICER_L1, f"{c.ticket} DONE fixed")
    clock.advance(days=3, hours=1)
    assert await lifecycle.feedback_timers() == (1, 0)
    assert await lifecycle.feedback_timers() == (0, 0)
    clock.advance(days=4)
    assert await lifecycle.feedback_timers() == (0, 1)
    await c.refresh_from_db()
    assert c.status == "closed_no_response"
    templates = [t for t, _ in await texts_to("+919811116666")]
    assert templates[-2:] == ["feedback_reminder", "complaint_closed_no_response"]


async def test_illegal_transition_is_refused(app_client: TestClient[Any, Any]) -> None:
    c = await register(app_client, "+919811117777", "2")
    lifecycle = app_client.app[LIFECYCLE]
    with pytest.raises(IllegalTransition, match="cannot feedback a complaint that is assigned"):
        await lifecycle.feedback(c.id, satisfied=True)


@pytest.mark.parametrize(
    "sender, text",
    [
        ("+919811118888", ""),
        ("+919800000999", "1"),  # unknown sender
        ("+919811118888", "STATUS 123456789"),  # no such ticket / bad check digit
        ("+919811118888", "x" * 1000),
        ("+919811118888", "வணக்கம் புகார்"),  # a script we do not read
        ("+919800100001", "999999999 DONE fixed"),  # officer, no such ticket
    ],
)
async def test_bad_inbound_sms_gets_a_reply_never_a_500(
    app_client: TestClient[Any, Any], sender: str, text: str
) -> None:
    await register(app_client, "+919811118888", "2")
    assert await sms(app_client, sender, text) == 200
    replies = await texts_to(sender)
    assert replies, "every inbound SMS gets an answer"
    assert replies[-1][0] in {"not_understood", "ticket_not_found"}


async def test_status_by_sms(app_client: TestClient[Any, Any]) -> None:
    c = await register(app_client, "+919811119999", "1")
    await sms(app_client, "+919811119999", f"STHITI {c.ticket}")
    template, text = (await texts_to("+919811119999"))[-1]
    assert template == "status_reply" and c.ticket in text and "अधिकारी के पास" in text


async def test_transfer_then_the_district_takes_it(app_client: TestClient[Any, Any]) -> None:
    lifecycle = app_client.app[LIFECYCLE]
    c = await register(app_client, "+919811120000", "2")
    change = await lifecycle.transfer(
        c.id, actor="officer:js_theog_je", remark="Road, not water", department="pwd"
    )
    await c.refresh_from_db()
    assert (change.status, c.department, c.level, c.transfers) == ("transferred", "pwd", 1, 1)
    assert c.officer == "bdo_desk"
    citizen = [t for t, _ in await texts_to("+919811120000")]
    assert citizen[-1] == "complaint_transferred"
    for n, block in ((2, "mashobra"), (3, "theog")):
        await lifecycle.transfer(c.id, actor="system", remark="again", block=block)
        await c.refresh_from_db()
        assert (c.transfers, c.level, c.block) == (n, 1, block)
    await lifecycle.transfer(c.id, actor="system", remark="once more", department="revenue")
    await c.refresh_from_db()
    assert (c.transfers, c.level, c.officer) == (3, 3, "dc_desk"), "the district takes it"


@pytest.mark.parametrize(
    ("target", "field", "problem"),
    [
        ({"department": "nasa"}, "department", "unknown department 'nasa'"),
        ({"block": "atlantis"}, "block", "unknown block 'atlantis'"),
        ({}, "department", "give a department, a block or both"),
        ({"department": "jal_shakti"}, "department", "the complaint is with jal_shakti in theog"),
        ({"block": "theog"}, "block", "the complaint is with jal_shakti in theog"),
        ({"department": "jal_shakti", "block": "theog"}, "department", "the complaint is with"),
    ],
)
async def test_a_bad_transfer_target_is_a_typed_error_naming_the_field(
    app_client: TestClient[Any, Any], target: dict[str, str], field: str, problem: str
) -> None:
    c = await register(app_client, "+919811120001", "2")
    with pytest.raises(InvalidTransfer) as refused:
        await app_client.app[LIFECYCLE].transfer(c.id, actor="system", remark="x", **target)
    assert refused.value.field == field and refused.value.problem.startswith(problem)
    assert await ComplaintEvent.filter(complaint_id=c.id, kind="transferred").count() == 0


async def test_failed_acknowledgement_gets_one_later_try_then_flags_the_complaint(
    app_client: TestClient[Any, Any],
) -> None:
    from arq.jobs import Job, JobStatus

    from gateway.app import REDIS, worker_context
    from gateway.storage.models import Citizen

    client = app_client
    number = "+919999999406"  # the simulator answers 406 UserInBlacklist for it
    c = await register(client, number, "2")
    ack = await OutboundMessage.get(recipient=number, template="complaint_registered")
    outbox = worker_context(client.app)["outbox"]
    result = await outbox.deliver(ack.id, final_attempt=False)  # type: ignore[attr-defined]
    assert result.status == "failed"
    await ack.refresh_from_db()
    assert ack.status == "retrying" and ack.second_chance
    job = Job(f"sms:{ack.id}:second", client.app[REDIS], _queue_name="sampark:queue")
    assert await job.status() == JobStatus.deferred
    assert (await Citizen.get(phone=number)).opted_out, "406 marks the number opted out"
    # The later try fails too: the complaint is flagged for staff.
    await outbox.deliver(ack.id, final_attempt=True)  # type: ignore[attr-defined]
    flagged = await ComplaintEvent.filter(complaint_id=c.id, kind="message_failed")
    assert len(flagged) == 1 and "UserInBlacklist" in (flagged[0].remark or "")
    # Opted out: an optional message (a status update) is not written at all.
    await client.app[LIFECYCLE].add_note(c.id, "Survey done", actor="officer:js_theog_je")
    assert not await OutboundMessage.filter(recipient=number, template="complaint_status_update")


async def test_a_mistyped_ticket_is_caught_by_its_check_digit(
    app_client: TestClient[Any, Any],
) -> None:
    c = await register(app_client, "+919811121111", "2")
    assert c.ticket is not None
    mistyped = c.ticket[:3] + str((int(c.ticket[3]) + 1) % 10) + c.ticket[4:]
    await sms(app_client, "+919811121111", f"STATUS {mistyped}")
    await sms(app_client, OFFICER_L1, f"{mistyped} DONE fixed")
    assert (await texts_to("+919811121111"))[-1][0] == "ticket_not_found"
    assert (await texts_to(OFFICER_L1))[-1][0] == "ticket_not_found"
    await c.refresh_from_db()
    assert c.status == "assigned"


async def test_an_officer_transfers_by_sms(app_client: TestClient[Any, Any]) -> None:
    c = await register(app_client, "+919811122222", "2")
    await sms(app_client, OFFICER_L1, f"{c.ticket} TRANSFER pwd Road damage, not water")
    await c.refresh_from_db()
    assert (c.status, c.department, c.officer, c.transfers) == ("transferred", "pwd", "bdo_desk", 1)
    event = await ComplaintEvent.filter(complaint_id=c.id, kind="transferred").first()
    assert event is not None and event.remark == "Road damage, not water"
    assert (await texts_to("+919811122222"))[-1][0] == "complaint_transferred"
    await sms(app_client, "+919800100011", f"{c.ticket} TRANSFER nowhere please")
    assert (await texts_to("+919800100011"))[-1][0] == "not_understood"


async def test_an_officer_transferring_to_where_it_is_already_is_not_understood(
    app_client: TestClient[Any, Any],
) -> None:
    c = await register(app_client, "+919811122223", "2")
    assert await sms(app_client, OFFICER_L1, f"{c.ticket} TRANSFER jal_shakti leak") == 200
    assert (await texts_to(OFFICER_L1))[-1][0] == "not_understood"
    await c.refresh_from_db()
    assert (c.status, c.department, c.transfers) == ("assigned", "jal_shakti", 0)

"""The deadline job over many complaints: moved in chunks, each exactly once, with the same
rules, SMS and events as one at a time; a staff action that got there first wins."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.app import LIFECYCLE, REDIS
from gateway.jobs.dispatch import QUEUE, ArqDispatcher, send_sms_job_id
from gateway.storage.models import Channel, Citizen, Complaint, ComplaintEvent, OutboundMessage
from tests.conftest import Clock
from tests.test_lifecycle import OFFICER_L2

OFFICER_L4 = "+919800100004"  # Chief Engineer, Jal Shakti (config.yaml)


async def complaints(
    clock: Clock,
    n: int,
    *,
    late_by: timedelta = timedelta(days=1),
    level: int = 1,
    officer: str = "js_theog_je",
    language: str = "en_IN",
    prefix: str = "E",
    **citizen: Any,
) -> list[Complaint]:
    """``n`` open complaints in Theog (Jal Shakti), each from its own citizen, due
    ``late_by`` ago, the first due earliest."""
    made = []
    for i in range(n):
        person = await Citizen.create(
            phone=f"+9198{sum(map(ord, prefix)):04d}{i:04d}", language=language, **citizen
        )
        made.append(
            await Complaint.create(
                citizen=person,
                language=language,
                department="jal_shakti",
                issue_type="no_water_supply",
                district="shimla",
                tehsil="theog",
                block="theog",
                channel=Channel.USSD,
                status="assigned",
                level=level,
                due_at=clock.now - late_by + timedelta(minutes=i),
                officer=officer,
                source_key=f"test:{prefix}{i}",
                ticket=f"{prefix}{i:04d}",
            )
        )
    return made


async def queued_jobs(client: TestClient[Any, Any]) -> set[str]:
    return {j.decode() for j in await client.app[REDIS].zrange(QUEUE, 0, -1)}


async def test_many_overdue_complaints_move_once_each_in_chunks(
    app_client: TestClient[Any, Any], clock: Clock
) -> None:
    client = app_client
    lifecycle = client.app[LIFECYCLE]
    late = await complaints(clock, 17)
    opted_out = await complaints(clock, 3, prefix="O", opted_out=True)
    latin = await complaints(clock, 2, prefix="H", language="hi", latin_only=True)
    top = await complaints(clock, 2, prefix="T", level=4, officer="js_state_ce")
    not_yet = await complaints(clock, 3, prefix="N", late_by=timedelta(days=-1))
    due_before = {c.id: c.due_at for c in late + opted_out + latin + top + not_yet}

    assert await lifecycle.escalate_overdue(chunk=7) == 24

    moved = late + opted_out + latin
    new_due = clock.now + timedelta(days=7)  # the tehsil level's days
    for c in moved:
        await c.refresh_from_db()
        assert (c.status, c.level, c.officer) == ("assigned", 2, "js_theog_ae")
        assert c.due_at == new_due and not c.needs_review
        events = await ComplaintEvent.filter(complaint_id=c.id)
        assert [(e.kind, e.actor, e.from_status, e.to_status) for e in events] == [
            ("escalated", "system", "assigned", "assigned")
        ]
        assert (events[0].officer, events[0].level) == ("js_theog_je", 2)
        assert events[0].due_at == due_before[c.id]
        officer_sms = await OutboundMessage.filter(complaint_id=c.id, template="officer_escalated")
        assert len(officer_sms) == 1 and officer_sms[0].recipient == OFFICER_L2
        assert c.ticket and c.ticket in officer_sms[0].text
        assert (
            officer_sms[0].idempotency_key == f"complaint:{c.id}:officer_escalated:js_theog_ae:L2"
        )
    for c in late + latin:
        mine = await OutboundMessage.filter(complaint_id=c.id, template="complaint_escalated")
        assert len(mine) == 1
        assert (
            mine[0].idempotency_key == f"complaint:{c.id}:complaint_escalated:L2:{new_due.date()}"
        )
        assert c.ticket and c.ticket in mine[0].text
    for c in late:
        (mine,) = await OutboundMessage.filter(complaint_id=c.id, template="complaint_escalated")
        assert mine.language == "en_IN" and "Tehsil" in mine.text and "09-11-2026" in mine.text
    for c in latin:  # a Latin-only handset gets its Hindi in Roman letters
        (mine,) = await OutboundMessage.filter(complaint_id=c.id, template="complaint_escalated")
        assert mine.language == "hi_Latn" and mine.text.startswith("Aapki shikayat")
    for c in opted_out:  # not essential: an opted-out citizen is not told, the officer is
        assert not await OutboundMessage.filter(complaint_id=c.id, template="complaint_escalated")

    # At the top level: flagged for the state review, no SMS, the same officer.
    for c in top:
        await c.refresh_from_db()
        assert c.needs_review and (c.level, c.officer, c.status) == (4, "js_state_ce", "assigned")
        assert c.due_at == due_before[c.id]
        (flag,) = await ComplaintEvent.filter(complaint_id=c.id)
        assert (flag.kind, flag.officer, flag.level, flag.due_at) == (
            "flagged",
            "js_state_ce",
            4,
            due_before[c.id],
        )
        assert not await OutboundMessage.filter(complaint_id=c.id)
    for c in not_yet:
        await c.refresh_from_db()
        assert c.level == 1 and not await ComplaintEvent.filter(complaint_id=c.id)

    # Every message written is queued for sending, under its own job ID.
    messages = await OutboundMessage.all().values_list("id", flat=True)
    assert len(messages) == 17 + 3 + 2 + 19  # officer SMS for all, citizen SMS for 19
    assert await queued_jobs(client) == {send_sms_job_id(int(str(m))) for m in messages}

    # Nothing is due any more: a second run moves none and writes nothing.
    assert await lifecycle.escalate_overdue(chunk=7) == 0
    assert await OutboundMessage.all().count() == len(messages)
    assert await ComplaintEvent.all().count() == 24


async def test_two_runs_at_once_move_each_complaint_once(
    app_client: TestClient[Any, Any], clock: Clock
) -> None:
    lifecycle = app_client.app[LIFECYCLE]
    late = await complaints(clock, 23)
    runs = await asyncio.gather(
        lifecycle.escalate_overdue(chunk=4), lifecycle.escalate_overdue(chunk=6)
    )
    assert sum(runs) == 23
    for c in late:
        await c.refresh_from_db()
        assert c.level == 2
        assert await ComplaintEvent.filter(complaint_id=c.id).count() == 1
        assert await OutboundMessage.filter(complaint_id=c.id).count() == 2
    assert await OutboundMessage.filter(template="complaint_escalated").count() == 23
    assert await OutboundMessage.filter(template="officer_escalated").count() == 23


class StaffFirst(ArqDispatcher):
    """Queues as the gateway does; after the first chunk's commit, staff act on complaints
    the run has listed but not yet moved."""

    def __init__(self, client: TestClient[Any, Any], act: Any) -> None:
        super().__init__(client.app[REDIS])
        self.act = act

    async def dispatch(self, message_ids: Sequence[int]) -> None:
        await super().dispatch(message_ids)
        act, self.act = self.act, None
        if act is not None:
            await act()


async def test_a_staff_action_between_listing_and_moving_wins(
    app_client: TestClient[Any, Any], clock: Clock
) -> None:
    lifecycle = app_client.app[LIFECYCLE]
    late = await complaints(clock, 9)
    resolved, noted = late[6], late[7]  # in the third chunk of three

    async def staff() -> None:
        await lifecycle.resolve(resolved.id, "Pipe repaired", actor="officer:js_theog_je")
        # A note keeps it open and overdue: it is escalated all the same.
        await lifecycle.add_note(noted.id, "Parts ordered", actor="officer:js_theog_je")

    lifecycle.dispatcher = StaffFirst(app_client, staff)
    assert await lifecycle.escalate_overdue(chunk=3) == 8
    await resolved.refresh_from_db()
    assert (resolved.status, resolved.level) == ("resolved", 1)
    kinds = await ComplaintEvent.filter(complaint_id=resolved.id).values_list("kind", flat=True)
    assert kinds == ["resolved"]
    assert not await OutboundMessage.filter(complaint_id=resolved.id, template__contains="escal")
    await noted.refresh_from_db()
    assert (noted.status, noted.level) == ("assigned", 2)
    for c in late[:6] + late[8:]:
        await c.refresh_from_db()
        assert c.level == 2


async def test_escalating_to_the_top_level_then_flagging(
    app_client: TestClient[Any, Any], clock: Clock
) -> None:
    lifecycle = app_client.app[LIFECYCLE]
    (c,) = await complaints(clock, 1, level=3, officer="js_shimla_xen")
    assert await lifecycle.escalate_overdue() == 1
    await c.refresh_from_db()
    assert (c.level, c.officer, c.needs_review) == (4, "js_state_ce", False)
    assert [m.recipient for m in await OutboundMessage.filter(template="officer_escalated")] == [
        OFFICER_L4
    ]
    clock.advance(days=15)
    assert await lifecycle.escalate_overdue() == 1
    await c.refresh_from_db()
    assert c.needs_review and c.level == 4
    kinds = (
        await ComplaintEvent.filter(complaint_id=c.id).order_by("id").values_list("kind", flat=True)
    )
    assert kinds == ["escalated", "flagged"]
    assert await lifecycle.escalate_overdue() == 0, "flagged: the state review has it"

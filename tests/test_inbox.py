"""An inbound SMS whose handling fails is acted on and answered when the provider sends it
again, exactly once: faults injected through real collaborators (a lifecycle, a
dispatcher) of the real application, on the real database and Redis."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import LIFECYCLE, REDIS
from gateway.channels.base import CALLBACKS
from gateway.complaints.inbox import Inbox
from gateway.complaints.lifecycle import Change, Lifecycle
from gateway.jobs.dispatch import ArqDispatcher
from gateway.storage.models import Complaint, ComplaintEvent, InboundMessage, OutboundMessage
from gateway.web.callbacks import GatewayCallbacks
from tests.conftest import ROOT, run_worker, signed
from tests.test_lifecycle import OFFICER_L1, register, sms, texts_to

CITIZEN = "+919811120001"


class Crash(Exception):
    """The fault injected."""


class FaultyLifecycle(Lifecycle):
    """The real lifecycle, whose next action fails once: before it is taken, or after it
    has committed (as a process dying before it answers); or that waits at a gate."""

    def __init__(self, real: Lifecycle, *, fail: str = "") -> None:
        super().__init__(
            config=real.config, notices=real.notices, dispatcher=real.dispatcher, clock=real.clock
        )
        self.fail = fail
        self.entered = asyncio.Event()
        self.gate: asyncio.Event | None = None

    async def _act(self, complaint_id: int, action: str, **kw: Any) -> Change:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        fail, self.fail = self.fail, ""
        if fail == "before":
            raise Crash("before acting")
        change = await super()._act(complaint_id, action, **kw)
        if fail == "after":
            raise Crash("after acting")
        return change


class FaultyDispatcher(ArqDispatcher):
    """Redis refusing the first dispatch."""

    failed = False

    async def dispatch(self, message_ids: Sequence[int], *, tag: str | None = None) -> None:
        if not self.failed:
            self.failed = True
            raise Crash("redis away")
        await super().dispatch(message_ids, tag=tag)


def inbox(client: TestClient[Any, Any]) -> Inbox:
    return cast(GatewayCallbacks, client.app[CALLBACKS]).inbox


def faulty(client: TestClient[Any, Any], **kw: Any) -> FaultyLifecycle:
    lifecycle = FaultyLifecycle(client.app[LIFECYCLE], **kw)
    inbox(client).lifecycle = lifecycle
    return lifecycle


async def templates_to(number: str) -> list[str]:
    return [t for t, _ in await texts_to(number)]


async def events(c: Complaint, kind: str) -> int:
    return await ComplaintEvent.filter(complaint_id=c.id, kind=kind).count()


@pytest.mark.parametrize(
    "command, kind, citizen_template",
    [
        ("DONE pipeline repaired", "resolved", "complaint_resolved"),
        ("NOTE pipe ordered", "note", "complaint_status_update"),
        ("TRANSFER pwd the road is theirs", "transferred", "complaint_transferred"),
    ],
)
async def test_an_officer_action_that_fails_after_committing_is_answered_on_the_retry(
    app_client: TestClient[Any, Any], command: str, kind: str, citizen_template: str
) -> None:
    client = app_client
    c = await register(client, CITIZEN, "2")
    before = await templates_to(OFFICER_L1)
    faulty(client, fail="after")
    text = f"{c.ticket} {command}"
    assert await sms(client, OFFICER_L1, text, msg_id="ATXid_crash") != 200
    assert await events(c, kind) == 1, "the action committed before the crash"
    assert await templates_to(OFFICER_L1) == before, "not yet answered"
    # AT sends it again (twice): the answer goes once, the action is not taken again (a
    # second note or transfer, or a refusal now that the complaint has another officer).
    for _ in range(2):
        assert await sms(client, OFFICER_L1, text, msg_id="ATXid_crash") == 200
    assert await templates_to(OFFICER_L1) == [*before, "officer_action_done"]
    assert await events(c, kind) == 1
    assert (await templates_to(CITIZEN)).count(citizen_template) == 1
    record = await InboundMessage.get(provider_message_id="ATXid_crash")
    assert record.handled_at is not None and record.complaint_id == c.id  # type: ignore[attr-defined]


async def test_feedback_that_fails_after_committing_is_not_answered_as_not_understood(
    app_client: TestClient[Any, Any],
) -> None:
    client = app_client
    c = await register(client, CITIZEN, "2")
    assert await sms(client, OFFICER_L1, f"{c.ticket} DONE fixed") == 200
    faulty(client, fail="after")
    assert await sms(client, CITIZEN, "2", msg_id="ATXid_feedback") != 200
    await c.refresh_from_db()
    assert (c.status, c.level) == ("reopened", 2)
    assert await sms(client, CITIZEN, "2", msg_id="ATXid_feedback") == 200
    await c.refresh_from_db()
    assert (c.status, c.level) == ("reopened", 2)
    assert await events(c, "reopened") == 1
    citizen = await templates_to(CITIZEN)
    assert citizen.count("complaint_reopened") == 1 and "not_understood" not in citizen


async def test_an_action_that_fails_before_it_is_taken_is_taken_on_the_retry(
    app_client: TestClient[Any, Any],
) -> None:
    client = app_client
    c = await register(client, CITIZEN, "2")
    faulty(client, fail="before")
    text = f"{c.ticket} DONE fixed"
    assert await sms(client, OFFICER_L1, text, msg_id="ATXid_early") != 200
    await c.refresh_from_db()
    assert c.status == "assigned"
    assert await sms(client, OFFICER_L1, text, msg_id="ATXid_early") == 200
    await c.refresh_from_db()
    assert c.status == "resolved" and await events(c, "resolved") == 1
    assert (await templates_to(OFFICER_L1)).count("officer_action_done") == 1
    assert (await templates_to(CITIZEN)).count("complaint_resolved") == 1


async def test_a_reply_written_but_not_dispatched_goes_out_once_after_the_retry(
    app_client: TestClient[Any, Any],
) -> None:
    client = app_client
    inbox(client).dispatcher = FaultyDispatcher(client.app[REDIS])
    assert await sms(client, CITIZEN, "HELP", msg_id="ATXid_help") != 200
    assert await sms(client, CITIZEN, "HELP", msg_id="ATXid_help") == 200
    await run_worker(client.app)
    replies = await OutboundMessage.filter(recipient=CITIZEN)
    assert [(m.template, m.status, m.attempts) for m in replies] == [("help_reply", "delivered", 1)]


async def test_an_sms_not_handled_is_answered_503_for_at_to_send_it_again(
    app_client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    inbox(app_client).dispatcher = FaultyDispatcher(app_client.app[REDIS])
    form = {"from": CITIZEN, "to": "51100", "text": "HELP", "id": "ATXid_503", "date": ""}
    resp = await app_client.post(signed(app_client, "/sms/africastalking/inbound"), data=form)
    assert (resp.status, resp.headers.get("Retry-After")) == (503, "5")
    assert "ATXid_503 not handled" in caplog.text and CITIZEN not in caplog.text
    record = await InboundMessage.get(provider_message_id="ATXid_503")
    assert record.handled_at is None and record.claimed_until is None  # free for the retry


async def test_a_retry_while_the_first_attempt_is_still_acting_is_sent_back_for_later(
    app_client: TestClient[Any, Any],
) -> None:
    client = app_client
    c = await register(client, CITIZEN, "2")
    lifecycle = faulty(client)
    lifecycle.gate = asyncio.Event()
    text = f"{c.ticket} DONE fixed"
    first = asyncio.create_task(sms(client, OFFICER_L1, text, msg_id="ATXid_slow"))
    await asyncio.wait_for(lifecycle.entered.wait(), 10)
    assert await sms(client, OFFICER_L1, text, msg_id="ATXid_slow") == 503
    lifecycle.gate.set()
    assert await first == 200
    assert await sms(client, OFFICER_L1, text, msg_id="ATXid_slow") == 200  # a duplicate now
    assert await events(c, "resolved") == 1
    assert (await templates_to(OFFICER_L1)).count("officer_action_done") == 1


@pytest.mark.parametrize("lapsed, status, replies", [(False, 503, 0), (True, 200, 1)])
async def test_a_claim_left_by_a_request_that_died_holds_until_it_lapses(
    app_client: TestClient[Any, Any], lapsed: bool, status: int, replies: int
) -> None:
    minute = timedelta(minutes=1)
    await InboundMessage.create(
        provider="africastalking",
        provider_message_id="ATXid_orphan",
        sender=CITIZEN,
        text="HELP",
        claimed_until=datetime.now(UTC) + (-minute if lapsed else minute),
    )
    assert await sms(app_client, CITIZEN, "HELP", msg_id="ATXid_orphan") == status
    assert await templates_to(CITIZEN) == ["help_reply"] * replies


MIGRATE_OVER_AN_OLD_MESSAGE = """
import asyncio, sqlite3, sys
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate
from gateway.storage.db import MIGRATIONS_TORTOISE_ORM

async def main(path):
    config = {**MIGRATIONS_TORTOISE_ORM, "connections": {"default": f"sqlite://{path}"}}
    await migrate(config=config, target="models.0011_citizen_and_message_lookups")
    await Tortoise.close_connections()
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO inbound_message (provider, provider_message_id, sender, text, "
            "received_at) VALUES ('africastalking', 'old', '+919800000001', 'HELP', "
            "'2026-11-01 10:00:00+00:00')"
        )
    await migrate(config=config)
    await Tortoise.close_connections()
    with sqlite3.connect(path) as db:
        print(db.execute("SELECT handled_at, claimed_until FROM inbound_message").fetchall())

asyncio.run(main(sys.argv[1]))
"""


def test_messages_received_before_the_migration_stay_handled(tmp_path: Path) -> None:
    # Handled when they came: a late retry of one must remain a duplicate, not act again.
    done = subprocess.run(
        [sys.executable, "-c", MIGRATE_OVER_AN_OLD_MESSAGE, str(tmp_path / "old.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[('2026-11-01 10:00:00+00:00', None)]"


@pytest.mark.parametrize("command", ["DONE", "NOTE", "DONE  :  ", "निपटा -"])
async def test_done_or_note_with_nothing_said_is_not_recorded_and_tells_the_citizen_nothing(
    app_client: TestClient[Any, Any], command: str
) -> None:
    """The citizen's SMS carries the officer's remark ("resolved: <remark>"): without one
    it would read "resolved: .". The officer is answered as for a command not understood."""
    client = app_client
    c = await register(client, CITIZEN, "2")
    before = await templates_to(CITIZEN)
    officer_before = await templates_to(OFFICER_L1)
    assert await sms(client, OFFICER_L1, f"{c.ticket} {command}") == 200
    await c.refresh_from_db()
    assert c.status.value == "assigned"
    assert await events(c, "resolved") == 0 and await events(c, "note") == 0
    assert await templates_to(CITIZEN) == before
    assert await templates_to(OFFICER_L1) == [*officer_before, "not_understood"]
    assert await sms(client, OFFICER_L1, f"{c.ticket} {command} pipe repaired") == 200
    assert (await templates_to(CITIZEN))[len(before) :] in (
        ["complaint_resolved"],
        ["complaint_status_update"],
    )

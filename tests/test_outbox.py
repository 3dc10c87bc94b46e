"""The outbox and the worker's send_sms job, against the fake Africa's Talking API on
loopback and against the simulator provider: retries with backoff, permanent failures,
giving up (and the one later try of an essential message), one SMS per message however
often its job runs, and stranded messages.

The worker is the real one (``build_worker`` in burst mode); :func:`run_due_jobs` stops it
once nothing is due within seconds, since a second chance is deferred by half an hour.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient
from arq.jobs import Job, JobStatus
from tortoise.transactions import in_transaction

from gateway.app import COMPLAINTS, REDIS, TEMPLATES, create_app, worker_context
from gateway.channels.base import DeliveryReport, DeliveryState
from gateway.channels.simulator.provider import FAILING_NUMBERS
from gateway.complaints.registration import ACKNOWLEDGEMENT, NewComplaint
from gateway.config import Config
from gateway.jobs.dispatch import QUEUE, ArqDispatcher, send_sms_job_id
from gateway.jobs.tasks import resend_unanswered
from gateway.sms.delivery import claim_messages
from gateway.sms.outbox import MessageDraft, Outbox, TransientSendFailure, queue_messages
from gateway.sms.reports import record_delivery_report
from gateway.sms.retry import backoff
from gateway.sms.sweep import STUCK_AFTER
from gateway.sms.templates import RenderedSms
from gateway.sms.unanswered import record_unanswered
from gateway.storage.models import Channel, Citizen, ComplaintEvent, OutboundMessage
from tests.conftest import AT_API_KEY, AT_USERNAME, AppFactory, make_config, run_worker, signed
from tests.fakes.africastalking import FakeAfricasTalking, Fault

CITIZEN = "+919812345678"
OFFICER = "+919800100001"  # config.yaml: Junior Engineer, Jal Shakti, Theog
OFFICER_NOTICE = "officer_new_complaint"
MAX_TRIES = 3
RETRY_BASE = 0.1
RETRY_MAX = 0.15
FAST_RETRIES = {
    "max_tries": MAX_TRIES,
    "retry_base_seconds": RETRY_BASE,
    "retry_max_seconds": RETRY_MAX,
}


def at_config(
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
    *,
    api_key: str = AT_API_KEY,
    **overrides: Any,
) -> Config:
    assert fake.base_url is not None
    return make_config(
        tmp_path,
        database_url,
        redis_url,
        environ={
            "SMS_PROVIDER": "africastalking",
            "AT_USERNAME": AT_USERNAME,
            "AT_API_KEY": api_key,
            "AT_BASE_URL": fake.base_url,
        },
        worker={**FAST_RETRIES, **overrides.pop("worker", {})},
        **overrides,
    )


@pytest.fixture
async def at_client(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> TestClient[Any, Any]:
    return await start_app(at_config(tmp_path, database_url, redis_url, fake))


@pytest.fixture
async def sim_client(
    start_app: AppFactory, tmp_path: Path, database_url: str, redis_url: str
) -> TestClient[Any, Any]:
    return await start_app(make_config(tmp_path, database_url, redis_url, worker=FAST_RETRIES))


async def register(client: TestClient[Any, Any], phone: str = CITIZEN) -> OutboundMessage:
    """Register a complaint as the USSD menu does (writing and dispatching the citizen's
    acknowledgement and the officer's notice); returns the acknowledgement's row."""
    registration = await client.app[COMPLAINTS].register(
        NewComplaint(
            phone=phone,
            language="en_IN",
            department="jal_shakti",
            district="shimla",
            block="theog",
            issue_type="no_water_supply",
            channel=Channel.USSD,
            source_key=f"test:{uuid.uuid4().hex}",
        )
    )
    return await OutboundMessage.get(
        complaint_id=registration.complaint_id, template=ACKNOWLEDGEMENT
    )


async def officer_notice(ack: OutboundMessage) -> OutboundMessage:
    return await OutboundMessage.get(
        complaint_id=ack.complaint_id,  # type: ignore[attr-defined]
        template=OFFICER_NOTICE,
    )


def outbox_of(client: TestClient[Any, Any]) -> Outbox:
    """The outbox the worker's jobs use (the app's provider and HTTP client)."""
    return cast(Outbox, worker_context(client.app)["outbox"])


def requests_to(fake: FakeAfricasTalking, number: str) -> int:
    return sum(1 for r in fake.requests if r.form.get("to") == number)


async def second_chance_job(client: TestClient[Any, Any], ack: OutboundMessage) -> Job:
    return Job(f"sms:{ack.id}:second", client.app[REDIS], _queue_name=QUEUE)


async def half_an_hour_passes(client: TestClient[Any, Any]) -> None:
    """Make every deferred job due now (arq's queue is a sorted set scored by due time)."""
    redis = client.app[REDIS]
    now_ms = int(time.time() * 1000)
    for job_id in await redis.zrange(QUEUE, 0, -1):
        await redis.zadd(QUEUE, {job_id: now_ms})


# --------------------------------------------------------------------------- retries


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    delays = [backoff(n, base=5, maximum=30) for n in range(1, 6)]
    assert delays == [5.0, 10.0, 20.0, 30.0, 30.0]


async def test_transient_failures_are_retried_with_backoff_then_sent(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> None:
    # Delays well above the worker's 0.1 s poll, so that waiting for them shows.
    base, cap = 0.3, 0.4
    config = at_config(
        tmp_path,
        database_url,
        redis_url,
        fake,
        worker={"retry_base_seconds": base, "retry_max_seconds": cap},
    )
    at_client = await start_app(config)
    fake.fail_next(status=503, times=4)  # the first two tries of both messages
    ack = await register(at_client)
    started = time.monotonic()
    await run_worker(at_client.app)
    elapsed = time.monotonic() - started

    for msg in (ack, await officer_notice(ack)):
        await msg.refresh_from_db()
        assert msg.status == "sent"
        assert msg.attempts == 3
        assert msg.last_error is None
        assert msg.provider_message_id == fake.message_id_for(msg.recipient)
    assert requests_to(fake, CITIZEN) == 3 and requests_to(fake, OFFICER) == 3
    assert len(fake.sent) == 2
    # Waited backoff(1) = 0.3 s, then backoff(2) = 0.6 s capped to 0.4 s.
    assert elapsed >= base + cap


async def test_a_retrying_message_records_the_transient_error(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    """Between tries the row says why it is waiting."""
    fake.fail_next(status=503, times=1)
    ack = await register(at_client)
    with pytest.raises(TransientSendFailure, match="HTTP 503"):
        await outbox_of(at_client).deliver(ack.id, final_attempt=False)
    await ack.refresh_from_db()
    assert ack.status == "retrying" and "HTTP 503" in (ack.last_error or "")
    assert ack.attempts == 1


async def test_a_recipient_in_ats_blacklist_is_not_retried(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    fake.outcomes[CITIZEN] = 406
    fake.outcomes[OFFICER] = 406
    ack = await register(at_client)
    await run_worker(at_client.app)

    assert requests_to(fake, CITIZEN) == 1 and requests_to(fake, OFFICER) == 1
    assert fake.sent == []
    # The officer's notice: failed for good.
    officer = await officer_notice(ack)
    assert officer.status == "failed" and officer.attempts == 1
    assert officer.provider_status == "UserInBlacklist"
    assert officer.last_error == "UserInBlacklist (406)"
    # The citizen's acknowledgement is essential: no retry now, one more try in 30 minutes.
    await ack.refresh_from_db()
    assert ack.status == "retrying" and ack.second_chance and ack.attempts == 1
    assert ack.last_error == "UserInBlacklist (406)"
    assert await (await second_chance_job(at_client, ack)).status() == JobStatus.deferred
    assert (await Citizen.get(phone=CITIZEN)).opted_out, "406 marks the number opted out"
    # Also a number with no citizen record (the officer here; a campaign's CSV number).
    assert (await Citizen.get(phone=OFFICER)).opted_out


async def test_a_wrong_api_key_fails_without_retrying(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> None:
    wrong_key = "atsk_wrong_key_0000000000000000"
    client = await start_app(at_config(tmp_path, database_url, redis_url, fake, api_key=wrong_key))
    ack = await register(client)
    await run_worker(client.app)

    assert len(fake.requests) == 2 and fake.sent == []
    assert all(r.header("apiKey") == wrong_key for r in fake.requests)
    for msg in (ack, await officer_notice(ack)):
        await msg.refresh_from_db()
        assert msg.attempts == 1, "a refused API key is not retried"
        assert msg.last_error is not None and "HTTP 401" in msg.last_error
        assert wrong_key not in msg.last_error
    assert (await officer_notice(ack)).status == "failed"
    assert ack.status == "retrying" and ack.second_chance
    assert not (await Citizen.get(phone=CITIZEN)).opted_out


@pytest.mark.parametrize(
    "script, error",
    [
        (lambda fake: fake.fail_next(status=503, times=50), "HTTP 503"),
        (lambda fake: fake.outcomes.update({CITIZEN: 500, OFFICER: 500}), "(500)"),
    ],
    ids=["http-503", "recipient-status-500"],
)
async def test_transient_failures_beyond_max_tries_end_failed_with_the_last_error(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking, script: Any, error: str
) -> None:
    script(fake)
    ack = await register(at_client)
    await run_worker(at_client.app)

    assert len(fake.requests) == 2 * MAX_TRIES and fake.sent == []
    officer = await officer_notice(ack)
    assert officer.status == "failed" and officer.attempts == MAX_TRIES
    assert officer.last_error is not None and error in officer.last_error
    await ack.refresh_from_db()
    assert ack.status == "retrying" and ack.second_chance and ack.attempts == MAX_TRIES
    assert ack.last_error is not None and error in ack.last_error


async def test_the_second_chance_sends_the_acknowledgement_later(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    fake.fail_next(status=503, times=2 * MAX_TRIES)  # AT down for a while
    ack = await register(at_client)
    await run_worker(at_client.app)
    await ack.refresh_from_db()
    assert ack.status == "retrying" and ack.second_chance
    assert fake.sent == []

    await half_an_hour_passes(at_client)  # AT is back
    await run_worker(at_client.app)

    await ack.refresh_from_db()
    assert ack.status == "sent" and ack.attempts == MAX_TRIES + 1
    assert ack.provider_message_id == fake.message_id_for(CITIZEN)
    assert requests_to(fake, CITIZEN) == MAX_TRIES + 1
    assert (await officer_notice(ack)).status == "failed", (
        "an officer's notice has no second chance"
    )
    assert not await ComplaintEvent.filter(kind="message_failed").exists()


async def test_a_second_chance_that_fails_too_flags_the_complaint(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    fake.outcomes[CITIZEN] = 406
    ack = await register(at_client)
    await run_worker(at_client.app)
    await half_an_hour_passes(at_client)
    await run_worker(at_client.app)

    await ack.refresh_from_db()
    assert ack.status == "failed" and ack.attempts == 2
    assert requests_to(fake, CITIZEN) == 2
    flagged = await ComplaintEvent.filter(complaint_id=ack.complaint_id, kind="message_failed")  # type: ignore[attr-defined]
    assert len(flagged) == 1 and "UserInBlacklist" in (flagged[0].remark or "")

    # Nothing sends it a third time.
    await at_client.app[REDIS].enqueue_job("send_sms", ack.id, _queue_name=QUEUE)
    await run_worker(at_client.app)
    assert requests_to(fake, CITIZEN) == 2


# --------------------------------------------------------------------------- one SMS only


async def test_a_message_dispatched_twice_is_sent_once(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    ack = await register(at_client)  # dispatched once by the registration
    await ArqDispatcher(at_client.app[REDIS]).dispatch([ack.id, ack.id])
    await run_worker(at_client.app)

    await ack.refresh_from_db()
    assert ack.status == "sent" and ack.attempts == 1
    assert requests_to(fake, CITIZEN) == 1 and requests_to(fake, OFFICER) == 1

    # Dispatched again after it was sent: still one SMS.
    await ArqDispatcher(at_client.app[REDIS]).dispatch([ack.id])
    await run_worker(at_client.app)
    assert requests_to(fake, CITIZEN) == 1


async def test_a_send_job_run_again_after_the_message_was_sent_sends_nothing(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    ack = await register(at_client)
    await run_worker(at_client.app)
    assert requests_to(fake, CITIZEN) == 1

    # A second job for the same message, under another job id (arq's uniqueness not in play).
    job = await at_client.app[REDIS].enqueue_job("send_sms", ack.id, _queue_name=QUEUE)
    assert job is not None
    await run_worker(at_client.app)
    assert await job.result(timeout=5) == "sent"

    await ack.refresh_from_db()
    assert ack.status == "sent" and ack.attempts == 1
    assert requests_to(fake, CITIZEN) == 1


async def test_outbox_deliver_twice_sends_once(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    ack = await register(at_client)
    outbox = outbox_of(at_client)
    first = await outbox.deliver(ack.id, final_attempt=False)
    second = await outbox.deliver(ack.id, final_attempt=False)
    assert first.status == "sent"
    assert (second.status, second.detail) == ("sent", "already handled")
    assert len(fake.requests) == 1
    await ack.refresh_from_db()
    assert ack.attempts == 1


async def test_two_deliveries_at_the_same_moment_send_once(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    ack = await register(at_client)
    outbox = outbox_of(at_client)
    fake.delay = 0.3  # the first send is still in flight when the second starts
    results = await asyncio.gather(
        outbox.deliver(ack.id, final_attempt=False), outbox.deliver(ack.id, final_attempt=False)
    )
    assert sorted(r.detail for r in results) == ["Success", "already handled"]
    assert requests_to(fake, ack.recipient) == 1


async def test_a_failed_message_is_not_sent_again_by_a_later_job(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    fake.outcomes[OFFICER] = 406
    officer = await officer_notice(await register(at_client))
    await run_worker(at_client.app)
    await officer.refresh_from_db()
    assert officer.status == "failed"

    del fake.outcomes[OFFICER]
    await at_client.app[REDIS].enqueue_job("send_sms", officer.id, _queue_name=QUEUE)
    await run_worker(at_client.app)
    await officer.refresh_from_db()
    assert officer.status == "failed" and officer.attempts == 1
    assert requests_to(fake, OFFICER) == 1


# --------------------------------------------------------------------------- stranded


def acknowledgement(client: TestClient[Any, Any]) -> RenderedSms:
    """Ticket 123456782's acknowledgement, in English."""
    return client.app[TEMPLATES][ACKNOWLEDGEMENT].render(
        "en_IN",
        {
            "ticket": "123456782",
            "department": "Jal Shakti",
            "due_date": "30 Nov 2026",
            "service_code": "*1100#",
        },
        fallback="hi",
    )


def draft(client: TestClient[Any, Any], key: str) -> MessageDraft:
    """The acknowledgement to :data:`CITIZEN` with idempotency key ``key``."""
    return MessageDraft(
        sms=acknowledgement(client),
        recipient=CITIZEN,
        provider="africastalking",
        idempotency_key=key,
    )


async def write_without_dispatch(client: TestClient[Any, Any], key: str) -> OutboundMessage:
    """Write a message as a transaction does, and stop before handing it to the worker."""
    async with in_transaction() as conn:
        [message_id] = await queue_messages([draft(client, key)], using_db=conn)
    return await OutboundMessage.get(id=message_id)


async def test_a_message_never_dispatched_is_requeued_and_sent(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    stranded = await write_without_dispatch(at_client, "test:stranded")
    fresh = await write_without_dispatch(at_client, "test:fresh")
    await OutboundMessage.filter(id=stranded.id).update(
        created_at=datetime.now(UTC) - timedelta(minutes=5)
    )

    await run_worker(at_client.app)  # its requeue_stranded job runs at start-up

    await stranded.refresh_from_db()
    assert stranded.status == "sent" and stranded.attempts == 1
    assert len(fake.requests) == 1 and "123456782" in fake.requests[0].form["message"]
    await fresh.refresh_from_db()
    assert fresh.status == "queued", "a just-written message is its writer's to dispatch"


async def test_a_message_whose_job_id_another_database_used_is_sent_once_stuck(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    """A Redis that outlived its database (restored, or var/gateway.db deleted) keeps the
    result of a job ``sms:<id>`` for a message of the old database with the same ID: arq
    refuses that job ID for the new message, and so does each sweep. Past STUCK_AFTER the
    sweep queues it under a job ID of its own; the row still lets it be sent once."""
    msg = await write_without_dispatch(at_client, "test:reused-id")
    redis = at_client.app[REDIS]
    await redis.set(f"arq:result:{send_sms_job_id(msg.id)}", b"old database", ex=3600)
    await ArqDispatcher(redis).dispatch([msg.id])  # refused: the ID is taken
    await OutboundMessage.filter(id=msg.id).update(
        created_at=datetime.now(UTC) - timedelta(minutes=5)
    )
    await run_worker(at_client.app)  # the sweep at start-up: stranded, but its ID still taken
    await msg.refresh_from_db()
    assert msg.status == "queued" and fake.requests == []

    await OutboundMessage.filter(id=msg.id).update(
        created_at=datetime.now(UTC) - STUCK_AFTER - timedelta(minutes=1)
    )
    await run_worker(at_client.app)
    await run_worker(at_client.app)  # a second sweep adds a job: the row sends it once
    await msg.refresh_from_db()
    assert msg.status == "sent" and msg.attempts == 1
    assert len(fake.requests) == 1


async def test_a_message_is_written_once_for_its_key(at_client: TestClient[Any, Any]) -> None:
    first = await write_without_dispatch(at_client, "test:same-key")
    again = await write_without_dispatch(at_client, "test:same-key")
    assert again.id == first.id
    assert await OutboundMessage.all().count() == 1


async def test_a_batch_writes_each_key_once_and_rows_alike(
    at_client: TestClient[Any, Any],
) -> None:
    first = await write_without_dispatch(at_client, "test:same-key")
    async with in_transaction() as conn:
        ids = await queue_messages(
            [draft(at_client, k) for k in ("test:same-key", "test:new", "test:new")],
            using_db=conn,
        )
    assert ids[0] == first.id, "a key written already: that message, no second one"
    assert ids[1] == ids[2] != first.id
    assert await OutboundMessage.all().count() == 2
    new = await OutboundMessage.get(id=ids[1])
    same = ("id", "idempotency_key", "created_at", "updated_at")
    assert {k: v for k, v in dict(new).items() if k not in same} == {
        k: v for k, v in dict(first).items() if k not in same
    }
    assert new.created_at is not None and new.updated_at is not None


# --------------------------------------------------------------------------- simulator


async def test_simulator_delivers_normal_numbers_and_lists_them(
    sim_client: TestClient[Any, Any],
) -> None:
    ack = await register(sim_client)
    other = await register(sim_client, "+919800000031")
    await run_worker(sim_client.app)

    await ack.refresh_from_db()
    assert ack.status == "delivered" and ack.provider == "simulator"
    assert ack.attempts == 1 and ack.delivered_at is not None

    resp = await sim_client.get("/simulator/sms", params={"to": CITIZEN})
    assert resp.status == 200
    listed = (await resp.json())["messages"]
    assert [(m["id"], m["to"], m["text"]) for m in listed] == [
        (ack.provider_message_id, CITIZEN, ack.text)
    ]
    # Any spelling of the number finds the same messages; another citizen's are not shown.
    resp = await sim_client.get("/simulator/sms", params={"to": "09812345678"})
    assert [m["id"] for m in (await resp.json())["messages"]] == [ack.provider_message_id]
    await other.refresh_from_db()
    assert other.status == "delivered"
    assert other.text not in await resp.text()
    # The officer got one notice per complaint.
    resp = await sim_client.get("/simulator/sms", params={"to": OFFICER})
    assert len((await resp.json())["messages"]) == 2

    resp = await sim_client.get("/simulator/sms", params={"to": "hello"})
    assert resp.status == 400


async def test_simulator_blacklisted_number_is_not_retried(
    sim_client: TestClient[Any, Any],
) -> None:
    number = "+919999999406"
    assert FAILING_NUMBERS[number][1] == "UserInBlacklist"
    ack = await register(sim_client, number)
    await run_worker(sim_client.app)

    await ack.refresh_from_db()
    assert ack.attempts == 1 and ack.last_error == "UserInBlacklist (406)"
    assert ack.status == "retrying" and ack.second_chance, "one more try, half an hour later"
    assert (await Citizen.get(phone=number)).opted_out
    resp = await sim_client.get("/simulator/sms", params={"to": number})
    assert (await resp.json())["messages"] == []


async def test_simulator_failing_number_is_retried_until_max_tries(
    sim_client: TestClient[Any, Any],
) -> None:
    number = "+919999999500"
    assert FAILING_NUMBERS[number][1] == "InternalServerError"
    ack = await register(sim_client, number)
    await run_worker(sim_client.app)

    await ack.refresh_from_db()
    assert ack.attempts == MAX_TRIES and ack.last_error == "InternalServerError (500)"
    assert ack.status == "retrying" and ack.second_chance
    await half_an_hour_passes(sim_client)
    await run_worker(sim_client.app)
    await ack.refresh_from_db()
    assert ack.status == "failed" and ack.attempts == 2 * MAX_TRIES
    assert ack.last_error == "InternalServerError (500)"
    resp = await sim_client.get("/simulator/sms", params={"to": number})
    assert (await resp.json())["messages"] == []


async def test_simulator_listing_is_absent_with_africastalking(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    ack = await register(at_client)
    await run_worker(at_client.app)
    await ack.refresh_from_db()
    assert ack.status == "sent"

    resp = await at_client.get("/simulator/sms", params={"to": CITIZEN})
    assert resp.status == 404
    assert ack.text not in await resp.text()


async def test_a_gateway_stopped_mid_send_records_every_sms_it_sent(
    caplog: pytest.LogCaptureFixture,
    start_app: AppFactory,
    aiohttp_client: Any,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> None:
    """Stopping the gateway (a deploy, Ctrl-C) while its worker waits on the provider: the
    sends under way finish and are recorded, in the database (none left "sending" to be
    sent again) and in Redis (their jobs done, not left to run again). The campaign
    worker, stopped first, must not cut the connections the other's jobs still use."""
    config = at_config(tmp_path, database_url, redis_url, fake)
    first = await start_app(config)  # empties the tables and Redis
    for i in range(4):
        await register(first, phone=f"+91981234560{i}")
    await first.close()
    fake.delay = 0.5
    gateway = await aiohttp_client(create_app(config, with_worker=True))
    deadline = time.monotonic() + 10
    while not fake.requests:
        assert time.monotonic() < deadline, "the worker sent nothing"
        await asyncio.sleep(0.01)
    caplog.clear()
    await gateway.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []

    reader = await aiohttp_client(create_app(config))
    rows = await OutboundMessage.all().values_list("id", "recipient", "status")
    assert len(rows) == 8 and {status for *_, status in rows} <= {"sent", "queued"}, rows
    # Every request that reached the provider is a message recorded sent (the officer's
    # number gets four, so count per number).
    requested = Counter(r.form["to"] for r in fake.requests)
    assert requested == Counter(number for _, number, status in rows if status == "sent")
    queued = {job.decode() for job in await reader.app[REDIS].zrange(QUEUE, 0, -1)}
    for message_id, _, status in rows:
        assert (send_sms_job_id(message_id) in queued) == (status == "queued"), message_id
    await reader.close()


# --------------------------------------------------------------------------- answer lost

DELIVERY_PATH = "/sms/africastalking/delivery"
WAIT = timedelta(minutes=30)  # worker.unknown_answer_retry_minutes, the shipped default


@pytest.fixture
async def lossy_client(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> TestClient[Any, Any]:
    """The app on the fake AT with a client timeout short of the fake's slow answers."""
    fake.slow_seconds = 2.0
    config = at_config(
        tmp_path, database_url, redis_url, fake, sms={"africastalking": {"timeout_seconds": 0.2}}
    )
    assert config.worker.unknown_answer_retry_minutes * 60 == WAIT.total_seconds()
    return await start_app(config)


async def resend_unanswered_at(client: TestClient[Any, Any], now: datetime) -> int:
    """The worker's cron job, run as if at ``now``."""
    return await resend_unanswered(worker_context(client.app), now=now)


async def report(
    client: TestClient[Any, Any], fake: FakeAfricasTalking, message_id: str, status: str, phone: str
) -> None:
    """AT's delivery report for ``message_id`` to ``phone``, through the callback route."""
    url = str(client.make_url(signed(client, DELIVERY_PATH)))
    assert await fake.send_delivery_report(url, message_id, status, phone=phone) == (200, "OK")


@pytest.mark.parametrize("fault", list(Fault))
async def test_a_message_at_took_whose_answer_was_lost_is_not_sent_again(
    lossy_client: TestClient[Any, Any], fake: FakeAfricasTalking, fault: Fault
) -> None:
    """A timeout or a reset after the request was written, or a 2xx that cannot be read:
    AT may have the message, and with no idempotency key a retry would send it twice."""
    fake.faults[CITIZEN] = fault
    started = datetime.now(UTC)
    ack = await register(lossy_client)
    await run_worker(lossy_client.app)
    await run_worker(lossy_client.app)

    assert fake.received(CITIZEN) == 1
    assert [m.number for m in fake.sent].count(CITIZEN) == 1, "AT took it"
    await ack.refresh_from_db()
    assert ack.status == "unknown" and ack.attempts == 1 and ack.lost_answers == 1
    assert ack.sent_at is not None and started <= ack.sent_at <= datetime.now(UTC)
    assert ack.provider_message_id is None
    assert (ack.last_error or "").startswith("answer lost: ")
    assert not ack.second_chance
    officer = await officer_notice(ack)
    assert officer.status == "sent" and fake.received(OFFICER) == 1


async def test_a_refused_connection_sent_nothing_and_is_retried(
    lossy_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    """Refused before the request was written: nothing reached AT, a retry is safe."""
    assert fake.base_url is not None
    port = int(fake.base_url.rsplit(":", 1)[1])
    ack = await register(lossy_client)
    await fake.close()
    with pytest.raises(TransientSendFailure, match="unreachable"):
        await outbox_of(lossy_client).deliver(ack.id, final_attempt=False)
    await ack.refresh_from_db()
    assert ack.status == "retrying" and ack.lost_answers == 0

    await fake.start(port=port)
    await run_worker(lossy_client.app)
    await ack.refresh_from_db()
    assert ack.status == "sent" and ack.attempts == 2 and ack.lost_answers == 0
    assert fake.received(CITIZEN) == 1


async def test_a_delivery_report_settles_a_message_whose_answer_was_lost(
    lossy_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    """AT's report carries its message ID, which the lost answer held: the report is
    matched by number to the message whose answer was lost, which is then not re-sent."""
    fake.faults[CITIZEN] = Fault.RESET
    ack = await register(lossy_client)
    await run_worker(lossy_client.app)
    at_id = fake.message_id_for(CITIZEN)

    await report(lossy_client, fake, at_id, "Submitted", CITIZEN)
    await ack.refresh_from_db()
    assert (ack.status, ack.provider_message_id) == ("sent", at_id)
    await report(lossy_client, fake, at_id, "Success", CITIZEN)
    await ack.refresh_from_db()
    assert ack.status == "delivered" and ack.delivered_at is not None

    del fake.faults[CITIZEN]
    assert await resend_unanswered_at(lossy_client, datetime.now(UTC) + 2 * WAIT) == 0
    await run_worker(lossy_client.app)
    assert fake.received(CITIZEN) == 1


async def test_a_report_that_comes_before_its_send_gave_up_on_the_answer_is_taken_later(
    lossy_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    """AT may deliver a message, and report it, while the gateway still waits for the
    answer of the request that sent it (a slow answer: the report comes before the
    timeout). Its ID is none of ours yet: the callback answers 503, and AT's report sent
    again settles the message once its answer is lost. Taken and dropped at once, the
    report was gone, and the message sent a second time after the wait."""
    ack = await register(lossy_client)
    [claimed] = await claim_messages([ack.id])  # a worker's send, waiting for its answer
    assert claimed is not None
    url = str(lossy_client.make_url(signed(lossy_client, DELIVERY_PATH)))
    status, body = await fake.send_delivery_report(url, "ATXid_early", "Success", phone=CITIZEN)
    assert status == 503, body
    # Another number's report, or one with an ID of ours, is taken as ever.
    status, _ = await fake.send_delivery_report(url, "ATXid_other", "Success", phone=OFFICER)
    assert status == 200
    await ack.refresh_from_db()
    assert ack.status == "sending" and ack.provider_message_id is None

    async with in_transaction() as conn:  # the send's answer is lost (its timeout)
        await record_unanswered(conn, [ack.id], how="timeout", at=datetime.now(UTC))
    await report(lossy_client, fake, "ATXid_early", "Success", CITIZEN)  # AT's retry
    await ack.refresh_from_db()
    assert (ack.status, ack.provider_message_id) == ("delivered", "ATXid_early")
    assert await resend_unanswered_at(lossy_client, datetime.now(UTC) + 2 * WAIT) == 0


async def test_two_lost_answers_to_one_number_are_settled_in_order(
    lossy_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    """Two messages to one number, both answers lost: a report goes to the older one,
    later reports with its ID follow it there, and another ID goes to the newer one."""
    fake.faults[OFFICER] = Fault.GARBAGE
    first = await officer_notice(await register(lossy_client, "+919812345601"))
    await run_worker(lossy_client.app)
    second = await officer_notice(await register(lossy_client, "+919812345602"))
    await run_worker(lossy_client.app)
    first_id, second_id = (m.message_id for m in fake.sent if m.number == OFFICER)

    await report(lossy_client, fake, first_id, "Sent", OFFICER)
    await report(lossy_client, fake, first_id, "Success", OFFICER)
    await first.refresh_from_db()
    await second.refresh_from_db()
    assert (first.status, first.provider_message_id) == ("delivered", first_id)
    assert second.status == "unknown" and second.provider_message_id is None

    await report(lossy_client, fake, second_id, "Failed", OFFICER)
    await second.refresh_from_db()
    assert (second.status, second.provider_message_id) == ("failed", second_id)
    assert fake.received(OFFICER) == 2


async def test_a_lost_answer_with_no_report_is_sent_once_more_after_the_wait(
    lossy_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    """The one place a message may reach a phone twice: no report came in the wait."""
    fake.faults[CITIZEN] = Fault.SLOW
    ack = await register(lossy_client)
    await run_worker(lossy_client.app)
    await ack.refresh_from_db()
    assert ack.status == "unknown" and ack.sent_at is not None
    lost_at = ack.sent_at

    assert await resend_unanswered_at(lossy_client, lost_at + WAIT - timedelta(minutes=1)) == 0
    # A report after the wait is not matched by number (the message may be sent again).
    late = DeliveryReport(
        "ATXid_late", DeliveryState.DELIVERED, "Success", phone=CITIZEN, provider="africastalking"
    )
    after_the_wait = lost_at + WAIT + timedelta(seconds=1)
    assert not await record_delivery_report(late, answer_window=WAIT, now=after_the_wait)
    del fake.faults[CITIZEN]
    assert await resend_unanswered_at(lossy_client, after_the_wait) == 1
    assert await resend_unanswered_at(lossy_client, after_the_wait + WAIT) == 0, "only once"
    await run_worker(lossy_client.app)

    await ack.refresh_from_db()
    assert ack.status == "sent" and ack.attempts == 2 and ack.last_error is None
    assert ack.provider_message_id == fake.message_id_for(CITIZEN)
    assert fake.received(CITIZEN) == 2


async def test_a_message_is_sent_once_more_only_once(
    lossy_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    """Its one more try's answer lost too: it stays unknown, never sent a third time."""
    fake.faults[CITIZEN] = Fault.RESET
    ack = await register(lossy_client)
    await run_worker(lossy_client.app)
    later = datetime.now(UTC) + WAIT + timedelta(minutes=1)
    assert await resend_unanswered_at(lossy_client, later) == 1
    await run_worker(lossy_client.app)
    await ack.refresh_from_db()
    assert ack.status == "unknown" and ack.lost_answers == 2 and ack.attempts == 2

    assert await resend_unanswered_at(lossy_client, later + 10 * WAIT) == 0
    await run_worker(lossy_client.app)
    assert fake.received(CITIZEN) == 2

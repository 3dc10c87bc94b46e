"""End to end on Africa's Talking: a citizen registers over USSD, the worker sends the
acknowledgement (and the officer's notice) through the fake AT SMS API on loopback, and AT's
delivery reports come back to our callback."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from arq.jobs import Job, JobStatus

from gateway.app import REDIS
from gateway.config import Config
from gateway.jobs.dispatch import QUEUE
from gateway.storage.models import Citizen, ComplaintEvent, OutboundMessage
from tests.conftest import (
    AT_API_KEY,
    AT_USERNAME,
    AppFactory,
    Phone,
    make_config,
    run_worker,
    signed,
)
from tests.fakes.africastalking import FakeAfricasTalking, RecordedRequest

SENDER_ID = "HPSEVA"
OFFICER = "+919800100001"  # config.yaml: Junior Engineer, Jal Shakti, Theog
ACK, OFFICER_NOTICE = "complaint_registered", "officer_new_complaint"
ENGLISH, HINDI = "2", "1"
TICKET_ON_END_SCREEN = {
    ENGLISH: re.compile(r"Ticket: (\d+)\."),
    HINDI: re.compile(r"शिकायत सं\.: (\d+)"),
}
DELIVERY_PATH = "/sms/africastalking/delivery"


@pytest.fixture
def at_config(
    tmp_path: Path, database_url: str, redis_url: str, fake: FakeAfricasTalking
) -> Config:
    assert fake.base_url is not None
    return make_config(
        tmp_path,
        database_url,
        redis_url,
        environ={
            "SMS_PROVIDER": "africastalking",
            "AT_USERNAME": AT_USERNAME,
            "AT_API_KEY": AT_API_KEY,
            "AT_SENDER_ID": SENDER_ID,
            "AT_BASE_URL": fake.base_url,
        },
    )


async def register(
    client: TestClient[Any, Any], number: str, language: str, *, send_twice: bool = False
) -> str:
    """Register Jal Shakti / Shimla / Theog / no water supply; the ticket on the END screen."""
    phone = Phone(client, number=number, send_twice=send_twice)
    await phone.dial()
    await phone.send(language)
    confirm = await phone.walk("1", "2", "9", "2", "1")
    assert ("No water supply" if language == ENGLISH else "पानी नहीं आ रहा") in confirm
    done = await phone.send("1")
    assert phone.ended, done
    found = TICKET_ON_END_SCREEN[language].search(done)
    assert found, done
    return found.group(1)


def requests_to(fake: FakeAfricasTalking, number: str) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.form.get("to") == number]


async def test_registrations_in_english_and_hindi_send_one_sms_each_through_at(
    start_app: AppFactory, at_config: Config, fake: FakeAfricasTalking
) -> None:
    client = await start_app(at_config)
    english_number, hindi_number = "+919812345678", "+919800000011"
    tickets = {
        english_number: await register(client, english_number, ENGLISH, send_twice=True),
        hindi_number: await register(client, hindi_number, HINDI, send_twice=True),
    }
    assert fake.requests == [], "nothing is sent before the worker runs"

    await run_worker(client.app)

    # One acknowledgement per complaint to its citizen, one notice per complaint to the officer.
    assert len(fake.requests) == 4 and len(fake.sent) == 4
    for number, ticket in tickets.items():
        [req] = requests_to(fake, number)
        assert (req.method, req.path) == ("POST", "/version1/messaging")
        assert req.header("apiKey") == AT_API_KEY
        assert req.header("Accept") == "application/json"
        assert req.form["username"] == AT_USERNAME
        assert req.form["to"] == number
        assert req.form["from"] == SENDER_ID
        assert ticket in req.form["message"]

        msg = await OutboundMessage.get(recipient=number)
        assert msg.template == ACK
        assert req.form["message"] == msg.text
        assert msg.status == "sent"
        assert msg.provider == "africastalking"
        assert msg.provider_message_id == fake.message_id_for(number)
        assert msg.attempts == 1 and msg.last_error is None and msg.sent_at is not None
    assert "जल शक्ति" in requests_to(fake, hindi_number)[0].form["message"]
    assert "Jal Shakti" in requests_to(fake, english_number)[0].form["message"]

    officer = requests_to(fake, OFFICER)
    assert sorted(t for t in tickets.values() if any(t in r.form["message"] for r in officer)) == (
        sorted(tickets.values())
    ), "the officer is told each ticket"
    assert await OutboundMessage.filter(template=ACK).count() == 2
    assert await OutboundMessage.filter(template=OFFICER_NOTICE, status="sent").count() == 2

    # A second worker run finds nothing more to send.
    await run_worker(client.app)
    assert len(fake.requests) == 4


async def test_delivery_reports_from_at_update_the_messages(
    start_app: AppFactory, at_config: Config, fake: FakeAfricasTalking
) -> None:
    client = await start_app(at_config)
    number = "+919800000021"
    await register(client, number, ENGLISH)
    await run_worker(client.app)
    url = str(client.make_url(signed(client, DELIVERY_PATH)))
    ack = await OutboundMessage.get(template=ACK)
    notice = await OutboundMessage.get(template=OFFICER_NOTICE)

    ack_id = fake.message_id_for(number)
    assert await fake.send_delivery_report(url, ack_id, "Success", phone=number) == (200, "OK")
    await ack.refresh_from_db()
    assert ack.status == "delivered" and ack.provider_status == "Success"
    assert ack.delivered_at is not None

    notice_id = fake.message_id_for(OFFICER)
    status, _ = await fake.send_delivery_report(
        url, notice_id, "Failed", "UserInBlackList", phone=OFFICER
    )
    assert status == 200
    await notice.refresh_from_db()
    assert notice.status == "failed" and notice.provider_status == "Failed"
    assert notice.last_error == "UserInBlackList"
    assert notice.delivered_at is None

    # A late in-flight report, or a contradicting one, does not undo delivered.
    for late in ("Sent", "Failed"):
        assert (await fake.send_delivery_report(url, ack_id, late, phone=number))[0] == 200
        await ack.refresh_from_db()
        assert ack.status == "delivered" and ack.provider_status == "Success"
    assert not await ComplaintEvent.filter(kind="message_failed").exists()

    # A report for a message we never sent is acknowledged, so AT does not retry it.
    status, body = await fake.send_delivery_report(url, "ATXid_unknown_0000", "Success")
    assert (status, body) == (200, "OK")
    assert await OutboundMessage.filter(status="delivered").count() == 1

    # A status AT does not have is refused, naming the field, and changes nothing.
    status, body = await fake.send_delivery_report(url, notice_id, "Teleported")
    assert status == 400 and "status" in body
    await notice.refresh_from_db()
    assert notice.status == "failed"
    assert len(fake.requests) == 2


async def test_a_failed_report_for_the_acknowledgement_gives_it_a_second_chance(
    start_app: AppFactory, at_config: Config, fake: FakeAfricasTalking
) -> None:
    client = await start_app(at_config)
    number = "+919800000022"
    await register(client, number, HINDI)
    await run_worker(client.app)
    url = str(client.make_url(signed(client, DELIVERY_PATH)))
    ack = await OutboundMessage.get(template=ACK)

    status, _ = await fake.send_delivery_report(
        url, fake.message_id_for(number), "Failed", "UserInBlackList", phone=number
    )
    assert status == 200
    await ack.refresh_from_db()
    assert ack.last_error == "UserInBlackList" and ack.provider_status == "Failed"
    assert ack.status == "retrying" and ack.second_chance, "tried once more, later"
    job = Job(f"sms:{ack.id}:second", client.app[REDIS], _queue_name=QUEUE)
    assert await job.status() == JobStatus.deferred
    assert (await Citizen.get(phone=number)).opted_out
    assert not await ComplaintEvent.filter(kind="message_failed").exists()


async def test_a_repeated_failure_report_keeps_the_second_chance(
    start_app: AppFactory, at_config: Config, fake: FakeAfricasTalking
) -> None:
    """AT may send the same failure report again: the second chance stays scheduled."""
    client = await start_app(at_config)
    number = "+919800000025"
    await register(client, number, ENGLISH)
    await run_worker(client.app)
    url = str(client.make_url(signed(client, DELIVERY_PATH)))
    message_id = fake.message_id_for(number)

    for retry_count in (0, 1):  # AT sends the same report again
        status, _ = await fake.send_delivery_report(
            url, message_id, "Failed", "AbsentSubscriber", phone=number, retry_count=retry_count
        )
        assert status == 200
    ack = await OutboundMessage.get(template=ACK)
    assert not await ComplaintEvent.filter(kind="message_failed").exists()
    assert ack.status == "retrying" and ack.second_chance
    job = Job(f"sms:{ack.id}:second", client.app[REDIS], _queue_name=QUEUE)
    assert await job.status() == JobStatus.deferred

    # Half an hour later (the deferred job made due now) the second try is sent.
    await client.app[REDIS].zadd(QUEUE, {job.job_id: int(time.time() * 1000)})
    await run_worker(client.app)
    await ack.refresh_from_db()
    assert ack.status == "sent" and ack.attempts == 2
    assert len(requests_to(fake, number)) == 2


async def test_in_flight_report_before_the_final_one_keeps_the_message_sent(
    start_app: AppFactory, at_config: Config, fake: FakeAfricasTalking
) -> None:
    client = await start_app(at_config)
    number = "+919800000023"
    await register(client, number, ENGLISH)
    await run_worker(client.app)
    url = str(client.make_url(signed(client, DELIVERY_PATH)))
    message_id = fake.message_id_for(number)

    assert (await fake.send_delivery_report(url, message_id, "Buffered", phone=number))[0] == 200
    msg = await OutboundMessage.get(recipient=number)
    assert msg.status == "sent" and msg.provider_status == "Buffered"
    assert (await fake.send_delivery_report(url, message_id, "Success", phone=number))[0] == 200
    await msg.refresh_from_db()
    assert msg.status == "delivered"


async def test_embedded_worker_sends_the_acknowledgement_seconds_later(
    start_app: AppFactory, at_config: Config, fake: FakeAfricasTalking
) -> None:
    """No test worker here: the worker running inside the app sends it through the arq queue."""
    client = await start_app(at_config, with_worker=True)
    number = "+919800000024"
    ticket = await register(client, number, ENGLISH)

    deadline = time.monotonic() + 5
    msg = await OutboundMessage.get(recipient=number)
    while time.monotonic() < deadline:
        await msg.refresh_from_db()
        if msg.status == "sent":
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail(f"no SMS within 5 s: message is {msg.status}, fake saw {len(fake.requests)}")

    [req] = requests_to(fake, number)
    assert ticket in req.form["message"]
    assert req.header("apiKey") == AT_API_KEY and req.form["from"] == SENDER_ID
    assert msg.provider_message_id == fake.message_id_for(number)

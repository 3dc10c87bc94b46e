"""Exotel, India's DLT-compliant SMS provider, against a fake Exotel on loopback speaking its
wire format (tests/fakes/exotel.py): the acknowledgements carry the template's DLT ID in
their language, a campaign goes in one request, a 429 is waited out, delivery reports move
messages on, and a DND number is opted out."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.app import CAMPAIGNS, TEMPLATES, callback_limits
from gateway.campaigns.service import ComplaintFilter
from gateway.channels.base import (
    DeliveryState,
    OutgoingSms,
    PayloadError,
    ProviderContext,
    ProviderError,
    SendOutcome,
)
from gateway.channels.exotel.pacing import Busy, Pacer, retry_after_seconds
from gateway.channels.exotel.parse import parse_delivery_report, parse_send_answer
from gateway.channels.exotel.provider import Exotel
from gateway.channels.exotel.settings import ExotelSettings
from gateway.complaints.scope import scope_of
from gateway.config import Config, ConfigError, load_config
from gateway.storage.models import Citizen, MessageStatus, OutboundMessage
from tests.conftest import SHIPPED_CONFIG, AppFactory, make_config, run_worker, signed
from tests.fakes.exotel import FakeExotel
from tests.test_campaigns import VARIABLES, complaint, district_admin, number, run_bulk
from tests.test_end_to_end_africastalking import ENGLISH, HINDI, register

SID, KEY, TOKEN = "sampark1", "exo_key_0123456789", "exo_token_9876543210"
SENDER = "HPSEVA"
ENTITY = "1101234567890123456"
DELIVERY = "/sms/exotel/delivery"
CITIZEN_EN, CITIZEN_HI = "+919812345678", "+919800000011"


@pytest.fixture
async def fake_exotel() -> AsyncIterator[FakeExotel]:
    async with FakeExotel(sid=SID, api_key=KEY, api_token=TOKEN) as server:
        yield server


@pytest.fixture
def exotel_config(
    tmp_path: Path, database_url: str, redis_url: str, fake_exotel: FakeExotel
) -> Config:
    return make_config(
        tmp_path,
        database_url,
        redis_url,
        environ={
            "SMS_PROVIDER": "exotel",
            "EXOTEL_SID": SID,
            "EXOTEL_API_KEY": KEY,
            "EXOTEL_API_TOKEN": TOKEN,
            "EXOTEL_SENDER": SENDER,
            "EXOTEL_BASE_URL": fake_exotel.base_url,
            "DLT_ENTITY_ID": ENTITY,
            "PUBLIC_URL": "https://sampark.example.in",
        },
        worker={"max_tries": 3, "retry_base_seconds": 0.05, "retry_max_seconds": 0.1},
        bulk={"segments_per_second": 1000, "batch_size": 50, "quiet_hours": None},
    )


@pytest.fixture
async def client(start_app: AppFactory, exotel_config: Config) -> TestClient[Any, Any]:
    return await start_app(exotel_config)


def base_of(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("/"))


def dlt_id(client: TestClient[Any, Any], template: str, language: str) -> str | None:
    return client.app[TEMPLATES][template].texts[language].dlt_template_id


# --------------------------------------------------------------------------- end to end


async def test_acknowledgements_carry_the_dlt_ids_of_their_language(
    client: TestClient[Any, Any], fake_exotel: FakeExotel
) -> None:
    await register(client, CITIZEN_EN, ENGLISH)
    await register(client, CITIZEN_HI, HINDI)
    await run_worker(client.app)

    acks = {r.form["To"]: r for r in fake_exotel.requests if r.form["To"] != "+919800100001"}
    assert set(acks) == {CITIZEN_EN, CITIZEN_HI}
    expected_auth = "Basic " + base64.b64encode(f"{KEY}:{TOKEN}".encode()).decode()
    for to, language, encoding in ((CITIZEN_EN, "en_IN", "plain"), (CITIZEN_HI, "hi", "unicode")):
        request = acks[to]
        message = await OutboundMessage.get(recipient=to)
        assert request.path == f"/v1/Accounts/{SID}/Sms/send.json"
        assert request.authorization == expected_auth
        assert request.form["From"] == SENDER
        assert request.form["Body"] == message.text
        assert request.form["EncodingType"] == encoding
        assert request.form["SmsType"] == "transactional"
        assert request.form["DltEntityId"] == ENTITY
        assert request.form["DltTemplateId"] == dlt_id(client, "complaint_registered", language)
        assert request.form["StatusCallback"] == "https://sampark.example.in" + signed(
            client, DELIVERY
        )
        assert request.form["CustomField"] == str(message.id)
        assert message.status == MessageStatus.SENT and message.provider == "exotel"
    # Different templates in the two languages: not the same ID twice.
    assert acks[CITIZEN_EN].form["DltTemplateId"] != acks[CITIZEN_HI].form["DltTemplateId"]

    # Exotel's callbacks (to the test server, at the signed path) deliver them all.
    assert set(await fake_exotel.deliver_all(base=base_of(client))) == {200}
    assert await OutboundMessage.filter(status=MessageStatus.DELIVERED).count() == len(
        fake_exotel.sent
    )


async def test_delivery_reports_move_messages_to_delivered_or_failed_and_dnd_opts_out(
    client: TestClient[Any, Any], fake_exotel: FakeExotel
) -> None:
    await register(client, CITIZEN_EN, ENGLISH)
    await register(client, CITIZEN_HI, HINDI)
    await run_worker(client.app)
    by_number = {m.to: m for m in fake_exotel.sent}
    base = base_of(client)
    officer = "+919800100001"
    assert await fake_exotel.report(by_number[officer], "sent", base=base) == 200
    assert await fake_exotel.report(by_number[CITIZEN_EN], "failed", base=base) == 200
    assert await fake_exotel.report(by_number[CITIZEN_HI], "failed_dnd", base=base) == 200

    notices = await OutboundMessage.filter(recipient=officer)
    assert {m.status for m in notices} == {MessageStatus.DELIVERED, MessageStatus.SENT}
    english = await OutboundMessage.get(recipient=CITIZEN_EN)
    hindi = await OutboundMessage.get(recipient=CITIZEN_HI)
    # Failed: an acknowledgement is essential, so it gets its one later try.
    assert (english.status, english.provider_status) == (MessageStatus.RETRYING, "failed")
    assert english.second_chance and english.last_error == "UNKNOWN_ERROR (30010)"
    assert hindi.provider_status == "failed_dnd"
    assert not (await Citizen.get(phone=CITIZEN_EN)).opted_out
    assert (await Citizen.get(phone=CITIZEN_HI)).opted_out  # DND: no optional messages


async def test_a_forged_delivery_report_without_the_secret_changes_nothing(
    client: TestClient[Any, Any], fake_exotel: FakeExotel
) -> None:
    await register(client, CITIZEN_EN, ENGLISH)
    await run_worker(client.app)
    message = fake_exotel.sent[0]
    form = {"SmsSid": message.sid, "To": "09812345678", "Status": "failed"}
    assert (await client.post(DELIVERY, data=form)).status == 404
    assert (await OutboundMessage.get(recipient=CITIZEN_EN)).status == MessageStatus.SENT


async def test_a_number_on_dnd_refused_at_send_is_opted_out(
    client: TestClient[Any, Any], fake_exotel: FakeExotel
) -> None:
    fake_exotel.statuses[CITIZEN_EN] = "failed_dnd"
    await register(client, CITIZEN_EN, ENGLISH)
    await run_worker(client.app)
    message = await OutboundMessage.get(recipient=CITIZEN_EN)
    assert message.last_error == "DND_NUMBER (30008)"
    assert message.status == MessageStatus.RETRYING and message.second_chance  # essential
    assert (await Citizen.get(phone=CITIZEN_EN)).opted_out


async def test_a_twenty_number_campaign_goes_out_in_one_request(
    client: TestClient[Any, Any], fake_exotel: FakeExotel
) -> None:
    for i in range(1, 21):
        await complaint(number(i), language="hi")
    admin, _ = await district_admin(client)
    campaigns = client.app[CAMPAIGNS]
    campaign = await campaigns.create(
        admin,
        scope_of(admin, campaigns.config),
        template="area_update",
        variables=VARIABLES,
        audience=ComplaintFilter(block="theog"),
        actor="t",
    )
    await campaigns.start(campaign, actor="t")
    await run_bulk(client)

    [request] = fake_exotel.requests
    assert sorted(request.form["To"].split(",")) == sorted(number(i) for i in range(1, 21))
    assert request.form["DltTemplateId"] == dlt_id(client, "area_update", "hi")
    assert request.form["DltEntityId"] == ENTITY
    assert request.form["EncodingType"] == "unicode"
    assert len(fake_exotel.sent) == 20
    assert set(await fake_exotel.deliver_all(base=base_of(client))) == {200}
    assert await OutboundMessage.filter(status=MessageStatus.DELIVERED).count() == 20


# --------------------------------------------------------------------------- the client


def provider(base_url: str, **settings: Any) -> Exotel:
    return Exotel(
        ExotelSettings(
            sid=SID, api_key=KEY, api_token=TOKEN, sender=SENDER, base_url=base_url, **settings
        ),
        context=ProviderContext(
            region="IN",
            data_dir=Path("/nonexistent"),
            limits=callback_limits(),
            callback_url=lambda path: f"https://gw.example.in/sms/exotel/s3cret/{path[12:]}",
        ),
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_429_with_retry_after_2_is_waited_out_then_delivered(
    fake_exotel: FakeExotel, http: aiohttp.ClientSession
) -> None:
    fake_exotel.fail_next(status=429, message="Too Many Requests", retry_after="2")
    exotel = provider(fake_exotel.base_url)
    [result] = await exotel.send(OutgoingSms("Namaste", ("09812345678",)), session=http)
    assert result.outcome is SendOutcome.ACCEPTED and result.phone == "09812345678"
    first, second = fake_exotel.requests
    assert second.at - first.at >= 1.95  # Retry-After honoured
    assert len(fake_exotel.sent) == 1
    assert first.form["StatusCallback"] == "https://gw.example.in/sms/exotel/s3cret/delivery"


async def test_a_retry_after_longer_than_a_send_may_wait_is_a_transient_failure(
    fake_exotel: FakeExotel, http: aiohttp.ClientSession
) -> None:
    fake_exotel.fail_next(status=429, retry_after="60")
    exotel = provider(fake_exotel.base_url, max_wait_seconds=1)
    with pytest.raises(ProviderError) as raised:
        await exotel.send(OutgoingSms("Namaste", ("+919812345678",)), session=http)
    assert raised.value.transient and raised.value.status == 429
    # Every other send is held too, without reaching Exotel.
    with pytest.raises(ProviderError):
        await exotel.send(OutgoingSms("Again", ("+919812345679",)), session=http)
    assert len(fake_exotel.requests) == 1


@pytest.mark.parametrize(
    ("status", "transient"),
    [(400, False), (401, False), (403, True), (404, False), (500, True), (503, True)],
)
async def test_refusals_map_to_retry_or_permanent_failure(
    fake_exotel: FakeExotel, http: aiohttp.ClientSession, status: int, transient: bool
) -> None:
    fake_exotel.fail_next(status=status, message="Insufficient balance")
    exotel = provider(fake_exotel.base_url, max_wait_seconds=0)
    with pytest.raises(ProviderError) as raised:
        await exotel.send(OutgoingSms("Namaste", ("+919812345678",)), session=http)
    assert (raised.value.status, raised.value.transient) == (status, transient)


async def test_after_a_403_for_the_balance_sends_back_off_without_a_request(
    fake_exotel: FakeExotel, http: aiohttp.ClientSession
) -> None:
    fake_exotel.fail_next(status=403, message="Insufficient balance")
    exotel = provider(fake_exotel.base_url)
    for _ in range(2):
        with pytest.raises(ProviderError) as raised:
            await exotel.send(OutgoingSms("Namaste", ("+919812345678",)), session=http)
        assert raised.value.transient
    assert len(fake_exotel.requests) == 1  # the second waited for the balance, not Exotel


async def test_several_numbers_one_request_either_answer_shape(http: aiohttp.ClientSession) -> None:
    for wrappers in (False, True):
        async with FakeExotel(
            sid=SID, api_key=KEY, api_token=TOKEN, list_of_wrappers=wrappers
        ) as fake:
            fake.statuses["+919812345679"] = "failed_dnd"
            results = await provider(fake.base_url).send(
                OutgoingSms("Namaste", ("+919812345678", "09812345679", "not a number")),
                session=http,
            )
            by_phone = {r.phone: r for r in results}
            assert by_phone["+919812345678"].outcome is SendOutcome.ACCEPTED
            assert by_phone["+919812345678"].provider_message_id == fake.sent[0].sid
            assert by_phone["09812345679"].outcome is SendOutcome.PERMANENT_FAILURE
            assert by_phone["09812345679"].opted_out
            assert by_phone["not a number"].outcome is SendOutcome.PERMANENT_FAILURE
            assert fake.requests[0].form["To"] == "+919812345678,+919812345679"


async def test_an_unreadable_answer_is_an_unknown_outcome(http: aiohttp.ClientSession) -> None:
    from aiohttp import web

    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text="<html>hiccup</html>")

    app = web.Application()
    app.router.add_post(f"/v1/Accounts/{SID}/Sms/send.json", garbage)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        [result] = await provider(f"http://127.0.0.1:{port}").send(
            OutgoingSms("Namaste", ("+919812345678",)), session=http
        )
    finally:
        await runner.cleanup()
    assert result.outcome is SendOutcome.UNKNOWN


def test_the_api_key_and_token_are_never_shown() -> None:
    exotel = provider("http://127.0.0.1:9")
    assert KEY not in repr(exotel) and TOKEN not in repr(exotel)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("status", "state", "opted_out"),
    [
        ("queued", DeliveryState.IN_FLIGHT, False),
        ("sending", DeliveryState.IN_FLIGHT, False),
        ("submitted", DeliveryState.IN_FLIGHT, False),
        ("sent", DeliveryState.DELIVERED, False),
        ("failed", DeliveryState.FAILED, False),
        ("failed_dnd", DeliveryState.FAILED, True),
    ],
)
def test_delivery_report_statuses(status: str, state: DeliveryState, opted_out: bool) -> None:
    report = parse_delivery_report(
        {
            "SmsSid": "0b6c6a98f32682862ce6edf1bdab3526",
            "To": "09812345678",
            "Status": status,
            "DetailedStatus": "DND_NUMBER",
            "DetailedStatusCode": "30008",
            "SmsUnits": "1",
            "DateSent": "2026-11-23 10:15:02",
            "CustomField": "42",
        },
        limits=callback_limits(),
        region="IN",
    )
    assert (report.state, report.opted_out, report.phone) == (state, opted_out, "+919812345678")
    assert report.provider == "exotel" and report.failure_reason == "DND_NUMBER (30008)"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"Status": "sent"}, "SmsSid"),
        ({"SmsSid": "x" * 500, "Status": "sent"}, "SmsSid"),
        ({"SmsSid": "abc"}, "Status"),
        ({"SmsSid": "abc", "Status": "exploded"}, "Status"),
    ],
)
def test_delivery_reports_missing_or_garbling_a_field_are_refused(
    fields: dict[str, str], field: str
) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_delivery_report(fields, limits=callback_limits(), region="IN")
    assert str(raised.value).startswith(f"{field}: ")


def test_send_answers_of_every_documented_shape() -> None:
    one = '{"SMSMessage": {"Sid": "a", "To": "09812345678", "Status": "queued"}}'
    assert [m.sid for m in parse_send_answer(one)] == ["a"]
    listed = '{"SMSMessage": [{"Sid": "a", "To": "x"}, {"Sid": "b", "To": "y"}]}'
    assert [m.sid for m in parse_send_answer(listed)] == ["a", "b"]
    wrapped = '[{"SMSMessage": {"Sid": "a"}}, {"SMSMessage": {"Sid": "b"}}]'
    assert [m.sid for m in parse_send_answer(wrapped)] == ["a", "b"]
    for bad in ('{"RestException": {}}', "[1]", '"x"'):
        with pytest.raises(ValueError):
            parse_send_answer(bad)


# --------------------------------------------------------------------------- pacing


async def test_the_pacer_keeps_under_its_rate_and_holds_for_retry_after() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(
        requests_per_minute=60,
        segments_per_minute=6000,
        max_wait=10,
        clock=lambda: now[0],
        sleep=sleep,
    )
    for _ in range(5):  # five seconds' worth at once
        await pacer.turn(1)
    assert slept == []
    await pacer.turn(1)
    assert slept == [pytest.approx(1.0)]  # then one a second
    pacer.hold(2)
    await pacer.turn(1)
    assert slept[-1] == pytest.approx(2.0)
    pacer.hold(30)
    with pytest.raises(Busy):
        await pacer.turn(1)
    # 200 requests in any minute at most, at the default 180 a minute.
    default = Pacer(requests_per_minute=180, segments_per_minute=10**5, max_wait=60,
                    clock=lambda: now[0], sleep=sleep)  # fmt: skip
    start, sent = now[0], 0
    while now[0] - start < 60:
        await default.turn(1)
        sent += 1
    assert sent <= 200


def test_retry_after_as_seconds_or_a_date() -> None:
    assert retry_after_seconds("2", default=5) == 2
    assert retry_after_seconds(None, default=5) == 5
    assert retry_after_seconds("soon", default=5) == 5
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", default=5) == 0


# --------------------------------------------------------------------------- settings


def test_exotel_needs_its_account_and_the_dlt_entity() -> None:
    environ = {"SMS_PROVIDER": "exotel", "EXOTEL_SID": SID, "EXOTEL_API_KEY": KEY}
    with pytest.raises(ConfigError, match=r"exotel.api_token is required.*EXOTEL_API_TOKEN"):
        load_config(SHIPPED_CONFIG, environ=environ)
    environ.update(EXOTEL_API_TOKEN=TOKEN, EXOTEL_SENDER=SENDER)
    with pytest.raises(ConfigError, match=r"dlt_entity_id is required.*DLT_ENTITY_ID"):
        load_config(SHIPPED_CONFIG, environ=environ)
    config = load_config(SHIPPED_CONFIG, environ={**environ, "DLT_ENTITY_ID": ENTITY})
    assert config.sms.exotel.subdomain == "api.exotel.com"


def test_exotel_pacing_ships_under_its_rate_and_is_raised_only_by_configuration() -> None:
    environ = {
        "SMS_PROVIDER": "exotel",
        "EXOTEL_SID": SID,
        "EXOTEL_API_KEY": KEY,
        "EXOTEL_API_TOKEN": TOKEN,
        "EXOTEL_SENDER": SENDER,
        "DLT_ENTITY_ID": ENTITY,
    }
    shipped = load_config(SHIPPED_CONFIG, environ=environ).sms.exotel
    assert shipped.requests_per_minute == 180  # any minute at 195 or fewer (the pacer test)
    # An account whose limit Exotel raised, or the benchmark against the fake server.
    raised = {"requests_per_minute": 1_000_000, "segments_per_minute": 100_000_000}
    config = load_config(SHIPPED_CONFIG, environ=environ, overrides={"sms": {"exotel": raised}})
    assert config.sms.exotel.requests_per_minute == 1_000_000
    with pytest.raises(ConfigError, match="requests_per_minute"):
        load_config(
            SHIPPED_CONFIG,
            environ=environ,
            overrides={"sms": {"exotel": {"requests_per_minute": 0}}},
        )

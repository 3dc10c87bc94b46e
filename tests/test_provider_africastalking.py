"""Africa's Talking provider: parsers fed AT's real payloads, its status tables (outcome
and opt-out), send() against a fake AT on loopback, the callback routes, and wire
compatibility with the official SDK."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp.plugin import AiohttpClient

from gateway.app import callback_limits
from gateway.channels.africastalking import parse
from gateway.channels.africastalking.parse import format_ussd_reply
from gateway.channels.africastalking.provider import AfricasTalking
from gateway.channels.africastalking.settings import AfricasTalkingSettings
from gateway.channels.africastalking.statuses import outcome_for_status_code
from gateway.channels.base import (
    CALLBACKS,
    CallbackLimits,
    DeliveryReport,
    DeliveryState,
    InboundSms,
    MissedCall,
    OutgoingSms,
    PayloadError,
    ProviderError,
    SendOutcome,
    UssdHop,
    UssdReply,
    UssdSessionEnd,
)
from gateway.channels.signing import CallbackSigner
from gateway.web.keys import SIGNER
from tests.conftest import signed
from tests.fakes.africastalking import AUTH_FAILED, FakeAfricasTalking, Fault

USERNAME = "sampark"
API_KEY = "atsk_4f1c0a9e7b2d48c6a1e3f5b7d9c2e4a6"
PHONE = "+919812345678"
SESSION_ID = "ATUid_0e8c5b7a4f2d4c1e9b3a6d8f0c2e4a61"
AT = "africastalking"

LIMITS = callback_limits()
"""What the gateway's columns keep, as the wiring hands them to the provider."""
parse_ussd_hop = functools.partial(parse.parse_ussd_hop, limits=LIMITS)
parse_ussd_session_end = functools.partial(parse.parse_ussd_session_end, limits=LIMITS)
parse_delivery_report = functools.partial(parse.parse_delivery_report, limits=LIMITS)
parse_inbound_sms = functools.partial(parse.parse_inbound_sms, limits=LIMITS)

# ------------------------------------------------------------- payloads as AT sends them

USSD_HOP = {
    "sessionId": SESSION_ID,
    "serviceCode": "*384*1100#",
    "phoneNumber": PHONE,
    "networkCode": "40445",
    "text": "1*2*Paani nahi aata",
}

USSD_END = {
    "sessionId": SESSION_ID,
    "serviceCode": "*384*1100#",
    "networkCode": "40445",
    "phoneNumber": PHONE,
    "status": "Success",
    "cost": "INR 0.0200",
    "durationInMillis": "48213",
    "hopsCount": "4",
    "input": "1",
    "lastAppResponse": "END Shikayat darj: HP-2026-000123",
    "errorMessage": "",
    "date": "2026-11-23 10:15:02",
}

DLR = {
    "id": "ATXid_7c2f0e9b1a5d4e3c8b6a0f2d4e6c8a1b",
    "status": "Success",
    "phoneNumber": PHONE,
    "networkCode": "40445",
    "retryCount": "0",
}

INBOUND = {
    "from": PHONE,
    "to": "56263",
    "text": "SHIKAYAT Paani nahi aata ward 7",
    "date": "2026-11-23 10:15:02",
    "id": "8b1d2f6e-3c4a-4e5b-9f7a-0c1d2e3f4a5b",
    "linkId": "SampleLinkId123",
    "networkCode": "40445",
}


def without(payload: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in payload.items() if k not in names}


def having(payload: dict[str, str], **changes: str) -> dict[str, str]:
    return {**payload, **changes}


# --------------------------------------------------------------------------- parse_ussd_hop


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            USSD_HOP,
            UssdHop(SESSION_ID, "*384*1100#", PHONE, "40445", "1*2*Paani nahi aata", provider=AT),
            id="later-hop",
        ),
        pytest.param(
            having(USSD_HOP, text=""),
            UssdHop(SESSION_ID, "*384*1100#", PHONE, "40445", "", provider=AT),
            id="first-hop-empty-text",
        ),
        pytest.param(
            without(USSD_HOP, "text"),
            UssdHop(SESSION_ID, "*384*1100#", PHONE, "40445", "", provider=AT),
            id="first-hop-no-text",
        ),
        pytest.param(
            without(USSD_HOP, "networkCode"),
            UssdHop(SESSION_ID, "*384*1100#", PHONE, "", "1*2*Paani nahi aata", provider=AT),
            id="no-network-code",
        ),
        pytest.param(
            having(USSD_HOP, phoneNumber="919812345678"),
            UssdHop(SESSION_ID, "*384*1100#", PHONE, "40445", "1*2*Paani nahi aata", provider=AT),
            id="phone-without-plus",
        ),
        pytest.param(
            having(USSD_HOP, phoneNumber="09812345678", text="1*2*पानी नहीं आता"),
            UssdHop(SESSION_ID, "*384*1100#", PHONE, "40445", "1*2*पानी नहीं आता", provider=AT),
            id="trunk-prefix-and-devanagari",
        ),
        pytest.param(
            having(USSD_HOP, hopsCount="3", carrier="Airtel", sessionType="SIM"),
            UssdHop(SESSION_ID, "*384*1100#", PHONE, "40445", "1*2*Paani nahi aata", provider=AT),
            id="extra-fields-ignored",
        ),
        pytest.param(
            having(USSD_HOP, sessionId="A" * 128, text="9" * 1000),
            UssdHop("A" * 128, "*384*1100#", PHONE, "40445", "9" * 1000, provider=AT),
            id="at-the-length-limits",
        ),
    ],
)
def test_parse_ussd_hop(fields: dict[str, str], expected: UssdHop) -> None:
    assert parse_ussd_hop(fields) == expected


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        pytest.param(without(USSD_HOP, "sessionId"), "sessionId", id="no-session-id"),
        pytest.param(having(USSD_HOP, sessionId=""), "sessionId", id="empty-session-id"),
        pytest.param(having(USSD_HOP, sessionId="A" * 129), "sessionId", id="long-session-id"),
        pytest.param(without(USSD_HOP, "serviceCode"), "serviceCode", id="no-service-code"),
        pytest.param(without(USSD_HOP, "phoneNumber"), "phoneNumber", id="no-phone"),
        pytest.param(having(USSD_HOP, phoneNumber=""), "phoneNumber", id="empty-phone"),
        pytest.param(having(USSD_HOP, phoneNumber="+91abc45678"), "phoneNumber", id="letters"),
        pytest.param(having(USSD_HOP, phoneNumber="12345"), "phoneNumber", id="too-short"),
        pytest.param(having(USSD_HOP, text="1" * 1001), "text", id="text-too-long"),
    ],
)
def test_parse_ussd_hop_rejects(fields: dict[str, str], field_name: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_ussd_hop(fields)
    assert raised.value.field == field_name
    assert str(raised.value).startswith(f"{field_name}: ")


@pytest.mark.parametrize(
    ("raw", "region", "phone"),
    [
        ("+254711082000", "IN", "+254711082000"),  # AT's sandbox numbers are Kenyan
        ("+447911123456", "IN", "+447911123456"),
        ("+911772623456", "IN", "+911772623456"),  # a landline: valid, if no handset's
        ("0711082000", "KE", "+254711082000"),
    ],
)
def test_callbacks_take_any_valid_number_read_in_the_region(
    raw: str, region: str, phone: str
) -> None:
    """A number the network gives us is not ours to refuse for being unable to get SMS."""
    assert parse_ussd_hop(having(USSD_HOP, phoneNumber=raw), region=region).phone == phone
    assert parse_inbound_sms(having(INBOUND, **{"from": raw}), region=region).sender == phone


def test_payload_error_for_a_phone_does_not_echo_the_number() -> None:
    with pytest.raises(PayloadError) as raised:
        parse_ussd_hop(having(USSD_HOP, phoneNumber="+91981234567890123"))
    assert "1234567890123" not in str(raised.value)


# --------------------------------------------------------------------------- parse_ussd_session_end


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            USSD_END,
            UssdSessionEnd(
                session_id=SESSION_ID,
                status="Success",
                phone=PHONE,
                service_code="*384*1100#",
                network_code="40445",
                duration_ms=48213,
                hops=4,
                last_input="1",
                last_response="END Shikayat darj: HP-2026-000123",
                error_message=None,
                cost="INR 0.0200",
                provider=AT,
            ),
            id="full",
        ),
        pytest.param(
            {"sessionId": SESSION_ID, "status": "Incomplete"},
            UssdSessionEnd(session_id=SESSION_ID, status="Incomplete", provider=AT),
            id="only-required",
        ),
        pytest.param(
            having(
                USSD_END,
                status="Failed",
                errorMessage="Timeout waiting for app response",
                durationInMillis="abc",
                hopsCount="",
                phoneNumber="not-a-number",
                someNewField="x",
            ),
            UssdSessionEnd(
                session_id=SESSION_ID,
                status="Failed",
                phone=None,
                service_code="*384*1100#",
                network_code="40445",
                duration_ms=None,
                hops=None,
                last_input="1",
                last_response="END Shikayat darj: HP-2026-000123",
                error_message="Timeout waiting for app response",
                cost="INR 0.0200",
                provider=AT,
            ),
            id="failed-with-garbled-optionals",
        ),
        pytest.param(
            having(USSD_END, durationInMillis="1200.0", hopsCount="2"),
            UssdSessionEnd(
                session_id=SESSION_ID,
                status="Success",
                phone=PHONE,
                service_code="*384*1100#",
                network_code="40445",
                duration_ms=1200,
                hops=2,
                last_input="1",
                last_response="END Shikayat darj: HP-2026-000123",
                cost="INR 0.0200",
                provider=AT,
            ),
            id="float-duration",
        ),
    ],
)
def test_parse_ussd_session_end(fields: dict[str, str], expected: UssdSessionEnd) -> None:
    assert parse_ussd_session_end(fields) == expected


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        pytest.param(without(USSD_END, "sessionId"), "sessionId", id="no-session-id"),
        pytest.param(without(USSD_END, "status"), "status", id="no-status"),
        pytest.param(having(USSD_END, status=" "), "status", id="blank-status"),
    ],
)
def test_parse_ussd_session_end_rejects(fields: dict[str, str], field_name: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_ussd_session_end(fields)
    assert raised.value.field == field_name


# --------------------------------------------------------------------------- parse_delivery_report


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("Success", DeliveryState.DELIVERED),
        ("Sent", DeliveryState.IN_FLIGHT),
        ("Submitted", DeliveryState.IN_FLIGHT),
        ("Buffered", DeliveryState.IN_FLIGHT),
        ("Rejected", DeliveryState.FAILED),
        ("Failed", DeliveryState.FAILED),
        ("Expired", DeliveryState.FAILED),
        ("AbsentSubscriber", DeliveryState.FAILED),
    ],
)
def test_parse_delivery_report_status(status: str, state: DeliveryState) -> None:
    report = parse_delivery_report(having(DLR, status=status))
    assert report.state is state
    assert report.provider_status == status
    assert report.opted_out is False


# Every failureReason AT documents for a failed report; only a blacklisting is an opt-out.
@pytest.mark.parametrize(
    ("status", "reason", "opted_out"),
    [
        ("Rejected", "UserInBlackList", True),
        ("Failed", "UserInBlackList", True),
        ("Failed", "UserInBlacklist", True),  # the spelling of the send answer's status
        ("Expired", "userinblacklist", True),
        ("Rejected", "InsufficientCredit", False),
        ("Rejected", "InvalidLinkId", False),
        ("Failed", "UserIsInactive", False),
        ("Failed", "UserAccountSuspended", False),
        ("Failed", "NotNetworkSubscriber", False),
        ("Failed", "UserNotSubscribedToProduct", False),
        ("Failed", "UserDoesNotExist", False),
        ("Failed", "DeliveryFailure", False),
        ("Rejected", "DoNotDisturbRejection", False),
        ("AbsentSubscriber", "", False),
        ("Failed", "UserInBlackListed", False),
        ("Success", "UserInBlackList", False),  # delivered after all: nothing refused
        ("Buffered", "UserInBlackList", False),
    ],
)
def test_parse_delivery_report_opted_out(status: str, reason: str, opted_out: bool) -> None:
    report = parse_delivery_report(having(DLR, status=status, failureReason=reason))
    assert report.opted_out is opted_out
    assert report.failure_reason == (reason or None)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            DLR,
            DeliveryReport(
                provider_message_id=DLR["id"],
                state=DeliveryState.DELIVERED,
                provider_status="Success",
                phone=PHONE,
                network_code="40445",
                retry_count=0,
                provider=AT,
            ),
            id="delivered",
        ),
        pytest.param(
            having(DLR, status="Rejected", failureReason="UserInBlackList", retryCount="2"),
            DeliveryReport(
                provider_message_id=DLR["id"],
                state=DeliveryState.FAILED,
                provider_status="Rejected",
                failure_reason="UserInBlackList",
                phone=PHONE,
                network_code="40445",
                retry_count=2,
                opted_out=True,
                provider=AT,
            ),
            id="rejected-with-reason",
        ),
        pytest.param(
            {"id": DLR["id"], "status": "Buffered", "foo": "bar", "cost": "KES 0.8000"},
            DeliveryReport(
                provider_message_id=DLR["id"],
                state=DeliveryState.IN_FLIGHT,
                provider_status="Buffered",
                provider=AT,
            ),
            id="minimal-plus-extras",
        ),
        pytest.param(
            having(DLR, retryCount="many", phoneNumber="garbage"),
            DeliveryReport(
                provider_message_id=DLR["id"],
                state=DeliveryState.DELIVERED,
                provider_status="Success",
                network_code="40445",
                provider=AT,
            ),
            id="garbled-optionals",
        ),
    ],
)
def test_parse_delivery_report(fields: dict[str, str], expected: DeliveryReport) -> None:
    assert parse_delivery_report(fields) == expected


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        pytest.param(without(DLR, "id"), "id", id="no-id"),
        pytest.param(having(DLR, id=""), "id", id="empty-id"),
        pytest.param(without(DLR, "status"), "status", id="no-status"),
        pytest.param(having(DLR, status="Delivered"), "status", id="unknown-status"),
        pytest.param(having(DLR, status="success"), "status", id="wrong-case"),
    ],
)
def test_parse_delivery_report_rejects(fields: dict[str, str], field_name: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_delivery_report(fields)
    assert raised.value.field == field_name


# --------------------------------------------------------------------------- parse_inbound_sms

_IST = timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            INBOUND,
            InboundSms(
                provider_message_id=INBOUND["id"],
                sender=PHONE,
                recipient="56263",
                text="SHIKAYAT Paani nahi aata ward 7",
                received_at=datetime(2026, 11, 23, 10, 15, 2, tzinfo=UTC),
                link_id="SampleLinkId123",
                network_code="40445",
                provider=AT,
            ),
            id="full",
        ),
        pytest.param(
            without(INBOUND, "date", "linkId", "networkCode"),
            InboundSms(
                provider_message_id=INBOUND["id"],
                sender=PHONE,
                recipient="56263",
                text="SHIKAYAT Paani nahi aata ward 7",
                provider=AT,
            ),
            id="only-required",
        ),
        pytest.param(
            having(INBOUND, text="", date="2026-11-23T10:15:02.000Z"),
            InboundSms(
                provider_message_id=INBOUND["id"],
                sender=PHONE,
                recipient="56263",
                text="",
                received_at=datetime(2026, 11, 23, 10, 15, 2, tzinfo=UTC),
                link_id="SampleLinkId123",
                network_code="40445",
                provider=AT,
            ),
            id="empty-text-iso-z-date",
        ),
        pytest.param(
            having(
                INBOUND,
                **{"from": "9812345678"},
                text="शिकायत: पानी नहीं आता",
                date="2026-11-23T15:45:02+05:30",
                cost="KES 0.0000",
            ),
            InboundSms(
                provider_message_id=INBOUND["id"],
                sender=PHONE,
                recipient="56263",
                text="शिकायत: पानी नहीं आता",
                received_at=datetime(2026, 11, 23, 15, 45, 2, tzinfo=_IST),
                link_id="SampleLinkId123",
                network_code="40445",
                provider=AT,
            ),
            id="ten-digit-sender-offset-date-extra-field",
        ),
        pytest.param(
            having(INBOUND, date="23/11/2026 10:15"),
            InboundSms(
                provider_message_id=INBOUND["id"],
                sender=PHONE,
                recipient="56263",
                text="SHIKAYAT Paani nahi aata ward 7",
                received_at=None,
                link_id="SampleLinkId123",
                network_code="40445",
                provider=AT,
            ),
            id="unparseable-date",
        ),
    ],
)
def test_parse_inbound_sms(fields: dict[str, str], expected: InboundSms) -> None:
    parsed = parse_inbound_sms(fields)
    assert parsed == expected
    if parsed.received_at is not None:
        assert parsed.received_at.tzinfo is not None


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        pytest.param(without(INBOUND, "from"), "from", id="no-from"),
        pytest.param(having(INBOUND, **{"from": "AX-SAMPRK"}), "from", id="malformed-from"),
        pytest.param(without(INBOUND, "to"), "to", id="no-to"),
        pytest.param(without(INBOUND, "text"), "text", id="no-text"),
        pytest.param(having(INBOUND, text="a" * 2001), "text", id="text-too-long"),
        pytest.param(without(INBOUND, "id"), "id", id="no-id"),
    ],
)
def test_parse_inbound_sms_rejects(fields: dict[str, str], field_name: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_inbound_sms(fields)
    assert raised.value.field == field_name


def test_inbound_text_of_exactly_2000_chars_is_accepted() -> None:
    assert parse_inbound_sms(having(INBOUND, text="अ" * 2000)).text == "अ" * 2000


# --------------------------------------------------------------------------- replies and codes


@pytest.mark.parametrize(
    ("reply", "body"),
    [
        (UssdReply("1. Shikayat\n2. Sthiti", end=False), "CON 1. Shikayat\n2. Sthiti"),
        (UssdReply("Dhanyavaad", end=True), "END Dhanyavaad"),
        (UssdReply("", end=True), "END "),
    ],
)
def test_format_ussd_reply(reply: UssdReply, body: str) -> None:
    assert format_ussd_reply(reply) == body


# The expectation is written out here, not derived from the module's own table:
# (statusCode, status, outcome, opted out).
STATUS_CODE_OUTCOMES = [
    (100, "Processed", SendOutcome.ACCEPTED, False),
    (101, "Success", SendOutcome.ACCEPTED, False),
    (102, "Queued", SendOutcome.ACCEPTED, False),
    (401, "RiskHold", SendOutcome.PERMANENT_FAILURE, False),
    (402, "InvalidSenderId", SendOutcome.PERMANENT_FAILURE, False),
    (403, "InvalidPhoneNumber", SendOutcome.PERMANENT_FAILURE, False),
    (404, "UnsupportedNumberType", SendOutcome.PERMANENT_FAILURE, False),
    (405, "InsufficientBalance", SendOutcome.PERMANENT_FAILURE, False),
    (406, "UserInBlacklist", SendOutcome.PERMANENT_FAILURE, True),
    (407, "CouldNotRoute", SendOutcome.PERMANENT_FAILURE, False),
    (409, "DoNotDisturbRejection", SendOutcome.PERMANENT_FAILURE, False),
    (500, "InternalServerError", SendOutcome.TRANSIENT_FAILURE, False),
    (501, "GatewayError", SendOutcome.TRANSIENT_FAILURE, False),
    (502, "RejectedByGateway", SendOutcome.TRANSIENT_FAILURE, False),
]


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(code, outcome) for code, _, outcome, _ in STATUS_CODE_OUTCOMES]
    + [
        (103, SendOutcome.PERMANENT_FAILURE),
        (408, SendOutcome.PERMANENT_FAILURE),
        (499, SendOutcome.PERMANENT_FAILURE),
        (503, SendOutcome.TRANSIENT_FAILURE),
        (599, SendOutcome.TRANSIENT_FAILURE),
    ],
)
def test_outcome_for_status_code(code: int, outcome: SendOutcome) -> None:
    assert outcome_for_status_code(code) is outcome


# ------------------------------------------------------------- send() against the fake


@pytest.fixture
async def fake_at() -> AsyncIterator[FakeAfricasTalking]:
    fake = FakeAfricasTalking(username=USERNAME, api_key=API_KEY)
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_provider(
    base_url: str | None,
    *,
    api_key: str = API_KEY,
    sender_id: str | None = None,
    timeout: float = 5.0,
    limits: CallbackLimits = LIMITS,
) -> AfricasTalking:
    assert base_url is not None
    settings = AfricasTalkingSettings(
        username=USERNAME,
        api_key=api_key,
        base_url=base_url,
        sender_id=sender_id,
        timeout_seconds=timeout,
    )
    return AfricasTalking(settings, region="IN", limits=limits)


async def test_send_one_recipient(fake_at: FakeAfricasTalking, http: aiohttp.ClientSession) -> None:
    at = make_provider(fake_at.base_url)
    results = await at.send(OutgoingSms("Shikayat HP-2026-000123 darj", (PHONE,)), session=http)

    assert len(results) == 1
    (result,) = results
    assert result.phone == PHONE
    assert result.outcome is SendOutcome.ACCEPTED
    assert result.provider_status == "Success"
    assert result.status_code == 101
    assert result.cost == "KES 0.8000"
    assert result.provider_message_id == fake_at.message_id_for(PHONE)
    assert result.provider_message_id is not None
    assert result.provider_message_id.startswith("ATXid_")

    (request,) = fake_at.requests
    assert request.method == "POST"
    assert request.path == "/version1/messaging"
    assert request.header("apiKey") == API_KEY
    assert request.header("Accept") == "application/json"
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"
    assert request.form == {
        "username": USERNAME,
        "to": PHONE,
        "message": "Shikayat HP-2026-000123 darj",
        "bulkSMSMode": "1",
    }


@pytest.mark.parametrize(("code", "status", "outcome", "opted_out"), STATUS_CODE_OUTCOMES)
async def test_send_maps_each_recipient_status_code(
    fake_at: FakeAfricasTalking,
    http: aiohttp.ClientSession,
    code: int,
    status: str,
    outcome: SendOutcome,
    opted_out: bool,
) -> None:
    fake_at.outcomes[PHONE] = code
    (result,) = await make_provider(fake_at.base_url).send(
        OutgoingSms("Namaste", (PHONE,)), session=http
    )
    assert result.outcome is outcome
    assert result.status_code == code
    assert result.provider_status == status
    assert result.opted_out is opted_out
    if outcome is SendOutcome.ACCEPTED:
        assert result.provider_message_id is not None
    else:
        assert result.provider_message_id is None  # AT writes "None"


async def test_send_many_recipients_in_one_request_with_mixed_outcomes(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    ok, opted_out, dnd, gateway_down, queued = (
        "+919800000101",
        "+919800000406",
        "+919800000409",
        "+919800000501",
        "+919800000102",
    )
    fake_at.outcomes.update({opted_out: 406, dnd: 409, gateway_down: 501, queued: 102})
    recipients = (ok, opted_out, dnd, gateway_down, queued)

    results = await make_provider(fake_at.base_url).send(
        OutgoingSms("Aapki shikayat ka samadhan ho gaya", recipients), session=http
    )

    assert len(fake_at.requests) == 1
    assert fake_at.requests[0].form["to"] == ",".join(recipients)
    by_phone = {r.phone: r for r in results}
    assert len(results) == len(recipients)
    assert by_phone[ok].outcome is SendOutcome.ACCEPTED
    assert by_phone[queued].outcome is SendOutcome.ACCEPTED
    assert by_phone[opted_out].outcome is SendOutcome.PERMANENT_FAILURE
    assert by_phone[opted_out].provider_status == "UserInBlacklist"
    assert by_phone[dnd].outcome is SendOutcome.PERMANENT_FAILURE
    assert by_phone[gateway_down].outcome is SendOutcome.TRANSIENT_FAILURE
    assert by_phone[ok].provider_message_id != by_phone[queued].provider_message_id


async def test_send_recipient_missing_from_answer_is_transient(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    other = "+919876543210"
    fake_at.omitted.add(other)
    results = await make_provider(fake_at.base_url).send(
        OutgoingSms("Namaste", (PHONE, other)), session=http
    )
    by_phone = {r.phone: r for r in results}
    assert by_phone[PHONE].outcome is SendOutcome.ACCEPTED
    assert by_phone[other].outcome is SendOutcome.TRANSIENT_FAILURE
    assert by_phone[other].provider_message_id is None


async def test_send_matches_answer_numbers_after_normalising(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    fake_at.renumber[PHONE] = "919812345678"  # AT echoing the number without its +
    (result,) = await make_provider(fake_at.base_url).send(
        OutgoingSms("Namaste", (PHONE,)), session=http
    )
    assert result.phone == PHONE
    assert result.outcome is SendOutcome.ACCEPTED


async def test_send_ignores_numbers_it_did_not_send_to(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    fake_at.renumber[PHONE] = "+919999999999"
    (result,) = await make_provider(fake_at.base_url).send(
        OutgoingSms("Namaste", (PHONE,)), session=http
    )
    assert result.phone == PHONE
    assert result.outcome is SendOutcome.TRANSIENT_FAILURE


async def test_send_normalises_and_deduplicates_recipients(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    results = await make_provider(fake_at.base_url).send(
        OutgoingSms("Namaste", ("9812345678", PHONE, "not a number")), session=http
    )
    assert fake_at.requests[0].form["to"] == PHONE
    by_phone = {r.phone: r for r in results}
    assert set(by_phone) == {"9812345678", "not a number"}
    assert by_phone["9812345678"].outcome is SendOutcome.ACCEPTED
    assert by_phone["not a number"].outcome is SendOutcome.PERMANENT_FAILURE


async def test_send_with_only_malformed_recipients_makes_no_request(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    (result,) = await make_provider(fake_at.base_url).send(
        OutgoingSms("Namaste", ("12",)), session=http
    )
    assert result.outcome is SendOutcome.PERMANENT_FAILURE
    assert fake_at.requests == []


@pytest.mark.parametrize(
    ("provider_sender", "bulk", "expected_from", "expected_enqueue"),
    [
        pytest.param(None, False, None, None, id="no-sender"),
        pytest.param("HPGOVT", False, "HPGOVT", None, id="provider-sender"),
        pytest.param("HPGOVT", True, "HPGOVT", "1", id="provider-sender-in-bulk"),
        pytest.param(None, True, None, "1", id="bulk-enqueues"),
    ],
)
async def test_send_sender_id_and_enqueue(
    fake_at: FakeAfricasTalking,
    http: aiohttp.ClientSession,
    provider_sender: str | None,
    bulk: bool,
    expected_from: str | None,
    expected_enqueue: str | None,
) -> None:
    """The sender ID is the account's setting (``sms.africastalking.sender_id``)."""
    at = make_provider(fake_at.base_url, sender_id=provider_sender)
    await at.send(OutgoingSms("Namaste", (PHONE,), bulk=bulk), session=http)
    form = fake_at.requests[0].form
    assert form.get("from") == expected_from
    assert form.get("enqueue") == expected_enqueue
    assert form["bulkSMSMode"] == "1"


async def test_send_with_wrong_api_key_is_a_permanent_error(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    at = make_provider(fake_at.base_url, api_key="atsk_wrong")
    with pytest.raises(ProviderError) as raised:
        await at.send(OutgoingSms("Namaste", (PHONE,)), session=http)
    assert raised.value.transient is False
    assert raised.value.status == 401
    assert AUTH_FAILED in str(raised.value)
    assert "atsk_wrong" not in str(raised.value)


async def test_send_with_wrong_username_is_a_permanent_error(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    settings = AfricasTalkingSettings(
        username="someone-else", api_key=API_KEY, base_url=str(fake_at.base_url)
    )
    at = AfricasTalking(settings, region="IN", limits=LIMITS)
    with pytest.raises(ProviderError) as raised:
        await at.send(OutgoingSms("Namaste", (PHONE,)), session=http)
    assert (raised.value.transient, raised.value.status) == (False, 401)


async def test_send_empty_message_is_a_permanent_error(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(ProviderError) as raised:
        await make_provider(fake_at.base_url).send(OutgoingSms("", (PHONE,)), session=http)
    assert (raised.value.transient, raised.value.status) == (False, 400)
    assert "message" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "transient"),
    [(400, False), (403, False), (404, False), (429, True), (500, True), (503, True)],
)
async def test_send_http_errors(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession, status: int, transient: bool
) -> None:
    fake_at.fail_next(status=status, body=f"upstream said no ({status})")
    with pytest.raises(ProviderError) as raised:
        await make_provider(fake_at.base_url).send(OutgoingSms("Namaste", (PHONE,)), session=http)
    assert raised.value.transient is transient
    assert raised.value.status == status
    assert f"upstream said no ({status})" in str(raised.value)


async def test_send_error_text_is_trimmed(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    fake_at.fail_next(status=400, body="x" * 5000)
    with pytest.raises(ProviderError) as raised:
        await make_provider(fake_at.base_url).send(OutgoingSms("Namaste", (PHONE,)), session=http)
    assert "x" * 200 in str(raised.value)
    assert "x" * 201 not in str(raised.value)


async def test_send_503_twice_then_success(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    fake_at.fail_next(status=503, times=2)
    at = make_provider(fake_at.base_url)
    sms = OutgoingSms("Namaste", (PHONE,))
    for _ in range(2):
        with pytest.raises(ProviderError) as raised:
            await at.send(sms, session=http)
        assert raised.value.transient is True
    (result,) = await at.send(sms, session=http)
    assert result.outcome is SendOutcome.ACCEPTED
    assert len(fake_at.requests) == 3


async def test_send_timeout_after_writing_is_answer_unknown(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    """AT took the message and answered too late: it may be sent, so it is not an error
    to retry but an unknown answer (AT has no idempotency key to make a retry safe)."""
    fake_at.fault_next(Fault.SLOW)
    at = make_provider(fake_at.base_url, timeout=0.2)
    started = time.monotonic()
    (result,) = await at.send(OutgoingSms("Namaste", (PHONE,)), session=http)
    assert time.monotonic() - started < 2.0
    assert result.phone == PHONE and result.outcome is SendOutcome.UNKNOWN
    assert "did not answer within 0.2 s" in result.provider_status
    assert result.provider_message_id is None
    assert [m.number for m in fake_at.sent] == [PHONE]


async def test_send_reset_after_writing_is_answer_unknown_for_every_recipient(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    other = "+919876543210"
    fake_at.faults[other] = Fault.RESET
    results = await make_provider(fake_at.base_url).send(
        OutgoingSms("Namaste", (PHONE, other, "not-a-number")), session=http
    )
    by_phone = {r.phone: r.outcome for r in results}
    assert by_phone == {
        PHONE: SendOutcome.UNKNOWN,
        other: SendOutcome.UNKNOWN,
        "not-a-number": SendOutcome.PERMANENT_FAILURE,  # never written: known not sent
    }
    assert {m.number for m in fake_at.sent} == {PHONE, other}


async def test_send_connection_refused_is_transient(http: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and is closed now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    at = make_provider(f"http://127.0.0.1:{port}")
    with pytest.raises(ProviderError) as raised:
        await at.send(OutgoingSms("Namaste", (PHONE,)), session=http)
    assert raised.value.transient is True
    assert raised.value.status is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("<html><body>Bad gateway</body></html>", id="html"),
        pytest.param("", id="empty"),
        pytest.param('{"SMSMessageData": {"Message": "Sent to 1/1"}}', id="no-recipients"),
        pytest.param('{"SMSMessageData": "oops"}', id="wrong-type"),
        pytest.param("[1, 2, 3]", id="json-list"),
    ],
)
async def test_send_garbage_2xx_body_is_answer_unknown(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession, body: str
) -> None:
    """A 2xx says AT took the request; what it took cannot be read: maybe sent."""
    fake_at.fail_next(status=201, body=body, content_type="application/json")
    (result,) = await make_provider(fake_at.base_url).send(
        OutgoingSms("Namaste", (PHONE,)), session=http
    )
    assert result.outcome is SendOutcome.UNKNOWN
    assert result.provider_status.startswith("HTTP 201 with an unreadable body")


async def test_send_200_is_treated_like_201(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    answer = {
        "SMSMessageData": {
            "Message": "Sent to 1/1 Total Cost: KES 0.8000",
            "Recipients": [
                {
                    "statusCode": "101",  # a string, as some AT products send it
                    "number": PHONE,
                    "status": "Success",
                    "cost": "KES 0.8000",
                    "messageId": "ATXid_00ff",
                }
            ],
        }
    }
    fake_at.fail_next(status=200, body=json.dumps(answer), content_type="application/json")
    (result,) = await make_provider(fake_at.base_url).send(
        OutgoingSms("Namaste", (PHONE,)), session=http
    )
    assert (result.outcome, result.status_code, result.provider_message_id) == (
        SendOutcome.ACCEPTED,
        101,
        "ATXid_00ff",
    )


async def test_send_invalid_sender_id_refusal_is_permanent_for_everyone(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession
) -> None:
    # What AT really answers for a sender ID the account may not use: 201 and no Recipients.
    body = json.dumps({"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}})
    fake_at.fail_next(status=201, body=body, content_type="application/json")
    other = "+919876543210"
    results = await make_provider(fake_at.base_url, sender_id="NOTMINE").send(
        OutgoingSms("Namaste", (PHONE, other)), session=http
    )
    assert {r.phone for r in results} == {PHONE, other}
    assert {r.outcome for r in results} == {SendOutcome.PERMANENT_FAILURE}
    assert {r.provider_status for r in results} == {"InvalidSenderId"}


async def test_send_logs_mask_numbers_and_omit_text(
    fake_at: FakeAfricasTalking, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    fake_at.outcomes[PHONE] = 406
    with caplog.at_level(logging.DEBUG, logger="gateway.channels.africastalking"):
        await make_provider(fake_at.base_url).send(
            OutgoingSms("Gopniya shikayat", (PHONE,)), session=http
        )
    assert "+91******5678" in caplog.text
    assert "9812345678" not in caplog.text
    assert "Gopniya" not in caplog.text
    assert API_KEY not in caplog.text


def test_provider_repr_hides_api_key() -> None:
    at = make_provider("https://api.sandbox.africastalking.com")
    assert API_KEY not in repr(at)
    assert at.name == "africastalking"
    assert at.messaging_url == "https://api.sandbox.africastalking.com/version1/messaging"


# --------------------------------------------------------------------------- routes


@dataclass
class RecordingCallbacks:
    """A :class:`Callbacks` that remembers what it was handed."""

    reply: UssdReply = field(default_factory=lambda: UssdReply("1. Nayi shikayat", end=False))
    hops: list[UssdHop] = field(default_factory=list)
    ends: list[UssdSessionEnd] = field(default_factory=list)
    reports: list[DeliveryReport] = field(default_factory=list)
    inbound: list[InboundSms] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.hops) + len(self.ends) + len(self.reports) + len(self.inbound)

    async def ussd_hop(self, hop: UssdHop) -> UssdReply:
        self.hops.append(hop)
        return self.reply

    async def ussd_session_ended(self, end: UssdSessionEnd) -> None:
        self.ends.append(end)

    async def delivery_report(self, report: DeliveryReport) -> None:
        self.reports.append(report)

    async def inbound_sms(self, sms: InboundSms) -> None:
        self.inbound.append(sms)

    async def missed_call(self, call: MissedCall) -> None:
        raise AssertionError("Africa's Talking has no missed-call callback")


@pytest.fixture
def callbacks() -> RecordingCallbacks:
    return RecordingCallbacks()


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, callbacks: RecordingCallbacks) -> Any:
    app = web.Application()
    app[CALLBACKS] = callbacks
    signer = app[SIGNER] = CallbackSigner(public_url="http://127.0.0.1:9")
    signer.arm({AT: "at-test-secret-0123456789"})
    app.add_routes(signer.guard(AT, make_provider("http://127.0.0.1:9").routes()))
    return await aiohttp_client(app)


@pytest.mark.parametrize(
    ("reply", "body"),
    [
        (
            UssdReply("1. Nayi shikayat\n2. Shikayat ki sthiti", end=False),
            "CON 1. Nayi shikayat\n2. Shikayat ki sthiti",
        ),
        (UssdReply("Shikayat darj: HP-2026-000123", end=True), "END Shikayat darj: HP-2026-000123"),
    ],
)
async def test_ussd_route_replies_con_or_end(
    client: Any, callbacks: RecordingCallbacks, reply: UssdReply, body: str
) -> None:
    callbacks.reply = reply
    response = await client.post(signed(client, "/ussd/africastalking"), data=USSD_HOP)
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == body
    assert callbacks.hops == [parse_ussd_hop(USSD_HOP)]


async def test_ussd_route_first_hop_and_devanagari_reply(
    client: Any, callbacks: RecordingCallbacks
) -> None:
    callbacks.reply = UssdReply("1. नई शिकायत\n2. स्थिति", end=False)
    response = await client.post(
        signed(client, "/ussd/africastalking"), data=having(USSD_HOP, text="")
    )
    assert response.status == 200
    assert (await response.read()).decode("utf-8") == "CON 1. नई शिकायत\n2. स्थिति"
    assert callbacks.hops[0].text == ""


async def test_ussd_events_route(client: Any, callbacks: RecordingCallbacks) -> None:
    response = await client.post(signed(client, "/ussd/africastalking/events"), data=USSD_END)
    assert (response.status, await response.text()) == (200, "OK")
    assert callbacks.ends == [parse_ussd_session_end(USSD_END)]


async def test_delivery_route(client: Any, callbacks: RecordingCallbacks) -> None:
    payload = having(DLR, status="Failed", failureReason="DeliveryFailure")
    response = await client.post(signed(client, "/sms/africastalking/delivery"), data=payload)
    assert response.status == 200
    assert callbacks.reports == [parse_delivery_report(payload)]
    assert callbacks.reports[0].state is DeliveryState.FAILED


async def test_inbound_route(client: Any, callbacks: RecordingCallbacks) -> None:
    response = await client.post(signed(client, "/sms/africastalking/inbound"), data=INBOUND)
    assert response.status == 200
    assert callbacks.inbound == [parse_inbound_sms(INBOUND)]


@pytest.mark.parametrize(
    ("path", "payload", "field_name"),
    [
        ("/ussd/africastalking", without(USSD_HOP, "sessionId"), "sessionId"),
        ("/ussd/africastalking", having(USSD_HOP, phoneNumber="+91abc"), "phoneNumber"),
        ("/ussd/africastalking", having(USSD_HOP, text="1" * 1001), "text"),
        ("/ussd/africastalking/events", without(USSD_END, "status"), "status"),
        ("/sms/africastalking/delivery", having(DLR, status="Delivered"), "status"),
        ("/sms/africastalking/delivery", without(DLR, "id"), "id"),
        ("/sms/africastalking/inbound", without(INBOUND, "text"), "text"),
        ("/sms/africastalking/inbound", having(INBOUND, **{"from": "AX-HPGOV"}), "from"),
    ],
)
async def test_routes_answer_400_naming_the_field(
    client: Any, callbacks: RecordingCallbacks, path: str, payload: dict[str, str], field_name: str
) -> None:
    response = await client.post(signed(client, path), data=payload)
    assert response.status == 400
    assert response.content_type == "text/plain"
    assert (await response.text()).startswith(f"{field_name}: ")
    assert callbacks.calls == 0


ROUTE_PATHS = [
    "/ussd/africastalking",
    "/ussd/africastalking/events",
    "/sms/africastalking/delivery",
    "/sms/africastalking/inbound",
]


@pytest.mark.parametrize("path", ROUTE_PATHS)
async def test_routes_reject_json_bodies_with_400(
    client: Any, callbacks: RecordingCallbacks, path: str
) -> None:
    payload = {**USSD_HOP, **USSD_END, **DLR, **INBOUND}
    response = await client.post(signed(client, path), json=payload)
    assert response.status == 400
    assert "body" in await response.text()
    assert callbacks.calls == 0


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(b"", {}, id="empty-no-content-type"),
        pytest.param(b"sessionId=x", {"Content-Type": "text/plain"}, id="text-plain"),
        pytest.param(
            b"sessionId=%FF%FE&text=\xff",
            {"Content-Type": "application/x-www-form-urlencoded"},
            id="invalid-utf8",
        ),
        pytest.param(
            b"sessionId=x",
            {"Content-Type": "application/x-www-form-urlencoded; charset=klingon"},
            id="unknown-charset",
        ),
        pytest.param(b"", {"Content-Type": "application/x-www-form-urlencoded"}, id="empty-form"),
    ],
)
@pytest.mark.parametrize("path", ROUTE_PATHS)
async def test_routes_never_500_on_bad_bodies(
    client: Any, callbacks: RecordingCallbacks, path: str, body: bytes, headers: dict[str, str]
) -> None:
    response = await client.post(signed(client, path), data=body, headers=headers)
    assert response.status == 400
    assert callbacks.calls == 0


async def test_routes_log_masked_numbers_and_no_text(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="gateway.channels.africastalking"):
        await client.post(signed(client, "/ussd/africastalking"), data=USSD_HOP)
        await client.post(signed(client, "/sms/africastalking/inbound"), data=INBOUND)
        await client.post(signed(client, "/sms/africastalking/delivery"), data=DLR)
        await client.post(
            signed(client, "/ussd/africastalking"), data=having(USSD_HOP, phoneNumber="+91abc")
        )
    assert "+91******5678" in caplog.text
    assert "9812345678" not in caplog.text
    assert "Paani" not in caplog.text


async def test_fake_drives_our_delivery_endpoint_end_to_end(
    fake_at: FakeAfricasTalking,
    http: aiohttp.ClientSession,
    client: Any,
    callbacks: RecordingCallbacks,
) -> None:
    (sent,) = await make_provider(fake_at.base_url).send(
        OutgoingSms("Namaste", (PHONE,)), session=http
    )
    assert sent.provider_message_id is not None
    url = str(client.make_url(signed(client, "/sms/africastalking/delivery")))
    status, text = await fake_at.send_delivery_report(
        url, sent.provider_message_id, "Rejected", "UserInBlackList", phone=PHONE, retry_count=1
    )
    assert (status, text) == (200, "OK")
    assert callbacks.reports == [
        DeliveryReport(
            provider_message_id=sent.provider_message_id,
            state=DeliveryState.FAILED,
            provider_status="Rejected",
            failure_reason="UserInBlackList",
            phone=PHONE,
            network_code="40445",
            retry_count=1,
            opted_out=True,
            provider=AT,
        )
    ]


# --------------------------------------------------------------------------- wire compatibility


@pytest.mark.parametrize(
    ("text", "recipients", "sender_id", "bulk"),
    [
        pytest.param("Shikayat HP-2026-000123 darj hui", (PHONE,), None, False, id="plain"),
        pytest.param(
            "शिकायत #123 दर्ज: पानी & बिजली = 50% + नया\nधन्यवाद",
            (PHONE, "+919876543210", "+254711082300"),
            "HPGOVT",
            True,
            id="devanagari-reserved-chars-many-recipients-sender-enqueue",
        ),
    ],
)
async def test_wire_compatible_with_official_sdk(
    fake_at: FakeAfricasTalking,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    recipients: tuple[str, ...],
    sender_id: str | None,
    bulk: bool,
) -> None:
    africastalking = pytest.importorskip("africastalking")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    africastalking.initialize(USERNAME, API_KEY)
    sdk_sms = africastalking.SMS
    # The SDK hard-codes https://api.africastalking.com; its SMS service keeps the base,
    # with "/version1" appended, in _baseUrl and builds URLs as _baseUrl + "/messaging".
    sdk_sms._baseUrl = f"{fake_at.base_url}/version1"

    sdk_answer = await asyncio.to_thread(
        sdk_sms.send, text, list(recipients), sender_id=sender_id, enqueue=bulk
    )
    ours = await make_provider(fake_at.base_url, sender_id=sender_id).send(
        OutgoingSms(text, recipients, bulk=bulk), session=http
    )

    assert len(fake_at.requests) == 2
    sdk_request, our_request = fake_at.requests
    assert our_request.method == sdk_request.method == "POST"
    assert our_request.path == sdk_request.path == "/version1/messaging"
    for header in ("apiKey", "Accept", "Content-Type"):
        assert our_request.header(header) == sdk_request.header(header), header
    assert our_request.form == sdk_request.form
    assert our_request.form["to"] == ",".join(recipients)
    assert our_request.form["message"] == text
    # Same fields in the same order with the same percent-encoding: the same bytes.
    assert our_request.body == sdk_request.body

    # The fake's answer is one the SDK itself parses as JSON (AT's exact content type).
    assert isinstance(sdk_answer, dict)
    sdk_numbers = [r["number"] for r in sdk_answer["SMSMessageData"]["Recipients"]]
    assert sorted(sdk_numbers) == sorted(r.phone for r in ours)
    assert {r.outcome for r in ours} == {SendOutcome.ACCEPTED}

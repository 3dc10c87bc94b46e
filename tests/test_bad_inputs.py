"""The inputs fuzzing found answering 500 (or worse), one test each: callbacks with fields
past their columns or holding a NUL, staff API bodies and queries the database cannot
take, a token header that is not UTF-8, and a token that reached the logs. Also what the
session recorder does with a row the database refuses, and who may list the simulator's
messages. The fuzzer itself is tests/test_fuzz.py."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.channels.base import CALLBACKS, UssdHop
from gateway.ops.logsafe import BAD_REQUEST_BODY, RedactSecrets, redact
from gateway.storage.models import (
    Complaint,
    InboundMessage,
    MessageStatus,
    OutboundMessage,
    StaffRole,
    UssdSession,
)
from gateway.web.callbacks import SessionRecorder
from tests.conftest import Phone, signed
from tests.staff_helpers import auth, make_staff_token

PHONE = "+919812345678"
ENGLISH = "2"


def end_notice(session_id: str = "ATUid_unseen", **changes: str) -> dict[str, str]:
    return {
        "sessionId": session_id,
        "serviceCode": "*1100#",
        "networkCode": "40445",
        "phoneNumber": PHONE,
        "status": "Success",
        "cost": "INR 0.0200",
        "durationInMillis": "48213",
        "hopsCount": "4",
        **changes,
    }


async def raw_request(client: TestClient[Any, Any], head: bytes) -> tuple[int, bytes]:
    """Send ``head`` (a request line and headers) over a socket of its own: no HTTP client
    sends control characters or bytes that are not UTF-8 in a header. The status and body."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head + b"\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


# ------------------------------------------------------------- USSD end-of-session notices


@pytest.mark.parametrize(
    ("changes", "dropped"),
    [
        ({"networkCode": "4" * 17}, "network_code"),
        ({"cost": "INR " + "0" * 40}, "cost"),
        ({"serviceCode": "*" + "1" * 32 + "#"}, "service_code"),
        ({"hopsCount": "9812345678"}, "hops"),
        ({"durationInMillis": "98123456789"}, "duration_ms"),
        ({"cost": "INR\x000.02"}, "cost"),
    ],
)
async def test_an_end_notice_is_recorded_without_a_field_that_does_not_fit(
    client: TestClient[Any, Any], changes: dict[str, str], dropped: str
) -> None:
    """An informational field past its column is dropped: refusing the notice would have
    the network send it again and again, for a field nobody needs."""
    resp = await client.post(
        signed(client, "/ussd/africastalking/events"), data=end_notice(**changes)
    )
    assert resp.status == 200, await resp.text()
    session = await UssdSession.get(session_id="ATUid_unseen")
    assert session.end_status == "Success" and session.phone == PHONE
    assert getattr(session, dropped) in (None, "")
    kept = {"network_code": "40445", "cost": "INR 0.0200", "hops": 4, "duration_ms": 48213}
    for name, value in kept.items():
        if name != dropped:
            assert getattr(session, name) == value


async def test_an_end_notice_keeps_its_free_text_without_nuls(
    client: TestClient[Any, Any],
) -> None:
    notice = end_notice(
        status="Fail\x00ed", errorMessage="timed\x00 out", lastAppResponse="CON\x00 Menu"
    )
    resp = await client.post(signed(client, "/ussd/africastalking/events"), data=notice)
    assert resp.status == 200, await resp.text()
    session = await UssdSession.get(session_id="ATUid_unseen")
    assert (session.end_status, session.error_message) == ("Failed", "timed out")
    assert session.last_response == "CON Menu"


@pytest.mark.parametrize("session_id", ["ATUid_\x00x", "A" * 129, "ATUid_\nx"])
async def test_an_end_notice_for_a_session_id_no_session_can_have_is_refused(
    client: TestClient[Any, Any], session_id: str
) -> None:
    resp = await client.post(
        signed(client, "/ussd/africastalking/events"), data=end_notice(session_id)
    )
    assert resp.status == 400
    assert (await resp.text()).startswith("sessionId: ")
    assert await UssdSession.all().count() == 0


# ------------------------------------------------------------- USSD hops


@pytest.mark.parametrize(
    ("field", "value"),
    [("sessionId", "ATUid_\x00abc"), ("sessionId", "A" * 129), ("serviceCode", "*1100#" * 6)],
)
async def test_a_first_hop_with_an_unusable_identifier_is_refused_at_once(
    client: TestClient[Any, Any], field: str, value: str
) -> None:
    """Refused before the caller typed anything: a session let through here would fail to
    submit the complaint at its last hop ("something went wrong", the complaint lost)."""
    hop = {"sessionId": "ATUid_ok", "serviceCode": "*1100#", "phoneNumber": PHONE, "text": ""}
    resp = await client.post(signed(client, "/ussd/africastalking"), data={**hop, field: value})
    assert resp.status == 400
    assert (await resp.text()).startswith(f"{field}: ")


async def test_a_session_that_got_through_its_first_hop_submits_whatever_is_typed(
    client: TestClient[Any, Any],
) -> None:
    phone = Phone(client, number="+919800000021")
    phone.service_code = "*" + "1" * 30 + "#"  # the longest a session's row holds
    await phone.dial()
    phone.session_id = "ATUid_" + "x" * 122  # as long as its column (and the complaint's key)
    phone.inputs = []
    await phone._hop()
    await phone.walk(ENGLISH, "1", "2", "9", "2", "6", "Pipe\x00 burst near school")
    done = await phone.send("1")
    assert phone.ended and "Ticket:" in done
    complaint = await Complaint.get()
    assert complaint.description == "Pipe burst near school"
    callbacks = client.app[CALLBACKS]
    await callbacks.sessions.flush()  # type: ignore[attr-defined]
    session = await UssdSession.get(session_id=phone.session_id)
    assert session.outcome == "registered" and session.complaint_id == complaint.id


async def test_a_hop_with_an_unusable_network_code_goes_on_without_it(
    client: TestClient[Any, Any],
) -> None:
    hop = {
        "sessionId": "ATUid_net",
        "serviceCode": "*1100#",
        "phoneNumber": PHONE,
        "networkCode": "4" * 17,
        "text": "",
    }
    resp = await client.post(signed(client, "/ussd/africastalking"), data=hop)
    assert resp.status == 200 and (await resp.text()).startswith("CON ")
    await client.app[CALLBACKS].sessions.flush()  # type: ignore[attr-defined]
    session = await UssdSession.get(session_id="ATUid_net")
    assert session.network_code is None


# ------------------------------------------------------------- SMS: inbound and delivery


def inbound(**changes: str) -> dict[str, str]:
    return {"from": PHONE, "to": "51100", "text": "HELP", "id": "ATXid_in1", **changes}


@pytest.mark.parametrize("message_id", ["x" * 101, "ATXid_\x00", "ATXid_\r\n1"])
async def test_an_inbound_sms_whose_id_no_column_takes_is_refused(
    client: TestClient[Any, Any], message_id: str
) -> None:
    resp = await client.post(
        signed(client, "/sms/africastalking/inbound"), data=inbound(id=message_id)
    )
    assert resp.status == 400
    assert (await resp.text()).startswith("id: ")
    assert await InboundMessage.all().count() == 0


async def test_an_inbound_sms_is_kept_without_its_nuls(client: TestClient[Any, Any]) -> None:
    resp = await client.post(
        signed(client, "/sms/africastalking/inbound"), data=inbound(text="HE\x00LP\x00")
    )
    assert resp.status == 200, await resp.text()
    message = await InboundMessage.get(provider_message_id="ATXid_in1")
    assert message.text == "HELP" and message.intent == "help"


@pytest.mark.parametrize("message_id", ["ATXid_\x00abc", "x" * 101])
async def test_a_delivery_report_whose_id_no_column_takes_is_refused(
    client: TestClient[Any, Any], message_id: str
) -> None:
    report = {"id": message_id, "status": "Success", "phoneNumber": PHONE}
    resp = await client.post(signed(client, "/sms/africastalking/delivery"), data=report)
    assert resp.status == 400
    assert (await resp.text()).startswith("id: ")


async def test_a_failure_report_with_a_nul_in_its_reason_is_recorded_without_it(
    client: TestClient[Any, Any],
) -> None:
    phone = Phone(client, number="+919800000022")
    await phone.dial()
    await phone.walk(ENGLISH, "1", "2", "9", "2", "1", "1")  # a complaint: its SMS written
    ack = await OutboundMessage.get(recipient="+919800000022")
    await OutboundMessage.filter(id=ack.id).update(
        status=MessageStatus.SENT, provider_message_id="ATXid_sent1"
    )
    report = {"id": "ATXid_sent1", "status": "Failed", "failureReason": "Absent\x00Subscriber"}
    resp = await client.post(signed(client, "/sms/africastalking/delivery"), data=report)
    assert resp.status == 200, await resp.text()
    await ack.refresh_from_db()
    assert ack.last_error == "AbsentSubscriber"  # and a second chance is on its way


# ------------------------------------------------------------- staff API


@pytest.fixture
async def admin(client: TestClient[Any, Any]) -> dict[str, str]:
    return auth(await make_staff_token(client, "admin", role=StaffRole.STATE_ADMIN))


async def register(client: TestClient[Any, Any], headers: dict[str, str]) -> str:
    body = {
        "phone": "+919800000031",
        "department": "jal_shakti",
        "district": "shimla",
        "block": "theog",
        "issue_type": "pipeline_leak",
    }
    resp = await client.post("/api/v1/complaints", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    ticket: str = (await resp.json())["ticket"]
    return ticket


@pytest.mark.parametrize(
    ("remark", "field"),
    [("Pipe\x00 replaced", "remark"), ("Pipe \udc80 replaced", "remark")],
    ids=["nul", "lone-surrogate"],
)
async def test_a_remark_no_column_takes_is_a_400_naming_it(
    client: TestClient[Any, Any], admin: dict[str, str], remark: str, field: str
) -> None:
    ticket = await register(client, admin)
    body = json.dumps({"remark": remark})  # ensure_ascii: "\\u0000", "\\udc80"
    resp = await client.post(
        f"/api/v1/complaints/{ticket}/notes",
        data=body,
        headers={**admin, "Content-Type": "application/json"},
    )
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert (error["code"], error["field"]) == ("invalid", field)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[" * 5000 + b"]" * 5000, "application/json"),
        (b'{"remark":' * 20 + b"1" + b"}" * 20, "application/json"),
        (b'{"remark": 1' + b"0" * 5000 + b"}", "application/json"),
        (b'{"remark": "Pipe \xff replaced"}', "application/json"),
    ],
    ids=["5000-deep", "past-the-nesting-limit", "5000-digits", "not-utf8"],
)
async def test_a_body_that_is_not_json_we_take_is_a_400(
    client: TestClient[Any, Any], admin: dict[str, str], body: bytes, content_type: str
) -> None:
    ticket = await register(client, admin)
    resp = await client.post(
        f"/api/v1/complaints/{ticket}/notes",
        data=body,
        headers={**admin, "Content-Type": content_type},
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("charset", ["klingon", "latin-1"])
async def test_a_utf8_json_body_is_taken_whatever_charset_it_names(
    client: TestClient[Any, Any], admin: dict[str, str], charset: str
) -> None:
    """JSON is UTF-8 between systems (RFC 8259): the charset a client names is not read
    (an unknown one was a 500)."""
    ticket = await register(client, admin)
    resp = await client.post(
        f"/api/v1/complaints/{ticket}/notes",
        data='{"remark": "पाइप बदला"}'.encode(),
        headers={**admin, "Content-Type": f"application/json; charset={charset}"},
    )
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("month", ["0000-01", "9999-12", "1999-12", "2101-01"])
async def test_a_month_outside_the_years_reviewed_is_a_400(
    client: TestClient[Any, Any], admin: dict[str, str], month: str
) -> None:
    for suffix in ("", ".csv", ".html"):
        resp = await client.get(
            f"/api/v1/reports/monthly{suffix}", params={"month": month}, headers=admin
        )
        assert resp.status == 400
        error = (await resp.json())["error"]
        assert error["field"] == "month" and "between 2000-01 and 2100-12" in error["message"]


@pytest.mark.parametrize(
    "query",
    [{"to": "9999-12-31"}, {"from": "0001-01-01"}, {"q": "wa\x00ter"}, {"district": "\x00"}],
)
async def test_a_complaint_query_the_database_cannot_answer_is_a_400(
    client: TestClient[Any, Any], admin: dict[str, str], query: dict[str, str]
) -> None:
    resp = await client.get("/api/v1/complaints", params=query, headers=admin)
    assert resp.status == 400
    assert (await resp.json())["error"]["field"] == next(iter(query))


async def test_a_ticket_with_a_nul_in_the_path_is_not_found(
    client: TestClient[Any, Any], admin: dict[str, str]
) -> None:
    resp = await client.get("/api/v1/complaints/12%00", headers=admin)
    assert resp.status == 404


@pytest.mark.parametrize(
    "header",
    [b"Bearer spk_\xff\xfe", b"Bearer spk_0123abcd_\xed\xa0\x80", b"Bearer \xc3\x28"],
)
async def test_a_token_header_that_is_not_utf8_is_a_401(
    client: TestClient[Any, Any], header: bytes
) -> None:
    status, body = await raw_request(client, b"GET /api/v1/me HTTP/1.1\r\nAuthorization: " + header)
    assert status == 401
    assert json.loads(body)["error"]["code"] == "unauthorized"


# ------------------------------------------------------------- secrets in logs and answers


async def test_a_token_in_a_header_aiohttp_cannot_parse_is_neither_logged_nor_echoed(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    token = await make_staff_token(client, "admin", role=StaffRole.STATE_ADMIN)
    secret = token.split("_", 2)[2]
    caplog.set_level(logging.DEBUG)
    for junk in (b"\x01x", b"\x7f", b"\r", b"x" * 9000):
        status, body = await raw_request(
            client, b"GET /api/v1/me HTTP/1.1\r\nAuthorization: Bearer " + token.encode() + junk
        )
        assert status == 400
        assert body.decode() == BAD_REQUEST_BODY
    assert secret not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "bad HTTP request" in caplog.text


@pytest.mark.parametrize(
    "line",
    [
        "b'Authorization: Bearer spk_0123abcd_SECRETsecret-_x\\x01x'",
        "{'Authorization': 'Bearer SECRETsecret', 'Host': 'x'}",
        "authorization=SECRETsecret",
        "token spk_0123abcd_SECRETsecret-_x in a traceback",
        "headers {'apiKey': 'atsk_SECRETsecret'}",
        "Bearer SECRETsecret",
    ],
)
def test_redact_leaves_no_secret(line: str) -> None:
    clean = redact(line)
    assert "SECRET" not in clean and "[redacted]" in clean


def test_the_filter_redacts_a_records_arguments_and_traceback() -> None:
    try:
        raise ValueError("Authorization: Bearer spk_0123abcd_SECRETsecret")
    except ValueError:
        record = logging.LogRecord(
            "aiohttp.server",
            logging.ERROR,
            __file__,
            1,
            "from %s: %s",
            ("127.0.0.1", "Bearer SECRETsecret"),
            sys.exc_info(),
        )
    assert RedactSecrets().filter(record)
    text = logging.Formatter().format(record)
    assert "SECRET" not in text
    assert "from 127.0.0.1: Bearer [redacted]" in text and "ValueError" in text


async def test_the_application_redacts_every_record_whatever_handler_gets_it(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """create_app installs the redaction for every record: pytest's handler here came
    after it."""
    logging.getLogger("aiohttp.server").warning("raw: %s", "Authorization: Bearer abc123")
    assert "abc123" not in caplog.text and "Authorization: [redacted]" in caplog.text


# ------------------------------------------------------------- the session recorder


async def test_one_row_the_database_refuses_takes_no_other_with_it(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = SessionRecorder(delay=3600)  # flushed by hand
    for n in range(20):
        hop = UssdHop(f"ATUid_good{n}", "*1100#", PHONE, "40445", "", provider="africastalking")
        recorder.started(hop, "en_IN")
    # What no parser lets through, as a provider of tomorrow might: a code past its column.
    bad = UssdHop("ATUid_bad", "*1100#" * 10, PHONE, "40445", "", provider="africastalking")
    recorder.started(bad, "en_IN")
    with caplog.at_level(logging.ERROR, logger="gateway.web.callbacks"):
        await recorder.flush()
    assert await UssdSession.filter(session_id__startswith="ATUid_good").count() == 20
    assert not await UssdSession.exists(session_id="ATUid_bad")
    assert recorder.set_aside == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.web.callbacks"]
    assert len(lines) == 1 and "refused 1 of 21" in lines[0] and "ATUid_bad" in lines[0]
    assert PHONE not in lines[0]
    await recorder.close()


# ------------------------------------------------------------- the simulator's listing


async def test_the_simulators_listing_answers_this_machine_only(
    client: TestClient[Any, Any],
) -> None:
    resp = await client.get("/simulator/sms", params={"to": PHONE})
    assert resp.status == 200
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        resp = await client.get(
            "/simulator/sms", params={"to": PHONE}, headers={header: "203.0.113.9"}
        )
        assert resp.status == 403

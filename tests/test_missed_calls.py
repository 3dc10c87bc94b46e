"""Missed calls through Exotel's Passthru applet: the caller is texted the USSD code and the
helpline's number in their remembered language (Hindi otherwise), once an hour at most;
the month's missed calls are counted in the monthly review."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.app import CONFIG
from gateway.complaints.scope import Scope
from gateway.reports.render import review_html
from gateway.reports.review import monthly_review
from gateway.storage.models import Citizen, MissedCall, OutboundMessage
from tests.conftest import Clock, signed

PATH = "/calls/exotel/missed"
HELPLINE = "01140000000"  # the ExoPhone the call flow answers on
_sids = itertools.count(1)


async def missed_call(
    client: TestClient[Any, Any], number: str, *, sid: str = "", path: str | None = None
) -> int:
    """Exotel's Passthru GET for a missed call from ``number`` (0-prefixed, as Exotel writes)."""
    query = {
        "CallSid": sid or f"b6cfaf5d1b4a0c6e{next(_sids):04d}",
        "CallFrom": number,
        "CallTo": HELPLINE,
        "CallStatus": "completed",
        "Direction": "incoming",
        "Created": "Mon, 23 Nov 2026 10:15:02",
        "DialCallDuration": "0",
        "StartTime": "2026-11-23 10:15:02",
        "EndTime": "2026-11-23 10:15:05",
        "CallType": "call-attempt",
        "digits": "",
    }
    resp = await client.get(path or signed(client, PATH), params=query)
    return resp.status


async def texts_to(number: str) -> list[OutboundMessage]:
    return await OutboundMessage.filter(recipient=number, template="missed_call_reply").order_by(
        "id"
    )


async def test_a_missed_call_is_answered_in_the_remembered_language(
    app_client: TestClient[Any, Any],
) -> None:
    await Citizen.create(phone="+919812345678", language="en_IN")
    assert await missed_call(app_client, "09812345678") == 200
    [sms] = await texts_to("+919812345678")
    assert sms.language == "en_IN"
    assert "dial *1100#" in sms.text and HELPLINE in sms.text
    assert sms.status == "queued"  # written with the decision, delivered by the worker


async def test_an_unknown_caller_is_answered_in_hindi(app_client: TestClient[Any, Any]) -> None:
    assert await missed_call(app_client, "09800000001") == 200
    [sms] = await texts_to("+919800000001")
    assert sms.language == "hi" and "*1100#" in sms.text and "डायल" in sms.text


async def test_a_second_missed_call_within_the_hour_gets_nothing_more(
    app_client: TestClient[Any, Any], clock: Clock
) -> None:
    number = "+919800000002"
    assert await missed_call(app_client, "09800000002") == 200
    clock.advance(minutes=40)
    assert await missed_call(app_client, "09800000002") == 200
    assert len(await texts_to(number)) == 1
    clock.advance(minutes=21)  # an hour after the SMS
    assert await missed_call(app_client, "09800000002") == 200
    assert len(await texts_to(number)) == 2
    assert [c.replied for c in await MissedCall.filter(phone=number).order_by("id")] == [
        True,
        False,
        True,
    ]


async def test_a_retried_callback_is_taken_once(app_client: TestClient[Any, Any]) -> None:
    for _ in range(2):
        assert await missed_call(app_client, "09800000003", sid="sameSid") == 200
    assert await MissedCall.filter(phone="+919800000003").count() == 1
    assert len(await texts_to("+919800000003")) == 1


async def test_a_missed_call_without_the_secret_gets_404_and_no_sms(
    app_client: TestClient[Any, Any],
) -> None:
    assert await missed_call(app_client, "09800000004", path=PATH) == 404
    assert await missed_call(app_client, "09800000004", path=PATH + "/x" * 2) == 404
    assert not await MissedCall.exists()
    assert not await OutboundMessage.exists()


async def test_a_garbled_call_gets_400_naming_the_field(app_client: TestClient[Any, Any]) -> None:
    resp = await app_client.get(signed(app_client, PATH), params={"CallSid": "x"})
    assert resp.status == 400 and (await resp.text()).startswith("CallFrom: ")
    resp = await app_client.get(signed(app_client, PATH), params={"CallFrom": "09800000005"})
    assert resp.status == 400 and (await resp.text()).startswith("CallSid: ")


async def test_missed_calls_are_counted_in_the_monthly_review(
    app_client: TestClient[Any, Any], clock: Clock
) -> None:
    clock.now = clock.now.replace(month=10, day=5)
    await missed_call(app_client, "09800000006")
    await missed_call(app_client, "09800000006")  # within the hour: no SMS
    await missed_call(app_client, "09800000007")
    clock.now = clock.now.replace(month=11, day=5)
    await missed_call(app_client, "09800000008")  # another month
    config = app_client.app[CONFIG]
    review = await monthly_review(month="2026-10", scope=Scope(), config=config, now=clock.now)
    assert review.missed_calls is not None
    assert (review.missed_calls.calls, review.missed_calls.texted) == (3, 2)
    assert review.missed_calls.numbers == 2
    assert "<p>3 missed calls from 2 numbers; 2 texted back" in review_html(review, title="HP")
    district = await monthly_review(
        month="2026-10", scope=Scope(district="shimla"), config=config, now=clock.now
    )
    assert district.missed_calls is None  # a call names no area

"""A citizen registers a complaint over USSD, hop by hop, as Africa's Talking sends it."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import CALLBACKS
from gateway.storage.models import Citizen, Complaint, ComplaintEvent, OutboundMessage, UssdSession
from gateway.text.tickets import verhoeff_is_valid
from tests.conftest import Phone, run_worker, signed

# Sample config: 2 Jal Shakti, 9 Shimla, 2 Theog, 1 "No water supply"; hi is the default.
ENGLISH, HINDI = "2", "1"


@pytest.mark.parametrize("send_twice", [False, True], ids=["once", "every-hop-twice"])
async def test_english_registration_end_to_end(
    client: TestClient[Any, Any], send_twice: bool
) -> None:
    phone = Phone(client, send_twice=send_twice)
    first = await phone.dial()
    assert "1 हिन्दी (Hindi)" in first and "2 English" in first
    assert "New complaint" in await phone.send(ENGLISH)
    assert "Choose department:" in await phone.send("1")
    assert "Choose district:" in await phone.send("2")
    blocks = await phone.send("9")
    assert "Choose block:" in blocks and "Theog" in blocks
    issues = await phone.send("2")
    assert "No water supply" in issues
    confirm = await phone.send("1")
    assert "Jal Shakti (Water): No water supply" in confirm
    assert "Theog, Shimla" in confirm
    done = await phone.send("1")
    assert phone.ended

    complaint = await Complaint.get()
    assert complaint.ticket is not None and verhoeff_is_valid(complaint.ticket)
    assert f"Ticket: {complaint.ticket}" in done
    assert (complaint.department, complaint.issue_type) == ("jal_shakti", "no_water_supply")
    assert (complaint.district, complaint.tehsil, complaint.block) == ("shimla", "theog", "theog")
    assert complaint.language == "en_IN" and complaint.channel == "ussd"
    events = await ComplaintEvent.filter(complaint=complaint).order_by("id")
    assert [e.kind for e in events] == ["registered", "assigned"]
    assert complaint.status == "assigned" and complaint.officer == "js_theog_je"

    messages = await OutboundMessage.filter(recipient="+919812345678")
    assert len(messages) == 1, "exactly one acknowledgement"
    ack = messages[0]
    officer = await OutboundMessage.exclude(recipient="+919812345678")
    assert [m.template for m in officer] == ["officer_new_complaint"], "and one to the officer"
    assert ack.recipient == "+919812345678" and complaint.ticket in ack.text
    assert ack.status == "queued" and ack.encoding == "gsm7" and ack.segments == 1

    await run_worker(client.app)
    await ack.refresh_from_db()
    assert ack.status == "delivered"
    assert await OutboundMessage.filter(recipient="+919812345678").count() == 1
    recorder = client.app[CALLBACKS].sessions
    assert recorder is not None
    await recorder.flush()  # session rows are written a few at a time, just after the hop
    session = await UssdSession.get(session_id=phone.session_id)
    assert session.outcome == "registered" and session.complaint_id == complaint.id


@pytest.mark.parametrize("send_twice", [False, True], ids=["once", "every-hop-twice"])
async def test_hindi_registration_with_typed_description(
    client: TestClient[Any, Any], send_twice: bool
) -> None:
    phone = Phone(client, number="+919800000011", send_twice=send_twice)
    await phone.dial()
    assert "नई शिकायत" in await phone.send(HINDI)
    assert "विभाग चुनें:" in await phone.walk("1")
    await phone.walk("2", "9", "2")  # Jal Shakti, Shimla, Theog
    issues = await phone.send("98")  # the list does not fit one Hindi screen
    assert "अन्य (लिखें)" in issues
    other = next(line for line in issues.splitlines() if "अन्य" in line).split()[0]
    assert "समस्या कुछ शब्दों में लिखें:" in await phone.send(other)
    confirm = await phone.send("Nal se * ganda paani")
    assert "Nal se * ganda paani" in confirm
    done = await phone.send("1")
    complaint = await Complaint.get()
    assert complaint.description == "Nal se * ganda paani" and complaint.issue_type is None
    assert complaint.language == "hi"
    assert f"शिकायत सं.: {complaint.ticket}" in done
    ack = await OutboundMessage.get(recipient="+919800000011")
    assert complaint.ticket in ack.text and "जल शक्ति" in ack.text and ack.encoding == "ucs2"
    assert ack.segments <= 2
    assert await OutboundMessage.filter(recipient="+919800000011").count() == 1


async def test_language_is_remembered_for_the_number(client: TestClient[Any, Any]) -> None:
    phone = Phone(client, number="+919800000012")
    await phone.dial()
    await phone.send(ENGLISH)
    assert (await Citizen.get(phone="+919800000012")).language == "en_IN"
    again = await phone.dial()
    assert again.startswith("Mukhyamantri Seva Sankalp") and "New complaint" in again
    changed = await phone.send("4")  # Change language
    assert "English" in changed
    assert "नई शिकायत" in await phone.send(HINDI)
    assert (await Citizen.get(phone="+919800000012")).language == "hi"


async def test_navigation_back_more_and_main(phone: Phone) -> None:
    await phone.dial()
    await phone.walk(HINDI, "1")
    page1 = phone.screens[-1]
    page2 = await phone.send("98")
    assert page2 != page1 and "98 आगे" in page1
    assert await phone.send("0") == page1, "0 on a later page goes to the previous page"
    await phone.send("0")
    assert "नई शिकायत" in phone.screens[-1], "0 on a first page goes to the previous screen"
    await phone.walk("1", "2")
    assert "जिला चुनें:" in phone.screens[-1]
    assert "नई शिकायत" in await phone.send("00")


async def test_a_wrong_input_reshows_the_screen_with_a_hint(phone: Phone) -> None:
    await phone.dial()
    await phone.walk(ENGLISH, "1")
    departments = phone.screens[-1]
    wrong = await phone.send("42")
    assert wrong.startswith("Wrong choice. Try again:")
    assert wrong.splitlines()[1:] == departments.splitlines()[1:]
    assert "Choose district:" in await phone.send("2")
    await phone.walk("9", "2", "1")  # to the confirm screen
    wrong = await phone.send("7")
    assert wrong.startswith("Wrong choice. Try again:") and "No water supply" in wrong


async def test_too_short_a_description_is_refused_politely(phone: Phone) -> None:
    await phone.dial()
    await phone.walk(ENGLISH, "1", "2", "9", "2", "6")
    assert "Too short" in await phone.send("ab")
    assert "Confirm complaint:" in await phone.send("No water since Monday")


async def test_a_dropped_session_can_be_continued(client: TestClient[Any, Any]) -> None:
    phone = Phone(client, number="+919800000013")
    await phone.dial()
    await phone.walk(ENGLISH, "1", "2", "9", "2", "6", "Pipe burst near school")
    # The network drops the session here; the citizen dials again.
    offer = await phone.dial()
    assert "unfinished complaint" in offer
    confirm = await phone.send("1")
    assert "Pipe burst near school" in confirm and "Theog, Shimla" in confirm
    await phone.send("1")
    complaint = await Complaint.get()
    assert complaint.description == "Pipe burst near school"
    # Finished: no offer any more.
    assert "unfinished" not in await phone.dial()


async def test_starting_over_forgets_the_unfinished_complaint(client: TestClient[Any, Any]) -> None:
    phone = Phone(client, number="+919800000014")
    await phone.dial()
    await phone.walk(ENGLISH, "1", "2", "9")
    assert "unfinished complaint" in await phone.dial()
    assert "New complaint" in await phone.send("2")
    assert "unfinished" not in await phone.dial()
    assert await Complaint.all().count() == 0


async def test_network_sending_only_the_latest_input(client: TestClient[Any, Any]) -> None:
    """Some operators send only the newest input instead of the whole path."""
    session = "ATUid_latest_only"

    async def hop(text: str) -> str:
        resp = await client.post(
            signed(client, "/ussd/africastalking"),
            data={
                "sessionId": session,
                "serviceCode": "*1100#",
                "phoneNumber": "+919800000015",
                "networkCode": "40445",
                "text": text,
            },
        )
        return await resp.text()

    await hop("")
    for value in (ENGLISH, "1", "2", "9", "2", "1"):
        body = await hop(value)
    assert "Confirm complaint:" in body
    assert (await hop("1")).startswith("END Complaint registered")


async def test_first_hop_with_inputs_in_the_dialled_code(client: TestClient[Any, Any]) -> None:
    resp = await client.post(
        signed(client, "/ussd/africastalking"),
        data={
            "sessionId": "ATUid_shortcut",
            "serviceCode": "*1100#",
            "phoneNumber": "+919800000016",
            "networkCode": "40445",
            "text": "2*1",
        },
    )
    assert "Choose department:" in await resp.text()


@pytest.mark.parametrize(
    "form, field",
    [
        ({"serviceCode": "*1100#", "phoneNumber": "+919800000017", "text": ""}, "sessionId"),
        ({"sessionId": "x", "serviceCode": "*1100#", "text": ""}, "phoneNumber"),
        (
            {"sessionId": "x", "serviceCode": "*1100#", "phoneNumber": "hello", "text": ""},
            "phoneNumber",
        ),
    ],
)
async def test_malformed_callbacks_get_a_400_naming_the_field(
    client: TestClient[Any, Any], form: dict[str, str], field: str
) -> None:
    resp = await client.post(signed(client, "/ussd/africastalking"), data=form)
    assert resp.status == 400
    assert field in await resp.text()


async def test_session_end_notice_is_recorded(client: TestClient[Any, Any], phone: Phone) -> None:
    await phone.dial()
    resp = await client.post(
        signed(client, "/ussd/africastalking/events"),
        data={
            "sessionId": phone.session_id,
            "serviceCode": "*1100#",
            "phoneNumber": phone.number,
            "networkCode": "40445",
            "status": "Incomplete",
            "durationInMillis": "61234",
            "hopsCount": "1",
            "input": "",
            "lastAppResponse": "CON ...",
            "errorMessage": "USER_TIMEOUT",
            "cost": "0.0",
            "date": "2026-11-23 10:15:02",
        },
    )
    assert resp.status == 200
    session = await UssdSession.get(session_id=phone.session_id)
    assert session.end_status == "Incomplete" and session.duration_ms == 61234
    assert session.error_message == "USER_TIMEOUT"


async def test_two_citizens_get_different_tickets(client: TestClient[Any, Any]) -> None:
    tickets = set()
    for n in range(3):
        phone = Phone(client, number=f"+91980000002{n}")
        await phone.dial()
        await phone.walk(ENGLISH, "1", "2", "9", "2", "1", "1")
        tickets.add(phone.screens[-1].split("Ticket: ")[1].split(".")[0])
    assert len(tickets) == 3
    assert {c.ticket for c in await Complaint.all()} == tickets

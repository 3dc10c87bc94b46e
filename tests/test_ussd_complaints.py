"""A citizen follows their complaints over USSD: the list, one complaint, rating it, a
status check by ticket, and the monthly limit."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from gateway.config import Config
from gateway.storage.models import Complaint
from tests.conftest import AppFactory, Phone, make_config, signed

ENGLISH, HINDI = "2", "1"
MY_COMPLAINTS, CHECK_STATUS = "2", "3"


async def register(client: TestClient[Any, Any], number: str, language: str = ENGLISH) -> str:
    phone = Phone(client, number=number)
    await phone.dial()
    await phone.walk(language, "1", "2", "9", "2", "1", "1")
    return phone.screens[-1]


async def test_my_complaints_lists_newest_first_and_rates_a_resolved_one(
    client: TestClient[Any, Any],
) -> None:
    await register(client, "+919822000001")
    phone = Phone(client, number="+919822000001")
    await phone.dial()
    await phone.send("1")
    await phone.walk("3", "9", "2", "2", "1")  # a second one: Electricity
    first, second = await Complaint.all().order_by("id")
    await phone.dial()
    listing = await phone.send(MY_COMPLAINTS)
    lines = listing.splitlines()
    assert lines[0] == "Your complaints:"
    assert lines[1].startswith(f"1 {second.ticket}") and lines[2].startswith(f"2 {first.ticket}")
    detail = await phone.send("2")
    assert f"Ticket {first.ticket}" in detail and "Jal Shakti (Water)" in detail
    assert "Due by" in detail and "Solved" not in detail

    resp = await client.post(
        signed(client, "/sms/africastalking/inbound"),
        data={
            "from": "+919800100001",
            "to": "51100",
            "text": f"{first.ticket} DONE fixed",
            "id": "ATXid_rate1",
            "date": "2026-11-23 10:00:00",
        },
    )
    assert resp.status == 200
    await phone.dial()
    await phone.send(MY_COMPLAINTS)
    detail = await phone.send("2")
    assert "Resolved" in detail and "1 Solved" in detail and "2 Not solved" in detail
    done = await phone.send("1")
    assert phone.ended and "closed" in done
    await first.refresh_from_db()
    assert first.status == "closed"


async def test_no_complaints_yet(phone: Phone) -> None:
    await phone.dial()
    await phone.send(ENGLISH)
    assert (await phone.send(MY_COMPLAINTS)).startswith("You have no complaints yet.")


async def test_check_status_by_ticket_rejects_a_mistyped_digit(
    client: TestClient[Any, Any],
) -> None:
    await register(client, "+919822000002", HINDI)
    c = await Complaint.get()
    assert c.ticket is not None
    mistyped = c.ticket[:-2] + str((int(c.ticket[-2]) + 1) % 10) + c.ticket[-1]
    other = Phone(client, number="+919822000003")
    await other.dial()
    await other.send(HINDI)
    assert "शिकायत संख्या लिखें:" in await other.send(CHECK_STATUS)
    assert "संख्या सही नहीं है" in await other.send(mistyped)
    shown = await other.send(c.ticket)
    assert c.ticket in shown and "जल शक्ति" in shown and "अधिकारी के पास" in shown
    assert "समाधान हो गया" not in shown, "only the owner rates a complaint"


async def test_monthly_limit_per_number(
    start_app: AppFactory, tmp_path: Any, database_url: str, redis_url: str
) -> None:
    config: Config = make_config(
        tmp_path, database_url, redis_url, lifecycle={"monthly_limit_per_number": 2}
    )
    client = await start_app(config)
    assert "Ticket" in await register(client, "+919822000004")
    phone = Phone(client, number="+919822000004")
    await phone.dial()  # the language is known now: the main menu comes first
    await phone.walk("1", "2", "9", "2", "1", "1")
    assert "Ticket" in phone.screens[-1]
    await phone.dial()
    refused = await phone.send("1")
    assert phone.ended and "2 complaints this month" in refused
    assert await Complaint.all().count() == 2

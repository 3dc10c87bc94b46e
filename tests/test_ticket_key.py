"""The ticket key: generated and stored at a database's first start, kept across restarts,
overridden by ``tickets.key``; the public sample key is kept only where tickets were already
made with it, and refused outside the simulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from tortoise import Tortoise
from tortoise.migrations.api import migrate

from gateway.app import COMPLAINTS, create_app
from gateway.complaints.registration import NewComplaint
from gateway.config import SAMPLE_TICKET_KEY, Config, ConfigError, load_config
from gateway.storage.db import close_database, tortoise_config
from gateway.storage.models import Channel, Complaint, Setting
from gateway.storage.sql import param
from gateway.text.tickets import TicketCodec
from tests.conftest import SHIPPED_CONFIG, make_config

Install = Callable[..., Any]


@pytest.fixture
def install(tmp_path: Path, redis_url: str, aiohttp_client: Any) -> Callable[..., Any]:
    """Starts the gateway on a database; the previous one started is stopped first (the
    database layer holds one set of connections per process)."""
    running: list[TestClient[Any, Any]] = []

    async def start(database_url: str, **overrides: Any) -> TestClient[Any, Any]:
        if running:
            await running.pop().close()
        config = make_config(tmp_path, database_url, redis_url, **overrides)
        client: TestClient[Any, Any] = await aiohttp_client(create_app(config))
        running.append(client)
        return client

    return start


async def register(client: TestClient[Any, Any], n: int) -> str:
    registration = await client.app[COMPLAINTS].register(
        NewComplaint(
            phone=f"+9198123450{n:02d}",
            language="en_IN",
            department="jal_shakti",
            issue_type="no_water_supply",
            district="shimla",
            block="theog",
            channel=Channel.USSD,
            source_key=f"test:{n}",
        )
    )
    assert registration.complaint_id == n
    return registration.ticket


def sample_ticket(serial: int) -> str:
    return TicketCodec(key=SAMPLE_TICKET_KEY.encode()).encode(serial)


async def test_two_new_installations_give_complaint_1_different_tickets(
    install: Install, new_database: Callable[[], str]
) -> None:
    first = await register(await install(new_database()), 1)
    second = await register(await install(new_database()), 1)
    assert first != second
    assert sample_ticket(1) not in (first, second)


async def test_a_restart_keeps_the_key(install: Install, new_database: Callable[[], str]) -> None:
    url = new_database()
    first = await register(await install(url), 1)
    [stored] = await Setting.filter(name="tickets.key")  # beside the callback secrets
    second = await register(await install(url), 2)  # the same database, started again
    assert await Setting.filter(name="tickets.key").values_list("value", flat=True) == [
        stored.value
    ]
    codec = TicketCodec(key=stored.value.encode())
    assert (first, second) == (codec.encode(1), codec.encode(2))


async def test_a_configured_key_wins_over_the_stored_one(
    install: Install, new_database: Callable[[], str]
) -> None:
    url = new_database()
    await install(url)  # first start: a key generated and stored
    client = await install(url, environ={"TICKETS_KEY": "chosen-by-the-operator"})
    assert await Setting.exists(name="tickets.key"), (
        "the stored key stays for when the setting goes"
    )
    expected = TicketCodec(key=b"chosen-by-the-operator").encode(1)
    assert await register(client, 1) == expected


async def test_a_database_with_tickets_but_no_stored_key_keeps_the_sample_key(
    install: Install, new_database: Callable[[], str], config: Config
) -> None:
    """An installation from before keys were stored made its tickets with the sample key
    (then the default): new tickets must come from it too, or they may equal old ones."""
    url = new_database()
    old = config.model_copy(update={"database": config.database.model_copy(update={"url": url})})
    tc = tortoise_config(old)
    await migrate(config=tc, target="models.0011_citizen_and_message_lookups")
    await Tortoise.close_connections()
    await Tortoise.init(config=tc)
    # Written as that release wrote them: today's models have columns that schema lacks.
    conn = Tortoise.get_connection("default")
    now = datetime(2026, 11, 2, tzinfo=UTC)
    p = ", ".join(param(conn, i) for i in range(1, 7))
    await conn.execute_query(
        'INSERT INTO "citizen" ("phone", "language", "latin_only", "opted_out", "created_at", '
        f'"updated_at") VALUES ({p})',
        ["+919812345000", "en_IN", False, False, now, now],
    )
    rows = await conn.execute_query_dict('SELECT "id" FROM "citizen"')
    await Complaint.create(
        citizen_id=rows[0]["id"],
        ticket=sample_ticket(1),
        language="en_IN",
        department="jal_shakti",
        district="shimla",
        tehsil="theog",
        block="theog",
        channel=Channel.USSD,
        due_at=datetime(2026, 11, 9, tzinfo=UTC),
        source_key="ussd:before-the-upgrade",
    )
    await close_database()

    client = await install(url)
    assert await Setting.filter(name="tickets.key").values_list("value", flat=True) == [
        SAMPLE_TICKET_KEY
    ]
    assert await register(client, 2) == sample_ticket(2)
    found = await client.app[COMPLAINTS].find(sample_ticket(1), phone="+919812345000")
    assert found is not None and found.owned


def test_the_sample_key_is_refused_with_a_real_provider() -> None:
    real = {"SMS_PROVIDER": "africastalking", "AT_API_KEY": "atsk_not_a_real_key"}
    with pytest.raises(ConfigError) as excinfo:
        load_config(SHIPPED_CONFIG, environ={**real, "TICKETS_KEY": SAMPLE_TICKET_KEY})
    message = str(excinfo.value)
    assert "tickets.key" in message and "public sample key" in message
    assert "\n" not in message
    assert load_config(SHIPPED_CONFIG, environ=real).tickets.key is None
    simulator = load_config(SHIPPED_CONFIG, environ={"TICKETS_KEY": SAMPLE_TICKET_KEY})
    assert simulator.tickets.key == SAMPLE_TICKET_KEY

"""The citizen's own lookups read through an index, not the whole table.

Before each registration the gateway counts the number's complaints this month, and "My
complaints" lists them: with no index on ``complaint.citizen_id`` both read every complaint
(every complaint of the month, for the count), which a state's helpline fills by the
hundred thousand. These tests capture the statements the domain code sends (SQLite's trace)
and ask SQLite for their plans. Not timed: a plan is the same on any machine.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from tortoise.connection import get_connection

from gateway.app import COMPLAINTS
from gateway.storage.models import OutboundMessage

pytestmark = pytest.mark.skipif(
    os.environ.get("SAMPARK_TEST_DATABASE") == "postgres",
    reason="SQLite's plans (PostgreSQL plans small tables with a sequential scan anyway)",
)


@asynccontextmanager
async def traced() -> AsyncIterator[list[str]]:
    """The statements SQLite runs in the block, with their values filled in."""
    seen: list[str] = []
    client: Any = get_connection("default")
    conn = client._connection  # the aiosqlite connection: its thread owns the sqlite3 one
    await conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        await conn.set_trace_callback(None)


async def plans(run: Callable[[], Awaitable[Any]], table: str) -> list[str]:
    """The plan lines of the statements ``run`` sends that read ``table``."""
    async with traced() as seen:
        await run()
    statements = [s for s in seen if s.lstrip().upper().startswith("SELECT") and table in s]
    assert statements, f"no SELECT from {table} was sent"
    conn = get_connection("default")
    return [
        str(row["detail"])
        for sql in statements
        for row in await conn.execute_query_dict(f"EXPLAIN QUERY PLAN {sql}")
    ]


async def test_the_monthly_count_and_my_complaints_use_the_citizen_index(
    client: TestClient[Any, Any],
) -> None:
    service = client.app[COMPLAINTS]
    for plan in (
        await plans(lambda: service.registered_this_month("+919812345678"), "complaint"),
        await plans(lambda: service.recent("+919812345678"), "complaint"),
    ):
        complaint_lines = [line for line in plan if " complaint " in f"{line} "]
        assert complaint_lines, plan
        assert all("SCAN" not in line for line in complaint_lines), plan
        assert any("citizen_id" in line for line in complaint_lines), plan


async def test_a_complaints_messages_are_found_by_index(client: TestClient[Any, Any]) -> None:
    async def messages() -> None:
        await OutboundMessage.filter(complaint_id=1).values_list("id", flat=True)

    plan = await plans(messages, "outbound_message")
    assert all("SCAN" not in line for line in plan), plan
    assert any("complaint_id" in line for line in plan), plan

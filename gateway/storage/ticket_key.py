"""The ticket key: configured (``tickets.key``, ``TICKETS_KEY``), or generated at the
database's first start and kept in it.

Every process on the database (server, worker, commands) and every restart reads the same
key, and no two installations share one, so a ticket does not tell how many complaints came
before it. The database keeps the key its tickets are made with: a changed key would give
new complaints tickets that may equal old ones (the column is unique), so the first key
stays. A database from before keys were stored, which already has complaints, keeps the
sample key that was then everyone's default.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

from tortoise.connection import get_connection

from gateway.config import SAMPLE_TICKET_KEY, Config
from gateway.storage.models import Complaint
from gateway.storage.sql import param
from gateway.text.tickets import TicketCodec

__all__ = ["ticket_codec", "ticket_key"]

log = logging.getLogger(__name__)

SETTING = "tickets.key"
"""The row of the ``setting`` table that holds the key."""


async def ticket_key(config: Config) -> str:
    """The key tickets are made with: ``tickets.key`` when configured, else the database's
    own, stored at its first start (by whichever process gets there first)."""
    stored = await _stored()
    if stored is None:
        stored = await _store(await _first_key(config))
    configured = config.tickets.key
    if configured is None:
        return stored
    if configured != stored and await Complaint.exists():
        log.warning(
            "tickets.key is not the key this database's tickets were made with: the "
            "configured one is used, and a complaint whose new ticket equals an old one "
            "cannot be registered"
        )
    return configured


async def ticket_codec(config: Config) -> TicketCodec:
    """The codec for :func:`ticket_key` and ``tickets.digits``."""
    key = await ticket_key(config)
    return TicketCodec(key=key.encode(), body_digits=config.tickets.digits)


async def _first_key(config: Config) -> str:
    if config.tickets.key is not None:
        return config.tickets.key
    if await Complaint.exists():
        log.warning(
            "this database's tickets were made with the public sample key: it is kept, "
            "since another key would give new complaints tickets that clash with them"
        )
        return SAMPLE_TICKET_KEY
    return secrets.token_urlsafe(32)


async def _stored() -> str | None:
    conn = get_connection("default")
    rows = await conn.execute_query_dict(
        f'SELECT "value" FROM "setting" WHERE "name" = {param(conn, 1)}', [SETTING]
    )
    return str(rows[0]["value"]) if rows else None


async def _store(key: str) -> str:
    """Insert ``key`` unless a key is there already; the key that is there now (another
    process starting at the same moment may have written its own first)."""
    conn = get_connection("default")
    p = [param(conn, i) for i in (1, 2, 3)]
    await conn.execute_query(
        f'INSERT INTO "setting" ("name", "value", "created_at") VALUES ({p[0]}, {p[1]}, {p[2]}) '
        'ON CONFLICT ("name") DO NOTHING',
        [SETTING, key, datetime.now(UTC)],
    )
    stored = await _stored()
    assert stored is not None
    return stored

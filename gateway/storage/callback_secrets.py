"""Each provider's callback secret: configured (``callbacks.secrets``), or generated at the
first start that needs it and kept in the database (the ``setting`` table, beside the
ticket key).

Every process on the database (server, worker, ``python -m gateway callbacks``, the phone
simulator) reads the same secret, so the URLs pasted into a provider's dashboard stay
right across restarts; no two installations share one.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.connection import get_connection

from gateway.config import Config
from gateway.storage.sql import param

__all__ = ["CallbackSecrets", "callback_secrets", "setting_name"]


def setting_name(provider: str) -> str:
    """The ``setting`` row holding ``provider``'s secret."""
    return f"callbacks.{provider}.secret"


@dataclass(frozen=True)
class CallbackSecrets:
    by_provider: dict[str, str]
    """Provider name -> its secret."""
    generated: tuple[str, ...]
    """The providers whose secret this call generated (to tell the operator, once)."""


async def callback_secrets(config: Config, providers: Iterable[str]) -> CallbackSecrets:
    """The secret of each of ``providers``: ``callbacks.secrets`` when configured, else the
    database's own, generated and stored now if it has none (by whichever process gets
    there first: the secret stored is the one returned)."""
    found: dict[str, str] = {}
    generated: list[str] = []
    for provider in providers:
        configured = config.callbacks.secrets.get(provider)
        if configured is not None:
            found[provider] = configured
            continue
        stored = await _stored(provider)
        if stored is None:
            fresh = secrets.token_urlsafe(24)
            stored = await _store(provider, fresh)
            if stored == fresh:
                generated.append(provider)
        found[provider] = stored
    return CallbackSecrets(found, tuple(generated))


async def _stored(provider: str) -> str | None:
    conn = get_connection("default")
    rows = await conn.execute_query_dict(
        f'SELECT "value" FROM "setting" WHERE "name" = {param(conn, 1)}', [setting_name(provider)]
    )
    return str(rows[0]["value"]) if rows else None


async def _store(provider: str, secret: str) -> str:
    """Insert ``secret`` unless one is there already; the secret that is there now."""
    conn = get_connection("default")
    p = [param(conn, i) for i in (1, 2, 3)]
    await conn.execute_query(
        f'INSERT INTO "setting" ("name", "value", "created_at") VALUES ({p[0]}, {p[1]}, {p[2]}) '
        'ON CONFLICT ("name") DO NOTHING',
        [setting_name(provider), secret, datetime.now(UTC)],
    )
    stored = await _stored(provider)
    assert stored is not None
    return stored

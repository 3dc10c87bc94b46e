"""The database: tortoise-orm set-up from the config, and schema migrations at start-up."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.exceptions import DBConnectionError
from tortoise.migrations.api import migrate

from gateway.config import Config

__all__ = [
    "DATABASE_UNREACHABLE",
    "close_database",
    "database_ok",
    "open_database",
    "tortoise_config",
]

log = logging.getLogger(__name__)

MODELS_MODULE = "gateway.models"
MIGRATIONS_MODULE = "gateway.migrations"


def tortoise_config(config: Config) -> dict[str, Any]:
    """The tortoise-orm configuration for ``config.database.url``.

    ``sqlite:///var/gateway.db`` is relative to the config file's directory,
    ``sqlite:////srv/gateway.db`` absolute (SQLAlchemy's convention).
    """
    url = config.database.url
    connection: str | dict[str, Any]
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if path.startswith("/"):
            path = path[1:]
        if path == ":memory:":
            file = path
        else:
            p = Path(path)
            p = p if p.is_absolute() else config.base_dir / p
            p.parent.mkdir(parents=True, exist_ok=True)
            file = str(p)
        connection = {
            "engine": "tortoise.backends.sqlite",
            "credentials": {"file_path": file, "journal_mode": "WAL", "foreign_keys": "ON"},
        }
    else:
        parts = urlsplit(url)
        scheme = "postgres" if parts.scheme in ("postgresql", "asyncpg") else parts.scheme
        connection = parts._replace(scheme=scheme).geturl()
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def open_database(config: Config, *, run_migrations: bool = True) -> list[BaseDBAsyncClient]:
    """Connect, and bring the schema up to date (idempotent, cheap when it already is).

    Returns the connections opened, for :func:`close_database`.
    """
    tc = tortoise_config(config)
    if run_migrations:
        await migrate(config=tc)
        # migrate() leaves its connections open; a leaked aiosqlite thread blocks exit.
        await Tortoise.close_connections()
    await Tortoise.init(config=tc)
    return [get_connection(alias) for alias in tc["connections"]]


async def close_database(opened: list[BaseDBAsyncClient] | None = None) -> None:
    """Close the connections ``open_database`` returned.

    tortoise keeps connections per context (a ContextVar): shutting down from another task
    context (a test runner's teardown) would otherwise find none and leave them open.
    """
    for conn in opened or []:
        await conn.close()
    await Tortoise.close_connections()


DATABASE_UNREACHABLE: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, unreachable: the server is down or the network cut
    DBConnectionError,
    asyncpg.PostgresConnectionError,  # a connection lost mid-query
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, or not yet accepting
)
"""What a query raises when the database cannot be reached, as opposed to an error in the
query: worth trying again later."""


async def database_ok() -> bool:
    try:
        await get_connection("default").execute_query("SELECT 1")
    except Exception:
        log.warning("database health check failed", exc_info=True)
        return False
    return True


MIGRATIONS_TORTOISE_ORM: dict[str, Any] = {
    "connections": {"default": "sqlite://:memory:"},
    "apps": {
        "models": {
            "models": [MODELS_MODULE],
            "default_connection": "default",
            "migrations": MIGRATIONS_MODULE,
        }
    },
}
"""For ``make migrations`` (tortoise's ``makemigrations`` reads the models, not a database)."""

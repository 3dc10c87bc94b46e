"""The database: tortoise-orm set-up from the config, and schema migrations at start-up."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import get_connection
from tortoise.exceptions import DBConnectionError
from tortoise.migrations.api import migrate
from tortoise.migrations.executor import PlanStep

from gateway.config import Config
from gateway.ops.startup import database_problem
from gateway.storage.ticket_key import ticket_key

__all__ = [
    "DATABASE_UNREACHABLE",
    "close_database",
    "database_ok",
    "migration_lock",
    "open_database",
    "sqlite_file",
    "tortoise_config",
    "using_database",
]

log = logging.getLogger(__name__)

MODELS_MODULE = "gateway.storage.models"
MIGRATIONS_MODULE = "gateway.storage.migrations"


def tortoise_config(config: Config) -> dict[str, Any]:
    """The tortoise-orm configuration for ``config.database.url``.

    ``sqlite:///var/gateway.db`` is relative to the config file's directory,
    ``sqlite:////srv/gateway.db`` absolute (SQLAlchemy's convention).
    """
    url = config.database.url
    connection: str | dict[str, Any]
    if url.startswith("sqlite://"):
        p = sqlite_file(config)
        if p is None:
            file = ":memory:"
        else:
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


def sqlite_file(config: Config) -> Path | None:
    """The SQLite database's file (None for ``:memory:`` or a PostgreSQL URL)."""
    url = config.database.url
    if not url.startswith("sqlite://"):
        return None
    path = url.removeprefix("sqlite://")
    if path.startswith("/"):
        path = path[1:]
    if path == ":memory:":
        return None
    p = Path(path)
    return p if p.is_absolute() else config.base_dir / p


async def open_database(config: Config, *, run_migrations: bool = True) -> list[BaseDBAsyncClient]:
    """Connect, bring the schema up to date (idempotent, cheap when it already is) and,
    at a database's first start, store its ticket key.

    Every process that opens the database comes here (server, worker, each command), so
    they take turns at the migrations (:func:`migration_lock`). A database that cannot be
    reached or opened raises :class:`~gateway.ops.startup.StartupError` naming DATABASE_URL.
    Returns the connections opened, for :func:`close_database`.
    """
    try:
        return await _open(config, run_migrations=run_migrations)
    except Exception as e:
        # Whatever failed, an open aiosqlite connection's thread would keep the process
        # from exiting.
        with suppress(Exception):
            await Tortoise.close_connections()
        problem = database_problem(e, config.database.url, sqlite_file(config))
        if problem is None:
            raise
        raise problem from e


async def _open(config: Config, *, run_migrations: bool) -> list[BaseDBAsyncClient]:
    tc = tortoise_config(config)
    file = sqlite_file(config)
    if file is not None:
        # A file SQLite cannot open (a directory, no write permission) is told here: tortoise
        # keeps its connection lock when connecting fails, and migrate() then waits for ever.
        sqlite3.connect(file).close()
    if not run_migrations:
        await Tortoise.init(config=tc)
    else:
        async with migration_lock(config):
            applied: list[str] = []

            def report(_: str, steps: list[PlanStep], fake: bool, dry_run: bool) -> None:
                applied.extend(step.migration.name for step in steps if not step.backward)

            await migrate(config=tc, reporter=report)
            if applied:
                log.info("migrations applied: %s", ", ".join(applied))
            # migrate() leaves its connections open; a leaked aiosqlite thread blocks exit.
            await Tortoise.close_connections()
            await Tortoise.init(config=tc)
            await ticket_key(config)
    return [get_connection(alias) for alias in tc["connections"]]


MIGRATION_LOCK = 0x53414D50_4D494752
"""pg_advisory_lock's key for start-up migrations ("SAMPMIGR"); advisory locks are per
database, so gateways on other databases of the same server do not wait for each other."""


@asynccontextmanager
async def migration_lock(config: Config) -> AsyncIterator[None]:
    """Held around start-up migrations, so that processes started together on a new
    database take turns: two ``CREATE TABLE IF NOT EXISTS`` at once fail on PostgreSQL
    (``pg_type_typname_nsp_index``), and both see SQLite's tables missing.

    PostgreSQL: an advisory lock on a connection of its own. SQLite: ``flock`` on a file
    beside the database (``gateway.db.lock``). An in-memory SQLite database is private to
    its process and needs none.
    """
    file = sqlite_file(config)
    if config.database.url.startswith("sqlite://"):
        if file is None:
            yield
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        async with _file_lock(file.with_name(file.name + ".lock")):
            yield
    else:
        async with _advisory_lock(config.database.url):
            yield


@asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process's migrations (%s)", path)
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays, for the next start


@asynccontextmanager
async def _advisory_lock(url: str) -> AsyncIterator[None]:
    # The connection tortoise would open, from the same URL (its query parameters included).
    credentials = expand_db_url("postgres://" + url.split("://", 1)[1])["credentials"]
    conn = await asyncpg.connect(
        host=credentials.get("host"),
        port=credentials.get("port"),
        user=credentials.get("user"),
        password=credentials.get("password"),
        database=credentials.get("database"),
        ssl=credentials.get("ssl"),
    )
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK):
            log.info("waiting for another process's migrations")
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        yield
    finally:
        await conn.close()  # the session's end releases its advisory locks


async def close_database(opened: list[BaseDBAsyncClient] | None = None) -> None:
    """Close the connections ``open_database`` returned.

    tortoise keeps connections per context (a ContextVar): shutting down from another task
    context (a test runner's teardown) would otherwise find none and leave them open.
    """
    for conn in opened or []:
        await conn.close()
    await Tortoise.close_connections()


@asynccontextmanager
async def using_database(config: Config) -> AsyncIterator[None]:
    """The database open (and migrated) for the ``async with`` block: a command's."""
    opened = await open_database(config)
    try:
        yield
    finally:
        await close_database(opened)


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

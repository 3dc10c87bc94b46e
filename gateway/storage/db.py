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
from tortoise.migrations.executor import MigrationExecutor, PlanStep

from gateway.config import Config
from gateway.ops.startup import StartupError, database_problem
from gateway.storage.ticket_key import ticket_key

__all__ = [
    "DATABASE_UNREACHABLE",
    "NotMigrated",
    "close_database",
    "database_label",
    "database_ok",
    "migration_lock",
    "migration_status",
    "open_database",
    "pending_migrations",
    "sqlite_file",
    "tortoise_config",
    "using_database",
]

log = logging.getLogger(__name__)

MODELS_MODULE = "gateway.storage.models"
MIGRATIONS_MODULE = "gateway.storage.migrations"
_APPS: dict[str, dict[str, Any]] = {
    "models": {
        "models": [MODELS_MODULE],
        "default_connection": "default",
        "migrations": MIGRATIONS_MODULE,
    }
}


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

    The processes that run the gateway come here (server, worker), so they take turns at
    the migrations (:func:`migration_lock`). With ``run_migrations=False`` (a command's),
    a database that is missing or not migrated is refused instead (:class:`NotMigrated`):
    a mistyped DATABASE_URL must not make a new, empty database. A database that cannot be
    reached or opened raises :class:`~gateway.ops.startup.StartupError` naming DATABASE_URL.
    Returns the connections opened, for :func:`close_database`.
    """
    if not run_migrations:
        _require_file(config)
    try:
        return await _open(config, run_migrations=run_migrations)
    except NotMigrated:
        with suppress(Exception):
            await Tortoise.close_connections()
        raise
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
        pending = await pending_migrations()
        if pending:
            raise NotMigrated(
                "DATABASE_URL",
                f"{database_label(config)} has {len(pending)} migration(s) not applied "
                f"({pending[0]}{' ...' if len(pending) > 1 else ''})",
                "run `python -m gateway migrate`, or start the gateway once",
            )
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


class NotMigrated(StartupError):
    """A command's database that is missing or lacks migrations (it is not created)."""


def _require_file(config: Config) -> None:
    file = sqlite_file(config)
    if file is not None and not file.exists():
        raise NotMigrated(
            "DATABASE_URL",
            f"no database at {file}",
            "point DATABASE_URL at the gateway's database, or run `python -m gateway "
            "migrate` to make a new one",
        )


async def pending_migrations() -> list[str]:
    """The migrations the open database lacks, in the order they would be applied."""
    connection = get_connection("default")
    # tortoise reads a missing migrations table as "none applied", and so would read a
    # database it cannot reach: reach it first, for the error that names the problem.
    await connection.execute_query("SELECT 1")
    executor = MigrationExecutor(connection, _APPS)
    return [step.migration.name for step in await executor.plan() if not step.backward]


async def migration_status(config: Config) -> list[str] | None:
    """The migrations ``config``'s database lacks (changing nothing); None when there is
    no database at all (a SQLite file that does not exist)."""
    file = sqlite_file(config)
    if file is not None and not file.exists():
        return None
    try:
        await Tortoise.init(config=tortoise_config(config))
        return await pending_migrations()
    except Exception as e:
        problem = database_problem(e, config.database.url, file)
        if problem is None:
            raise
        raise problem from e
    finally:
        with suppress(Exception):
            await Tortoise.close_connections()


def database_label(config: Config) -> str:
    """The database ``config`` names, for a person (no password): ``SQLite /srv/g.db``,
    ``PostgreSQL sampark@db1:5432/sampark``."""
    url = config.database.url
    if url.startswith("sqlite:"):
        file = sqlite_file(config)
        return f"SQLite {file}" if file is not None else "SQLite in memory"
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return f"PostgreSQL {user}{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


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
async def using_database(config: Config, *, migrate: bool = False) -> AsyncIterator[None]:
    """The database open for the ``async with`` block: a command's, refused when it is
    missing or not migrated (:class:`NotMigrated`); migrated first with ``migrate``."""
    opened = await open_database(config, run_migrations=migrate)
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

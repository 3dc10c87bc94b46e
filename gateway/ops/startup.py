"""Start-up failures an operator can act on, told in one line that names the setting and
the fix.

A port in use, a database or Redis that cannot be reached or turns the gateway away, a
SQLite directory that cannot be created: each becomes a :class:`StartupError` where the
resource is opened (:func:`gateway.storage.db.open_database`, :func:`open_redis`, the web server's
bind), and the command line prints its message alone and exits with status 2. Only errors
recognised here are translated; anything else is a bug and keeps its traceback.

No message shows a URL, so none shows its password: they name the host, port, database and
role only.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
from arq.connections import ArqRedis, RedisSettings, create_pool
from redis import exceptions as redis_errors

from gateway.config import ConfigError

__all__ = [
    "StartupError",
    "database_problem",
    "listen_problem",
    "open_redis",
    "redis_problem",
]


class StartupError(ConfigError):
    """A setting that is well-formed but does not work on this machine."""

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        super().__init__(f"{setting}: {problem} ({fix})")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or during (drivers wrap socket errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _unreachable(
    exc: BaseException, *, setting: str, service: str, host: str, where: str
) -> StartupError | None:
    """A host that does not resolve, refuses, or does not answer."""
    if isinstance(exc, socket.gaierror):
        return StartupError(
            setting, f"cannot resolve the host {host!r}", f"correct the host name in {setting}"
        )
    fix = f"start {service} there, or correct the host and port in {setting}"
    if isinstance(exc, ConnectionRefusedError) or (
        # asyncio joins the failures of several addresses (::1 and 127.0.0.1) in one OSError.
        type(exc) is OSError and exc.errno is None and "Connect call failed" in str(exc)
    ):
        return StartupError(setting, f"nothing is listening on {where}", fix)
    if isinstance(exc, TimeoutError | redis_errors.TimeoutError):
        return StartupError(setting, f"no answer from {where}", fix)
    if isinstance(exc, OSError) and exc.errno in (
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
        errno.ECONNRESET,
    ):
        return StartupError(setting, f"cannot reach {where}: {exc.strerror}", fix)
    return None


def database_problem(
    exc: BaseException, url: str, sqlite_file: Path | None = None
) -> StartupError | None:
    """What the operator must fix when opening the database at ``url`` raised ``exc``;
    None when ``exc`` is not a problem of the setting (a bug: let it propagate)."""
    if url.startswith("sqlite:"):
        return _sqlite_problem(exc, sqlite_file)
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    where = f"{host}:{parts.port or 5432}"
    database = parts.path.lstrip("/") or parts.username or ""
    role = parts.username or ""
    for e in _chain(exc):
        if isinstance(e, asyncpg.InvalidCatalogNameError):
            return StartupError(
                "DATABASE_URL",
                f'database "{database}" does not exist on {where}',
                "create it, or point DATABASE_URL at another",
            )
        if isinstance(e, asyncpg.InvalidPasswordError):
            return StartupError(
                "DATABASE_URL",
                f'PostgreSQL on {where} refused the password of role "{role}"',
                "correct the password in DATABASE_URL",
            )
        if isinstance(e, asyncpg.InvalidAuthorizationSpecificationError):
            # The server's words: 'role "x" does not exist', or 'no pg_hba.conf entry ...'.
            return StartupError(
                "DATABASE_URL",
                f"PostgreSQL on {where} refused the connection: {e}",
                "create the role, or name another in DATABASE_URL",
            )
        if isinstance(e, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError):
            return StartupError(
                "DATABASE_URL", f"PostgreSQL on {where}: {e}", "try again when it accepts clients"
            )
        found = _unreachable(
            e, setting="DATABASE_URL", service="PostgreSQL", host=host, where=where
        )
        if found is not None:
            return found
    return None


def _sqlite_problem(exc: BaseException, file: Path | None) -> StartupError | None:
    fix = "point DATABASE_URL at a directory this user can write"
    for e in _chain(exc):
        if isinstance(e, OSError) and e.filename is not None:
            return StartupError("DATABASE_URL", f"cannot create {e.filename}: {e.strerror}", fix)
        if isinstance(e, sqlite3.OperationalError) and "unable to open" in str(e):
            return StartupError("DATABASE_URL", f"cannot open the SQLite database {file}", fix)
    return None


def redis_problem(exc: BaseException, url: str) -> StartupError | None:
    """What the operator must fix when connecting to the Redis at ``url`` raised ``exc``;
    None when it is not a problem of the setting."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    where = parts.path if parts.scheme == "unix" else f"{host}:{parts.port or 6379}"
    for e in _chain(exc):
        if isinstance(e, redis_errors.AuthenticationError):
            return StartupError(
                "REDIS_URL",
                f"Redis at {where} refused the connection: {e}",
                "set its password in REDIS_URL: redis://:PASSWORD@host:port/db",
            )
        if isinstance(e, redis_errors.ResponseError) and "DB index" in str(e):
            return StartupError(
                "REDIS_URL",
                f"Redis at {where} has no database {parts.path.lstrip('/')}",
                "use a database number its `databases` setting allows: 0-15 by default",
            )
        found = _unreachable(e, setting="REDIS_URL", service="Redis", host=host, where=where)
        if found is not None:
            return found
    return None


async def open_redis(url: str) -> ArqRedis:
    """An arq pool on the Redis at ``url``, connected now; raises :class:`StartupError` when
    it cannot be (at once: a supervisor restarts the gateway, a person reads the line)."""
    try:
        settings = RedisSettings.from_dsn(url)
    except ValueError:
        raise StartupError(
            "REDIS_URL", "not a Redis URL", "write redis://[:PASSWORD@]HOST:PORT/DB"
        ) from None
    settings.conn_retries = 0
    try:
        return await create_pool(settings)
    except (OSError, redis_errors.RedisError) as e:
        problem = redis_problem(e, url)
        if problem is None:
            raise
        raise problem from e


def listen_problem(exc: OSError, host: str, port: int) -> StartupError | None:
    """What the operator must fix when the web server cannot listen on ``host:port``."""
    if exc.errno == errno.EADDRINUSE:
        return StartupError(
            "PORT",
            f"{host}:{port} is already in use",
            "stop what holds it, or set PORT or server.port to a free port",
        )
    if exc.errno == errno.EACCES:
        return StartupError(
            "PORT",
            f"port {port} needs privileges this process does not have",
            "use a port above 1023, behind a reverse proxy",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return StartupError(
            "HOST",
            f"{host} is not an address of this machine",
            "set HOST or server.host to one of its addresses, or 0.0.0.0 for all",
        )
    if isinstance(exc, socket.gaierror):
        return StartupError(
            "HOST", f"cannot resolve {host!r}", "set HOST or server.host to an address"
        )
    return None

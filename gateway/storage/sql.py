"""Hand-written SQL for the hot paths where tortoise's per-row queries cost too much.

Building one tortoise ``UpdateQuery`` costs more than running it: a campaign recording 200
provider answers, or the cron escalating 1,000 complaints, spent most of its time there
(``make bench``, py-spy). These helpers send one statement for many rows instead. They
speak both databases the gateway runs on (SQLite's ``?n``, asyncpg's ``$n``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import OperationalError

__all__ = [
    "insert_returning",
    "insert_rows",
    "is_postgres",
    "is_stale_snapshot",
    "param",
    "update_rows",
]


def is_postgres(conn: BaseDBAsyncClient) -> bool:
    """True for asyncpg (PostgreSQL), False for SQLite."""
    return conn.capabilities.dialect == "postgres"


def is_stale_snapshot(error: OperationalError) -> bool:
    """True when SQLite refused a transaction's first write because another connection (a
    second gateway process) wrote since the transaction read: its snapshot is stale, and
    retrying the statement cannot help (``SQLITE_BUSY_SNAPSHOT``; no busy wait applies)."""
    cause = error.args[0] if error.args else None
    return (
        isinstance(cause, sqlite3.OperationalError)
        and getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY_SNAPSHOT
    )


def param(conn: BaseDBAsyncClient, n: int) -> str:
    """The ``n``-th (1-based) placeholder in ``conn``'s dialect (``$n``, or SQLite's
    ``?n``): either may appear more than once in a statement."""
    return f"${n}" if is_postgres(conn) else f"?{n}"


async def update_rows(
    conn: BaseDBAsyncClient,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    key: str | Sequence[str] = "id",
) -> None:
    """``UPDATE table SET columns... WHERE key = ?`` once per row, in one batch.

    Each row holds the new values in ``columns`` order, then the key. With several key
    columns (a conditional update: ``("id", "status")`` changes a row only if its status is
    still the one given), the row ends with a value for each, in order. Values go to the
    driver as they are: pass enum ``.value``s and timezone-aware datetimes, as tortoise
    would store them. Inside a transaction when ``conn`` is one.
    """
    if not rows:
        return
    keys = (key,) if isinstance(key, str) else tuple(key)
    sets = ", ".join(f'"{c}" = {param(conn, i)}' for i, c in enumerate(columns, start=1))
    where = " AND ".join(
        f'"{k}" = {param(conn, i)}' for i, k in enumerate(keys, start=len(columns) + 1)
    )
    await conn.execute_many(f'UPDATE "{table}" SET {sets} WHERE {where}', [list(r) for r in rows])


async def insert_rows(
    conn: BaseDBAsyncClient,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    skip_conflicts_on: str | Sequence[str] | None = None,
) -> None:
    """``INSERT INTO table (columns) VALUES (...), (...)``: many rows to a statement.

    With ``skip_conflicts_on`` (the column or columns of a unique index), a row whose
    values there are present already, or were given by an earlier row, is skipped (``ON
    CONFLICT DO NOTHING``) instead of failing the batch. Each row holds values in
    ``columns`` order, as :func:`update_rows` takes them: the defaults tortoise would fill
    in (``auto_now`` timestamps among them) are the caller's to give.
    """
    await insert_returning(
        conn, table, columns, rows, returning=(), skip_conflicts_on=skip_conflicts_on
    )


_MAX_PARAMS = 30_000
"""Below both drivers' limit on one statement's parameters (SQLite 32,766; asyncpg 32,767)."""


async def insert_returning(
    conn: BaseDBAsyncClient,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    returning: Sequence[str],
    skip_conflicts_on: str | Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """As :func:`insert_rows`, returning ``returning`` of each row written (a row skipped
    on a conflict returns nothing)."""
    if not rows:
        return []
    out: list[dict[str, Any]] = []
    width = len(columns)
    per = max(1, _MAX_PARAMS // width)
    names = ", ".join(f'"{c}"' for c in columns)
    back = (" RETURNING " + ", ".join(f'"{c}"' for c in returning)) if returning else ""
    conflict = ""
    if skip_conflicts_on:
        on = (skip_conflicts_on,) if isinstance(skip_conflicts_on, str) else skip_conflicts_on
        conflict = " ON CONFLICT (" + ", ".join(f'"{c}"' for c in on) + ") DO NOTHING"
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        values = ", ".join(
            "(" + ", ".join(param(conn, r * width + c + 1) for c in range(width)) + ")"
            for r in range(len(part))
        )
        sql = f'INSERT INTO "{table}" ({names}) VALUES {values}{conflict}{back}'
        flat = [v for row in part for v in row]
        if returning:
            out += await conn.execute_query_dict(sql, flat)
        else:
            await conn.execute_query(sql, flat)
    return out

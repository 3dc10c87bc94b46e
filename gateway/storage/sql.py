"""Hand-written SQL for the hot paths where tortoise's per-row queries cost too much.

Building one tortoise ``UpdateQuery`` costs more than running it: a campaign recording 200
provider answers, or the cron escalating 1,000 complaints, spent most of its time there
(``make bench``, py-spy). These helpers send one statement for many rows instead. They
speak both databases the gateway runs on (SQLite's ``?n``, asyncpg's ``$n``).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

from tortoise import Tortoise
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
    would store them. Inside a transaction when ``conn`` is one. On PostgreSQL, rows with
    distinct keys go as one statement over arrays (:func:`_pg_update`).
    """
    if not rows:
        return
    keys = (key,) if isinstance(key, str) else tuple(key)
    width = len(columns)
    if is_postgres(conn) and len({tuple(r[width:]) for r in rows}) == len(rows):
        sql = _pg_update(table, tuple(columns), keys)
        await conn.execute_query(sql, [list(c) for c in zip(*rows, strict=True)])
        return
    sets = ", ".join(f'"{c}" = {param(conn, i)}' for i, c in enumerate(columns, start=1))
    where = " AND ".join(f'"{k}" = {param(conn, i)}' for i, k in enumerate(keys, start=width + 1))
    await conn.execute_many(f'UPDATE "{table}" SET {sets} WHERE {where}', [list(r) for r in rows])


async def insert_rows(
    conn: BaseDBAsyncClient,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    skip_conflicts_on: str | Sequence[str] | None = None,
) -> None:
    """``INSERT INTO table (columns)`` many rows to a statement: a ``VALUES`` list on
    SQLite, arrays on PostgreSQL (:func:`_pg_insert`).

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
"""Below SQLite's limit on one statement's parameters (32,766)."""


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
    on = (skip_conflicts_on,) if isinstance(skip_conflicts_on, str) else skip_conflicts_on
    shape = (table, tuple(columns), tuple(returning), tuple(on or ()))
    if is_postgres(conn):
        parts = [(_pg_insert(*shape), [list(c) for c in zip(*rows, strict=True)])]
    else:
        per = max(1, _MAX_PARAMS // len(columns))
        parts = [
            (_sqlite_insert(*shape, len(part)), [v for row in part for v in row])
            for part in (rows[i : i + per] for i in range(0, len(rows), per))
        ]
    out: list[dict[str, Any]] = []
    for sql, values in parts:
        if returning:
            out += await conn.execute_query_dict(sql, values)
        else:
            await conn.execute_query(sql, values)
    return out


def _tail(returning: tuple[str, ...], on: tuple[str, ...]) -> str:
    """An insert's ``ON CONFLICT (on) DO NOTHING`` and ``RETURNING`` clauses."""
    conflict = f" ON CONFLICT ({_names(on)}) DO NOTHING" if on else ""
    return conflict + (f" RETURNING {_names(returning)}" if returning else "")


def _names(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


@functools.lru_cache(maxsize=64)
def _sqlite_insert(
    table: str, columns: tuple[str, ...], returning: tuple[str, ...], on: tuple[str, ...], n: int
) -> str:
    """``INSERT ... VALUES`` for ``n`` rows in SQLite's dialect. Cached: a campaign's batch
    (800 rows of 17 columns) spent 1.3 ms of its CPU spelling the same placeholders."""
    width = len(columns)
    values = ", ".join(
        "(" + ", ".join(f"?{r * width + c + 1}" for c in range(width)) + ")" for r in range(n)
    )
    return f'INSERT INTO "{table}" ({_names(columns)}) VALUES {values}{_tail(returning, on)}'


@functools.lru_cache(maxsize=64)
def _pg_insert(
    table: str, columns: tuple[str, ...], returning: tuple[str, ...], on: tuple[str, ...]
) -> str:
    """``INSERT ... SELECT * FROM unnest($1::type[], ...)``: a column's values as one array
    parameter, whatever the number of rows.

    One short text, so asyncpg prepares it once and keeps it; a ``VALUES`` list of 13,600
    parameters is past its statement cache's size limit (15 KiB) and was prepared again for
    every campaign batch, a third of the batch's CPU (py-spy, ``bench/campaign.py``)."""
    arrays = _pg_arrays(table, columns)
    return f'INSERT INTO "{table}" ({_names(columns)}) SELECT * FROM unnest({arrays})' + _tail(
        returning, on
    )


@functools.lru_cache(maxsize=64)
def _pg_update(table: str, columns: tuple[str, ...], keys: tuple[str, ...]) -> str:
    """``UPDATE ... FROM unnest(...)``: :func:`update_rows` as one statement over arrays,
    for rows whose keys are distinct (executed once per row, a repeated key's last row
    would win; over arrays, an arbitrary one)."""
    both = (*columns, *keys)
    arrays = _pg_arrays(table, both)
    # The arrays by position: a key may be a column set too (the status checked and set).
    given = ", ".join(f"v{i}" for i in range(len(both)))
    sets = ", ".join(f'"{c}" = v.v{i}' for i, c in enumerate(columns))
    where = " AND ".join(
        f'"{table}"."{k}" = v.v{i}' for i, k in enumerate(keys, start=len(columns))
    )
    return f'UPDATE "{table}" SET {sets} FROM unnest({arrays}) AS v({given}) WHERE {where}'


def _pg_arrays(table: str, columns: Sequence[str]) -> str:
    """One typed array parameter per column: ``$1::VARCHAR(16)[], $2::INT[]``."""
    return ", ".join(f"${i}::{t}[]" for i, t in enumerate(_pg_types(table, columns), start=1))


def _pg_types(table: str, columns: Sequence[str]) -> list[str]:
    """The PostgreSQL types of ``table``'s ``columns``, from its tortoise model (whose
    fields the migrations are written with)."""
    for app in Tortoise.apps.values():
        for model in app.values():
            meta = model._meta
            if meta.db_table == table:
                by_column = {
                    col: meta.fields_map[name] for name, col in meta.fields_db_projection.items()
                }
                return [str(by_column[c].get_for_dialect("postgres", "SQL_TYPE")) for c in columns]
    raise LookupError(f"no model has the table {table!r}")

"""The monthly review over a state-sized month: how long each scope's review takes.

Fills a scratch database with N complaints (default 200,000) spread over three months,
each with a plausible trail of events, then times ``monthly_review`` for the middle month
for the whole state, one district and one block officer. ``DATABASE_URL`` points it at
PostgreSQL (the tables are emptied first: use a scratch database); the default is a
temporary SQLite file. Run: ``python bench/review.py --complaints 200000``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tortoise.connection import get_connection

from gateway.complaints.scope import Scope
from gateway.config import load_config
from gateway.reports.review import monthly_review
from gateway.storage.db import close_database, open_database

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 9, 1, tzinfo=UTC)
DAYS = 91


def _ph(dialect: str, n: int) -> str:
    return ", ".join("?" if dialect == "sqlite" else f"${i + 1}" for i in range(n))


async def fill(n: int, *, seed: int = 1) -> None:
    config = load_config(ROOT / "config.yaml")
    rng = random.Random(seed)
    conn = get_connection("default")
    dialect = conn.capabilities.dialect
    for table in ("complaint_event", "complaint", "citizen"):
        await conn.execute_script(f"DELETE FROM {table}")
    await conn.execute_query(
        f"INSERT INTO citizen (id, phone, language, opted_out, latin_only, created_at,"
        f" updated_at) VALUES ({_ph(dialect, 7)})",
        [1, "+919800000000", "hi", False, False, START, START],
    )
    places = [
        (d.code, t.code, b.code) for d in config.districts for t in d.tehsils for b in t.blocks
    ]
    departments = [d.code for d in config.departments]
    complaint_sql = (
        "INSERT INTO complaint (id, ticket, citizen_id, language, department, district, tehsil,"
        " block, channel, status, level, due_at, officer, transfers, needs_review, source_key,"
        f" created_at, updated_at) VALUES ({_ph(dialect, 18)})"
    )
    event_sql = (
        "INSERT INTO complaint_event (complaint_id, kind, actor, to_status, officer, level,"
        f" due_at, created_at) VALUES ({_ph(dialect, 8)})"
    )
    complaints: list[list[Any]] = []
    events: list[list[Any]] = []
    officers = [o.code for o in config.officers]
    for cid in range(1, n + 1):
        district, tehsil, block = rng.choice(places)
        dept = rng.choice(departments)
        created = START + timedelta(seconds=rng.uniform(0, DAYS * 86400))
        officer = rng.choice(officers)
        due = created + timedelta(days=7)
        level, status, t = 1, "assigned", created
        events.append([cid, "registered", "citizen", "registered", officer, 1, due, created])
        events.append([cid, "assigned", "system", "assigned", officer, 1, due, created])
        if rng.random() < 0.3:  # escalated once
            t = due + timedelta(hours=1)
            level, prev, officer = 2, officer, rng.choice(officers)
            events.append([cid, "escalated", "system", "assigned", prev, 2, due, t])
            due = t + timedelta(days=7)
        if rng.random() < 0.7:  # resolved, then feedback
            t = t + timedelta(days=rng.uniform(0.5, 12))
            events.append([cid, "resolved", "officer", "resolved", officer, level, due, t])
            status = "resolved"
            r = rng.random()
            if r < 0.5:
                status = "closed"
                events.append(
                    [
                        cid,
                        "closed",
                        "citizen",
                        "closed",
                        officer,
                        level,
                        None,
                        t + timedelta(days=1),
                    ]
                )
            elif r < 0.8:
                status = "closed_no_response"
                events.append(
                    [
                        cid,
                        "closed",
                        "system",
                        "closed_no_response",
                        officer,
                        level,
                        None,
                        t + timedelta(days=7),
                    ]
                )
            else:
                status, level = "reopened", level + 1
                events.append(
                    [
                        cid,
                        "reopened",
                        "citizen",
                        "reopened",
                        officer,
                        level,
                        due,
                        t + timedelta(days=2),
                    ]
                )
        complaints.append(
            [cid, f"T{cid:09d}", 1, "hi", dept, district, tehsil, block, "ussd", status, level,
             due, officer, 0, False, f"bench:{cid}", created, t]
        )  # fmt: skip
        if len(complaints) >= 5000:
            await conn.execute_many(complaint_sql, complaints)
            await conn.execute_many(event_sql, events)
            complaints, events = [], []
    if complaints:
        await conn.execute_many(complaint_sql, complaints)
        await conn.execute_many(event_sql, events)
    await conn.execute_query(
        "UPDATE complaint SET closed_at = updated_at"
        " WHERE status IN ('closed', 'closed_no_response')"
    )
    if dialect == "postgres":
        await conn.execute_script("ANALYZE complaint; ANALYZE complaint_event;")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--complaints", type=int, default=200_000)
    parser.add_argument("--month", default="2026-10")
    args = parser.parse_args()
    environ = dict(os.environ)
    tmp = tempfile.mkdtemp(prefix="sampark-bench-review-")
    environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.db")
    config = load_config(ROOT / "config.yaml", environ=environ)
    opened = await open_database(config)
    try:
        t0 = time.perf_counter()
        await fill(args.complaints)
        print(f"filled {args.complaints:,} complaints in {time.perf_counter() - t0:.1f} s "
              f"({config.database.url.split('://')[0]})")  # fmt: skip
        now = datetime(2026, 12, 15, tzinfo=UTC)
        for label, scope in (
            ("state", Scope()),
            ("district shimla", Scope(district="shimla")),
            ("block officer", Scope(department="jal_shakti", block="theog")),
        ):
            t0 = time.perf_counter()
            r = await monthly_review(month=args.month, scope=scope, config=config, now=now)
            took = time.perf_counter() - t0
            print(
                f"{label:16} {took:6.2f} s  received {r.total.received:,}  "
                f"resolved {r.total.resolved:,}  pending {r.total.pending:,}  "
                f"median {r.total.median_days_to_resolve} d  rows "
                f"{len(r.departments)}/{len(r.districts)}/{len(r.officers)}"
            )
    finally:
        await close_database(opened)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())

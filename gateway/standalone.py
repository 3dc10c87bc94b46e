"""Commands that run outside the web server: the worker alone, and the outbox listing."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime

import aiohttp

from gateway.app import load_static
from gateway.campaigns import CampaignRunner
from gateway.config import Config, ConfigError
from gateway.db import close_database, open_database
from gateway.lifecycle import Lifecycle
from gateway.models import OutboundMessage
from gateway.notices import Notices
from gateway.outbox import Outbox
from gateway.phone import mask_phone
from gateway.providers import build_providers
from gateway.startup import open_redis
from gateway.worker import (
    ArqDispatcher,
    ArqRunScheduler,
    build_bulk_worker,
    build_worker,
    stop_worker,
)

__all__ = ["print_outbox", "run_worker"]


async def run_worker(config: Config) -> None:
    """Run the arq workers (messages, and campaigns on their own queue) until SIGINT or
    SIGTERM."""
    if config.redis.url == "embedded":
        raise ConfigError(
            "redis.url: a separate worker needs a Redis it can share with the server; "
            "set REDIS_URL (the embedded Redis lives inside `serve`)"
        )
    opened = await open_database(config)
    try:
        pool = await open_redis(config.redis.url)
    except BaseException:
        await close_database(opened)
        raise
    static = load_static(config)
    dispatcher = ArqDispatcher(pool)
    notices = Notices(config=config, catalogs=static.catalogs, templates=static.templates)
    provider = build_providers(config)[config.sms.provider]
    sender_id = config.sms.africastalking.sender_id if provider.name == "africastalking" else None
    async with aiohttp.ClientSession() as session:
        worker = build_worker(
            config,
            pool=pool,
            ctx={
                "outbox": Outbox(provider=provider, session=session, sender_id=sender_id),
                "dispatcher": dispatcher,
                "lifecycle": Lifecycle(config=config, notices=notices, dispatcher=dispatcher),
            },
        )
        scheduler = ArqRunScheduler(pool)
        bulk = build_bulk_worker(
            config,
            pool=pool,
            ctx={
                "campaign_scheduler": scheduler,
                "campaign_runner": CampaignRunner(
                    config=config,
                    templates=static.templates,
                    provider=provider,
                    session=session,
                    sender_id=sender_id,
                    redis=pool,
                    scheduler=scheduler,
                    clock=lambda: datetime.now(UTC),
                ),
            },
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(worker.async_run())
        bulk_task = asyncio.create_task(bulk.async_run())
        await stop.wait()
        await stop_worker(bulk, bulk_task)
        await stop_worker(worker, task)
    await pool.aclose()
    await close_database(opened)


async def print_outbox(config: Config, *, limit: int, show_numbers: bool) -> None:
    """Print the latest outbound messages: when, to whom, which template, status, text."""
    opened = await open_database(config)
    try:
        rows = await OutboundMessage.all().order_by("-id").limit(limit)
        if not rows:
            print("No messages yet.")
            return
        for m in rows:
            to = m.recipient if show_numbers else mask_phone(m.recipient)
            when = m.created_at.strftime("%Y-%m-%d %H:%M:%S")
            print(
                f"#{m.id}  {when} UTC  to {to}  {m.template} [{m.language}]  "
                f"{m.status.value}  {m.segments} SMS ({m.encoding})  via {m.provider}"
            )
            if m.last_error:
                print(f"    error: {m.last_error}")
            for line in m.text.splitlines():
                print(f"    {line}")
    finally:
        await close_database(opened)

"""Commands that run outside the web server: the worker alone, and the outbox listing."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import aiohttp

from gateway.app import jobs_context, load_static
from gateway.channels.registry import build_providers
from gateway.complaints.lifecycle import Lifecycle
from gateway.config import Config, ConfigError
from gateway.jobs.dispatch import ArqDispatcher
from gateway.jobs.worker import running_workers
from gateway.ops.startup import open_redis
from gateway.sms.notices import Notices
from gateway.storage.db import close_database, open_database
from gateway.storage.models import OutboundMessage
from gateway.text.phone import mask_phone

__all__ = ["print_outbox", "run_worker"]


async def run_worker(config: Config) -> None:
    """Run the arq workers (messages, and campaigns on their own queue) until SIGINT or
    SIGTERM: the server's embedded workers, in a process of their own."""
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
    notices = Notices(config=config, catalogs=static.catalogs, templates=static.templates)
    lifecycle = Lifecycle(config=config, notices=notices, dispatcher=ArqDispatcher(pool))
    async with aiohttp.ClientSession() as session:
        ctx = jobs_context(
            config,
            redis=pool,
            provider=build_providers(config)[config.sms.provider],
            session=session,
            templates=static.templates,
            lifecycle=lifecycle,
            clock=lambda: datetime.now(UTC),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with running_workers(ctx, pool=pool):
            await stop.wait()
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
        tz = ZoneInfo(config.service.timezone)
        for m in rows:
            to = m.recipient if show_numbers else mask_phone(m.recipient)
            when = m.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
            print(
                f"#{m.id}  {when}  to {to}  {m.template} [{m.language}]  "
                f"{m.status.value}  {m.segments} SMS ({m.encoding})  via {m.provider}"
            )
            if m.last_error:
                print(f"    error: {m.last_error}")
            for line in m.text.splitlines():
                print(f"    {line}")
    finally:
        await close_database(opened)

"""Outbound SMS: messages per second from the queue to a fake Africa's Talking on loopback.

Three runs side by side, each over the same number of messages, the fake in its own process:

* arq ceiling: an arq worker (the gateway's settings: 50 jobs at a time) running a job that
  does nothing, from a queue already holding them;
* direct: one aiohttp client posting each message to the fake, 50 at a time, as the
  provider code's request would (the HTTP ceiling);
* gateway: messages written as the gateway writes them and queued, then its own worker
  (``send_sms``: claim the row, POST, record the answer) until the queue is empty.

Run: ``python bench/outbound.py`` (``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from arq import Worker
from arq.connections import ArqRedis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fake_provider import API_KEY, USERNAME
from plain_client import post_forms
from scratch import scratch_config
from ussd_hops import free_port, start, stop, wait_ready

from gateway.app import REDIS, create_app, worker_context
from gateway.config import Config
from gateway.jobs.dispatch import ArqDispatcher
from gateway.jobs.worker import build_worker
from gateway.ops import event_loop
from gateway.storage.models import OutboundMessage

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 50  # build_worker's max_jobs
TEXT = "Sampark: complaint 1100-2345-6789 registered with Jal Shakti, Theog. Reply STATUS."


async def noop(ctx: dict[str, Any], n: int) -> None:
    return None


async def arq_ceiling(pool: ArqRedis, count: int) -> float:
    queue = f"bench:noop:{uuid.uuid4().hex[:8]}"
    for i in range(count):
        await pool.enqueue_job("noop", i, _queue_name=queue)
    worker = Worker(
        functions=[noop],
        redis_pool=pool,
        queue_name=queue,
        burst=True,
        handle_signals=False,
        poll_delay=0.1,
        max_jobs=CONCURRENCY,
        keep_result=3600,
    )
    t0 = time.perf_counter()
    await worker.async_run()
    elapsed = time.perf_counter() - t0
    assert worker.jobs_complete == count, worker.jobs_complete
    await worker.close()
    return elapsed


async def direct(base_url: str, count: int) -> float:
    url = f"{base_url}/version1/messaging"
    headers = {"apiKey": API_KEY, "Accept": "application/json"}
    forms = ({"username": USERNAME, "to": f"+9198{i:08d}", "message": TEXT} for i in range(count))
    return await post_forms(url, headers, forms, wide=CONCURRENCY, expect=201)


async def gateway(app: web.Application, count: int, *, provider: str = "africastalking") -> float:
    """Seconds for the gateway's worker to send ``count`` messages through ``provider``
    (the configured one), from a queue already holding them."""
    # arq keeps a job's result under its ID (send_sms:<message id>) for an hour: on a shared
    # Redis, IDs another database used (the USSD run's acknowledgements) would be taken as
    # already sent. IDs far from any other run's avoid that.
    first = random.randrange(1_000_000_000, 2_000_000_000)
    rows = [
        OutboundMessage(
            id=first + i,
            recipient=f"+9197{i:08d}",
            template="complaint_registered",
            language="en_IN",
            text=TEXT,
            encoding="gsm7",
            segments=1,
            provider=provider,
            idempotency_key=f"bench:{i}",
        )
        for i in range(count)
    ]
    await OutboundMessage.bulk_create(rows, batch_size=1000)
    ids = await OutboundMessage.all().values_list("id", flat=True)
    # A queue of its own: on a shared Redis, the gateway's queue may hold jobs of the USSD
    # run's messages (another database), which a burst worker would wait for.
    queue = f"bench:sms:{uuid.uuid4().hex[:8]}"
    await ArqDispatcher(app[REDIS], queue=queue).dispatch([int(str(i)) for i in ids])
    worker = build_worker(worker_context(app), pool=app[REDIS], burst=True, queue=queue)
    t0 = time.perf_counter()
    await worker.async_run()
    elapsed = time.perf_counter() - t0
    await worker.close()
    sent = await OutboundMessage.filter(status="sent").count()
    assert sent == count, f"{sent} of {count} sent"
    return elapsed


async def main(count: int) -> tuple[float, float, float]:
    """Seconds for ``count`` messages: arq no-op ceiling, direct aiohttp, gateway."""
    port = free_port()
    env = dict(os.environ)
    fake = start([sys.executable, str(ROOT / "bench" / "fake_provider.py"), str(port)], env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with scratch_config(
            "outbound",
            sms={
                "provider": "africastalking",
                "africastalking": {"username": USERNAME, "api_key": API_KEY, "base_url": base_url},
            },
        ) as config:
            return await _measure(config, base_url, count)
    finally:
        stop(fake)


async def _measure(config: Config, base_url: str, count: int) -> tuple[float, float, float]:
    url = config.database.url
    app = create_app(config, with_worker=False)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await wait_ready(f"{base_url}/version1/messaging", lambda s: s in (401, 405))
        ceiling_s = await arq_ceiling(app[REDIS], count)
        direct_s = await direct(base_url, count)
        gateway_s = await gateway(app, count)
        print(
            f"Outbound SMS, one message per request, {count:,} messages, "
            f"database {url.split(':')[0]}, redis {config.redis.url.split(':')[0]}"
        )
        print(f"{'':>22} | {'msgs/s':>8} | {'gateway is':>10}")
        for name, s in (("arq no-op (ceiling)", ceiling_s), ("direct aiohttp", direct_s)):
            print(f"{name:>22} | {count / s:>8.0f} | {s / gateway_s:>10.2f}")
        print(f"{'gateway worker':>22} | {count / gateway_s:>8.0f} |")
        return ceiling_s, direct_s, gateway_s
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    print(f"event loop: {event_loop.install()}")  # the gateway's worker runs in this one
    asyncio.run(main(args.messages))

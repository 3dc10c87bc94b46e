"""``GET /metrics``: the gateway's metrics (:mod:`gateway.ops.metrics`) for Prometheus, to
loopback and the networks of ``metrics.allow`` only, with each arq queue's depth and oldest
job's age read from Redis, and each sending campaign's recipients left read from the
database, for the scrape."""

from __future__ import annotations

import time
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiohttp import web
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from tortoise.exceptions import BaseORMException

from gateway.campaigns.progress import left_to_send
from gateway.jobs.dispatch import BULK_QUEUE, QUEUE
from gateway.ops import metrics
from gateway.web.keys import CONFIG, REDIS

__all__ = ["allowed", "metrics_view", "queue_stats"]

QUEUES = {"messages": QUEUE, "campaigns": BULK_QUEUE}
"""The arq queues, by the name the metrics give them."""


def allowed(request: web.Request, networks: list[IPv4Network | IPv6Network]) -> bool:
    """True when the peer, and every client a proxy says it forwarded for, is on loopback
    or in ``networks``."""
    claimed = [request.remote or ""]
    for header in request.headers.getall("X-Forwarded-For", []):
        claimed += [part.strip() for part in header.split(",")]
    for text in claimed:
        try:
            address = ip_address(text)
        except ValueError:
            return False
        if not (address.is_loopback or any(address in net for net in networks)):
            return False
    return True


async def queue_stats(redis: ArqRedis) -> dict[str, tuple[int, float]]:
    """Each queue's depth and the age in seconds of its oldest due job (0 when none)."""
    now_ms = time.time() * 1000
    async with redis.pipeline(transaction=False) as pipe:
        for queue in QUEUES.values():
            pipe.zcard(queue)
            pipe.zrangebyscore(queue, "-inf", now_ms, start=0, num=1, withscores=True)
        answers = await pipe.execute()
    stats: dict[str, tuple[int, float]] = {}
    for i, name in enumerate(QUEUES):
        depth, oldest = answers[2 * i], answers[2 * i + 1]
        age = max(0.0, (now_ms - float(oldest[0][1])) / 1000) if oldest else 0.0
        stats[name] = (int(depth), age)
    return stats


async def metrics_view(request: web.Request) -> web.Response:
    """The metrics in Prometheus' text format; 403 to an address not allowed."""
    if not allowed(request, request.app[CONFIG].metrics.allow):
        raise web.HTTPForbidden(text="metrics are for the monitoring network only\n")
    try:
        queues = metrics.queue_families(await queue_stats(request.app[REDIS]))
    except (RedisError, OSError):
        metrics.redis_error("metrics")
        queues = []  # the rest is still worth having; the Redis error counter tells
    try:
        campaigns = metrics.campaign_families(await left_to_send())
    except (BaseORMException, OSError):
        metrics.database_error("metrics")
        campaigns = []
    return web.Response(
        body=metrics.exposition([*queues, *campaigns]),
        headers={"Content-Type": metrics.CONTENT_TYPE},
    )

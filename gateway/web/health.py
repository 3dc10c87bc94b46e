"""``GET /healthz``: what a load balancer or a supervisor asks before sending traffic."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.jobs.dispatch import health_check_key
from gateway.storage.db import database_ok
from gateway.web.keys import REDIS

__all__ = ["healthz"]


async def healthz(request: web.Request) -> web.Response:
    """200 when the database, Redis and a worker are all up; 503 naming what is down."""
    app = request.app
    checks: dict[str, str] = {}
    checks["database"] = "ok" if await database_ok() else "down"
    try:
        await asyncio.wait_for(app[REDIS].ping(), timeout=2)
        checks["redis"] = "ok"
        alive = await app[REDIS].exists(health_check_key())
        checks["worker"] = "ok" if alive else "down"
    except Exception:
        checks["redis"] = "down"
        checks["worker"] = "unknown"
    healthy = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
    )

"""Health checks: what a load balancer or a supervisor asks before sending traffic.

``/healthz/live``: the process answers (restart it when it does not). ``/healthz/ready``:
what this process needs to do its work is up: the database and Redis for every process,
and, in a process that runs the workers, their polling loops. A web process whose worker
runs elsewhere is ready without one, so a load balancer keeps sending it USSD traffic.
``/healthz`` is the older check, kept for compatibility: it also asks for a worker on the
queue, wherever it runs. Each answer names the version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from arq.worker import Worker

from gateway import __version__
from gateway.jobs.dispatch import health_check_key
from gateway.storage.db import database_ok
from gateway.web.keys import BULK_WORKER, REDIS, WORKER

__all__ = ["healthz", "live", "readiness", "ready", "worker_running"]

REDIS_TIMEOUT = 2.0
"""Seconds Redis has to answer a check."""

Check = Callable[[], Awaitable[str]]


async def live(request: web.Request) -> web.Response:
    """200 whenever the process answers."""
    return web.json_response({"status": "ok", "version": __version__})


def worker_running(worker: Worker) -> bool:
    """True while ``worker``'s polling loop runs (not while it is being restarted)."""
    task = worker.main_task
    return task is not None and not task.done()


async def readiness(
    redis_ping: Callable[[], Awaitable[object]], workers: dict[str, Worker]
) -> tuple[bool, dict[str, str]]:
    """Whether the database, Redis (``redis_ping``) and each of ``workers`` are up, and
    what each check found (``ok`` or ``down``)."""
    checks: dict[str, str] = {"database": "ok" if await database_ok() else "down"}
    try:
        await asyncio.wait_for(redis_ping(), timeout=REDIS_TIMEOUT)
        checks["redis"] = "ok"
    except Exception:
        checks["redis"] = "down"
    for name, worker in workers.items():
        checks[name] = "ok" if worker_running(worker) else "down"
    return all(v == "ok" for v in checks.values()), checks


def _workers(app: web.Application) -> dict[str, Worker]:
    found = {"worker": app.get(WORKER), "bulk_worker": app.get(BULK_WORKER)}
    return {name: worker for name, worker in found.items() if worker is not None}


async def ready(request: web.Request) -> web.Response:
    """200 when this process can do its work; 503 naming what is down."""
    app = request.app
    ok, checks = await readiness(app[REDIS].ping, _workers(app))
    return _answer(ok, checks)


def _answer(ok: bool, checks: dict[str, str]) -> web.Response:
    return web.json_response(
        {"status": "ok" if ok else "degraded", **checks, "version": __version__},
        status=200 if ok else 503,
    )


async def healthz(request: web.Request) -> web.Response:
    """200 when the database, Redis and a worker of the message queue (in any process)
    are all up; 503 naming what is down."""
    app = request.app
    checks: dict[str, str] = {}
    checks["database"] = "ok" if await database_ok() else "down"
    try:
        await asyncio.wait_for(app[REDIS].ping(), timeout=REDIS_TIMEOUT)
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

"""``python -m gateway worker``: the server's workers (messages, and campaigns on their own
queue), in a process of their own, on the services the server builds; with ``--port``, it
also answers health checks (and ``/metrics``) there."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from aiohttp import web
from arq.connections import ArqRedis
from arq.worker import Worker

from gateway.app import job_context, open_services, setup_ops_routes
from gateway.cli.base import setup_logging
from gateway.config import Config, ConfigError, load_config
from gateway.jobs.worker import running_workers
from gateway.ops import event_loop, logs
from gateway.ops.startup import listen_problem
from gateway.storage.db import database_label
from gateway.web.keys import BULK_WORKER, CONFIG, REDIS, WORKER

if TYPE_CHECKING:
    from gateway.cli.base import Commands

__all__ = ["add_parser", "run", "run_worker"]

log = logging.getLogger("gateway")


def add_parser(commands: Commands) -> None:
    p = commands.add_parser("worker", help="run the arq worker alone")
    p.add_argument(
        "--port",
        type=int,
        help="answer /healthz/live, /healthz/ready and /metrics on this port (on server.host)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    setup_logging(args.verbose, config=config)
    loop = event_loop.install()
    logs.starting("the worker", pid=os.getpid(), database=database_label(config), loop=loop)
    asyncio.run(run_worker(config, port=args.port))
    return 0


async def run_worker(config: Config, *, port: int | None = None) -> None:
    """Run the arq workers until SIGINT or SIGTERM."""
    if config.redis.url == "embedded":
        raise ConfigError(
            "redis.url: a separate worker needs a Redis it can share with the server; "
            "set REDIS_URL (the embedded Redis lives inside `serve`)"
        )
    async with open_services(config, migrate=True) as services:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with running_workers(job_context(services), pool=services.redis) as workers:
            async with _health(config, services.redis, workers, port):
                await stop.wait()
        log.info("stopped")


@asynccontextmanager
async def _health(
    config: Config, redis: ArqRedis, workers: tuple[Worker, Worker], port: int | None
) -> AsyncIterator[None]:
    """The health checks and metrics on ``port`` for the block (nothing without one)."""
    if port is None:
        yield
        return
    app = web.Application()
    app[CONFIG] = config
    app[REDIS] = redis
    app[WORKER], app[BULK_WORKER] = workers
    setup_ops_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        host = config.server.host
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as e:
            problem = listen_problem(e, host, port)
            if problem is None:
                raise
            raise problem from e
        log.info("worker health checks on http://%s:%s/healthz/ready", host, port)
        yield
    finally:
        await runner.cleanup()

"""``python -m gateway worker``: the server's workers (messages, and campaigns on their own
queue), in a process of their own, on the services the server builds."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import TYPE_CHECKING

from gateway.app import job_context, open_services
from gateway.cli.base import setup_logging
from gateway.config import Config, ConfigError, load_config
from gateway.jobs.worker import running_workers

if TYPE_CHECKING:
    from gateway.cli.base import Commands

__all__ = ["add_parser", "run", "run_worker"]


def add_parser(commands: Commands) -> None:
    p = commands.add_parser("worker", help="run the arq worker alone")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    setup_logging(args.verbose)
    asyncio.run(run_worker(config))
    return 0


async def run_worker(config: Config) -> None:
    """Run the arq workers until SIGINT or SIGTERM."""
    if config.redis.url == "embedded":
        raise ConfigError(
            "redis.url: a separate worker needs a Redis it can share with the server; "
            "set REDIS_URL (the embedded Redis lives inside `serve`)"
        )
    async with open_services(config) as services:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with running_workers(job_context(services), pool=services.redis):
            await stop.wait()

"""``python -m gateway serve``: the gateway (what ``server.py`` runs): the web server, with
the worker and an embedded Redis in the same process unless told otherwise."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from contextlib import suppress
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.app import create_app
from gateway.cli.base import setup_logging
from gateway.config import SAMPLE_TICKET_KEY, Config, ConfigError, load_config
from gateway.ops import event_loop, logs
from gateway.ops.startup import listen_problem
from gateway.storage.db import database_label

if TYPE_CHECKING:
    from gateway.cli.base import Commands

__all__ = ["add_parser", "run"]

log = logging.getLogger("gateway")


def add_parser(commands: Commands) -> None:
    p = commands.add_parser("serve", help="run the gateway (web server, worker, embedded Redis)")
    p.add_argument("--no-worker", action="store_true", help="do not run the worker in-process")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if config.redis.url == "embedded" and (args.no_worker or not config.worker.embedded):
        why = "--no-worker" if args.no_worker else "worker.embedded: false"
        raise ConfigError(
            f"{why}: the embedded Redis lives inside this process, so no worker elsewhere "
            "can reach its queue and no SMS would be sent (set REDIS_URL to a Redis the "
            "worker shares, or run the worker in-process)"
        )
    setup_logging(args.verbose, config=config)
    loop = event_loop.install()
    logs.starting("Sampark", pid=os.getpid(), database=database_label(config), loop=loop)
    if config.tickets.key == SAMPLE_TICKET_KEY:
        log.warning(
            "tickets.key is the public sample key %r: anyone can tell a ticket's serial "
            "(delete the setting before real use: a new database generates its own)",
            SAMPLE_TICKET_KEY,
        )
    app = create_app(config, with_worker=False if args.no_worker else None)
    with suppress(KeyboardInterrupt):  # Ctrl-C while starting: the runner has cleaned up
        asyncio.run(serve(app, config))
    return 0


async def serve(app: web.Application, config: Config) -> None:
    """Start ``app``, listen, and run until SIGINT or SIGTERM.

    aiohttp's runner and site rather than ``run_app``: a port that cannot be bound is told
    apart from the other start-up failures, and "Sampark on" is logged once it is bound.
    """
    host, port = config.server.host, config.server.port
    runner = web.AppRunner(app, access_log=None)
    try:
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as e:
            problem = listen_problem(e, host, port)
            if problem is None:
                raise
            raise problem from e
        log.info(
            "ready: Sampark on http://%s:%s (USSD %s, SMS via %s, database %s, redis %s)",
            host,
            port,
            config.service.service_code,
            config.sms.provider,
            config.database.url.split("://", 1)[0],
            "embedded" if config.redis.url == "embedded" else "external",
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()
    log.info("stopped")

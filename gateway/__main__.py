"""The command line: ``python -m gateway COMMAND``.

Commands: ``serve`` (what ``server.py`` runs), ``worker`` (the arq worker alone),
``simulate`` (a phone on the terminal), ``outbox`` (the SMS the gateway has sent),
``staff`` (staff accounts and API tokens).

A problem the operator can fix (a bad argument or setting, a port in use, a database or Redis
that cannot be reached) ends the command with one line on stderr naming it and the fix, and
exit status 2: see :mod:`gateway.ops.startup`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, NoReturn

from gateway.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["CommandParser", "main"]


class CommandParser(argparse.ArgumentParser):
    """argparse, with a usage error told in one line like every other error of the
    command line (argparse's own is the whole usage, then the error)."""

    def error(self, message: str) -> NoReturn:
        print(f"sampark: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return n


def _config(path: str | None) -> Config:
    return load_config(path)


def _logging(verbose: bool = False) -> None:
    from gateway.ops import logsafe

    logsafe.install()  # every record, aiohttp's too, without tokens or Authorization values
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("tortoise").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if not verbose:
        # arq logs every job and a health line every 10 s; the gateway logs what matters.
        logging.getLogger("arq").setLevel(logging.WARNING)


def serve(args: argparse.Namespace) -> None:
    from gateway.app import create_app

    config = _config(args.config)
    _logging(args.verbose)
    app = create_app(config, with_worker=False if args.no_worker else None)
    with suppress(KeyboardInterrupt):  # Ctrl-C while starting: the runner has cleaned up
        asyncio.run(_serve(app, config))


async def _serve(app: web.Application, config: Config) -> None:
    """Start ``app``, listen, and run until SIGINT or SIGTERM.

    aiohttp's runner and site rather than ``run_app``: a port that cannot be bound is told
    apart from the other start-up failures, and "Sampark on" is logged once it is bound.
    """
    from aiohttp import web

    from gateway.ops.startup import listen_problem

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
        logging.getLogger("gateway").info(
            "Sampark on http://%s:%s (USSD %s, SMS via %s, database %s, redis %s)",
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
    finally:
        await runner.cleanup()


def worker(args: argparse.Namespace) -> None:
    from gateway.cli.standalone import run_worker

    config = _config(args.config)
    _logging(args.verbose)
    asyncio.run(run_worker(config))


def simulate(args: argparse.Namespace) -> None:
    from gateway.cli.simulate import run_simulator

    config = _config(args.config)
    url = args.url or f"http://127.0.0.1:{config.server.port}"
    raise SystemExit(asyncio.run(run_simulator(config, base_url=url, phone=args.phone)))


def outbox(args: argparse.Namespace) -> None:
    from gateway.cli.standalone import print_outbox

    config = _config(args.config)
    asyncio.run(print_outbox(config, limit=args.limit, show_numbers=args.show_numbers))


def templates(args: argparse.Namespace) -> None:
    from gateway.app import load_static
    from gateway.sms.template_check import check_templates, format_matrix, format_table

    config = _config(args.config)
    static = load_static(config)
    rows = check_templates(config, static.catalogs, static.templates)
    print(format_table(rows))
    print("\nSMS per template and language (g: GSM-7, u: UCS-2):\n")
    print(format_matrix(rows))
    bad = [r for r in rows if r.problems]
    print(f"\n{len(rows) - len(bad)} ok, {len(bad)} with problems")
    raise SystemExit(1 if bad else 0)


def staff(args: argparse.Namespace) -> None:
    from gateway.cli.staff import staff_command
    from gateway.storage.db import close_database, open_database

    config = _config(args.config)

    async def run() -> int:
        opened = await open_database(config)
        try:
            return await staff_command(config, args)
        finally:
            await close_database(opened)

    raise SystemExit(asyncio.run(run()))


def notify(args: argparse.Namespace) -> None:
    from gateway.cli.notify import run_notify

    config = _config(args.config)
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(asyncio.run(run_notify(config, args)))


def report(args: argparse.Namespace) -> None:
    from gateway.cli.report import run_report

    config = _config(args.config)
    form = "csv" if args.csv else "html" if args.html else "json"
    raise SystemExit(
        asyncio.run(
            run_report(
                config,
                month=args.month,
                form=form,
                district=args.district,
                department=args.department,
            )
        )
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = CommandParser(prog="python -m gateway", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="configuration file (default: ./config.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway (web server, worker, embedded Redis)")
    p.add_argument("--no-worker", action="store_true", help="do not run the worker in-process")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(run=serve)

    p = sub.add_parser("worker", help="run the arq worker alone")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(run=worker)

    p = sub.add_parser("simulate", help="dial the service from a phone on this terminal")
    p.add_argument("--url", help="the running gateway (default: http://127.0.0.1:PORT)")
    p.add_argument("--phone", default="+919812345678", help="the caller's number")
    p.set_defaults(run=simulate)

    p = sub.add_parser("outbox", help="list the SMS the gateway has sent, newest first")
    p.add_argument("--limit", type=positive_int, default=20, help="how many (default: 20)")
    p.add_argument("--show-numbers", action="store_true", help="show full phone numbers")
    p.set_defaults(run=outbox)

    p = sub.add_parser("templates", help="SMS templates: `templates check` lints them all")
    p.add_argument("action", choices=["check"])
    p.set_defaults(run=templates)

    from gateway.cli.staff import add_arguments as staff_arguments

    p = sub.add_parser("staff", help="staff accounts and their API tokens")
    staff_arguments(p)
    p.set_defaults(run=staff)

    from gateway.cli.notify import add_parser as add_notify

    add_notify(sub, notify)

    p = sub.add_parser("report", help="the monthly review (JSON, --csv or --html) to stdout")
    p.add_argument("--month", required=True, help="YYYY-MM, a calendar month in service.timezone")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument(
        "--csv", action="store_true", help="CSV: a row per department, district, officer"
    )
    fmt.add_argument("--html", action="store_true", help="a printable HTML page")
    p.add_argument("--district", help="only this district")
    p.add_argument("--department", help="only this department")
    p.set_defaults(run=report)

    args = parser.parse_args(argv)
    try:
        args.run(args)
    except ConfigError as e:  # gateway.ops.startup.StartupError included
        print(f"sampark: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

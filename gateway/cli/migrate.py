"""``python -m gateway migrate``: bring the database's schema up to date, once, before the
gateway's processes start (they also migrate at start-up, taking turns); ``--check`` only
tells whether migrations are pending (exit status 1 when they are)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from gateway.cli.base import say_database
from gateway.config import Config, load_config
from gateway.storage.db import migration_status, using_database

if TYPE_CHECKING:
    from gateway.cli.base import Commands

__all__ = ["add_parser", "run"]


def add_parser(commands: Commands) -> None:
    p = commands.add_parser("migrate", help="apply the database's pending schema migrations")
    p.add_argument(
        "--check",
        action="store_true",
        help="change nothing: list the pending migrations, exit status 1 if there are any",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    say_database(config)
    return asyncio.run(check(config) if args.check else migrate(config))


async def check(config: Config) -> int:
    pending = await migration_status(config)
    if pending is None:
        print("no database yet: every migration is pending")
        return 1
    if pending:
        print(f"{len(pending)} migration(s) pending: {', '.join(pending)}")
        return 1
    print("the schema is up to date")
    return 0


async def migrate(config: Config) -> int:
    before = await migration_status(config)
    async with using_database(config, migrate=True):
        pass
    if before is None or before:
        applied = "every migration" if before is None else ", ".join(before)
        print(f"applied: {applied}")
    else:
        print("the schema was up to date", file=sys.stdout)
    return 0

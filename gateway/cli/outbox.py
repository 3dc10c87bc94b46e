"""``python -m gateway outbox``: the SMS the gateway has sent, newest first."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from gateway.cli.base import positive_int, say_database
from gateway.config import Config, load_config
from gateway.storage.db import using_database
from gateway.storage.models import OutboundMessage
from gateway.text.phone import mask_phone

if TYPE_CHECKING:
    from gateway.cli.base import Commands

__all__ = ["add_parser", "print_outbox", "run"]


def add_parser(commands: Commands) -> None:
    p = commands.add_parser("outbox", help="list the SMS the gateway has sent, newest first")
    p.add_argument("--limit", type=positive_int, default=20, help="how many (default: 20)")
    p.add_argument("--show-numbers", action="store_true", help="show full phone numbers")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    asyncio.run(print_outbox(config, limit=args.limit, show_numbers=args.show_numbers))
    return 0


async def print_outbox(config: Config, *, limit: int, show_numbers: bool) -> None:
    """Print the latest outbound messages: when, to whom, which template, status, text."""
    say_database(config)
    async with using_database(config):
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

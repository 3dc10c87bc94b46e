"""``python -m gateway callbacks``: every provider callback URL, with its secret, one a
line: what to paste into each provider's dashboard (or hand to a script)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from gateway.app import every_callback_url, stored_signer
from gateway.channels.signing import provider_of
from gateway.cli.base import say_database
from gateway.config import load_config

if TYPE_CHECKING:
    from gateway.cli.base import Commands

__all__ = ["add_parser", "run"]


def add_parser(commands: Commands) -> None:
    p = commands.add_parser(
        "callbacks", help="print every provider callback URL, with its secret, one a line"
    )
    p.add_argument(
        "--path",
        help="print only the URL of this callback path (e.g. /ussd/africastalking)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    say_database(config)
    signer = asyncio.run(stored_signer(config))
    if args.path:
        try:
            provider_of(args.path)
            url = signer.url(args.path)
        except ValueError as e:
            print(f"sampark: --path: {e}", file=sys.stderr)
            return 2
        if url is None:
            print(f"sampark: --path: no provider with callbacks in {args.path}", file=sys.stderr)
            return 2
        print(url)
        return 0
    for url in every_callback_url(config, signer):
        print(url)
    return 0

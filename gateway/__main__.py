"""The command line: ``python -m gateway COMMAND``.

Commands: ``init`` (a site directory: the sample configuration, catalogs and
templates), ``serve`` (what ``server.py`` runs), ``worker`` (the arq worker alone),
``migrate`` (the database's schema, once before starting processes),
``simulate`` (a phone on the terminal), ``callbacks`` (the providers' callback URLs),
``outbox`` (the SMS the gateway has sent),
``templates`` (lint the SMS templates), ``staff`` (staff accounts and API tokens),
``notify`` (bulk notifications), ``report`` (the monthly review). Each is a module of
:mod:`gateway.cli`.

A problem the operator can fix (a bad argument or setting, a port in use, a database or Redis
that cannot be reached) ends the command with one line on stderr naming it and the fix, and
exit status 2: see :mod:`gateway.ops.startup`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import __version__
from gateway.cli import (
    callbacks,
    init,
    migrate,
    notify,
    outbox,
    report,
    serve,
    simulate,
    staff,
    templates,
    worker,
)
from gateway.cli.base import Command, CommandParser
from gateway.config import ConfigError

__all__ = ["COMMANDS", "main"]

COMMANDS: tuple[Command, ...] = (
    init,
    serve,
    worker,
    migrate,
    simulate,
    callbacks,
    outbox,
    templates,
    staff,
    notify,
    report,
)
"""In the order ``--help`` lists them."""


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` and run the command it names; exits with the command's status."""
    prog = "sampark" if Path(sys.argv[0]).name == "sampark" else "python -m gateway"
    parser = CommandParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="configuration file (default: ./config.yaml)")
    parser.add_argument("--version", action="version", version=f"sampark {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except ConfigError as e:  # gateway.ops.startup.StartupError included
        print(f"sampark: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    if status:
        raise SystemExit(status)


if __name__ == "__main__":
    main()

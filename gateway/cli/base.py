"""What every command of ``python -m gateway`` shares: the parser that tells a usage error
in one line, argument types, and logging.

A command is a module of this package with ``add_parser(commands)``: it adds its
subcommand, with its handler (the parsed arguments to an exit status) as ``run``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, NoReturn, Protocol, TypeAlias

from gateway.config import Config, LogSettings
from gateway.ops import logs
from gateway.storage.db import database_label

__all__ = ["Command", "CommandParser", "positive_int", "say_database", "setup_logging"]


class Command(Protocol):
    """A command: a module of :mod:`gateway.cli`."""

    def add_parser(self, commands: Commands) -> None:
        """Add the command's subparser to ``commands``, its handler as the ``run`` default:
        a function of the parsed arguments returning the exit status."""


class CommandParser(argparse.ArgumentParser):
    """argparse, with a usage error told in one line like every other error of the
    command line (argparse's own is the whole usage, then the error)."""

    def error(self, message: str) -> NoReturn:
        print(f"sampark: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


if TYPE_CHECKING:
    Commands: TypeAlias = argparse._SubParsersAction[CommandParser]
    """A parser's subcommands (argparse does not name the type publicly)."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return n


def setup_logging(verbose: bool = False, *, config: Config | None = None) -> None:
    """Log lines for a long-running command (``serve``, ``worker``), secrets redacted, in
    ``config``'s ``log`` format from its level (DEBUG with ``verbose``)."""
    settings = config.log if config is not None else LogSettings()
    logs.configure(level="DEBUG" if verbose else settings.level, format=settings.format)


def say_database(config: Config) -> None:
    """Tell which database a command works on (on stderr: its output stays its own)."""
    print(f"database: {database_label(config)}", file=sys.stderr)

"""``python -m gateway templates check``: lint every SMS template in every language."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gateway.app import load_static
from gateway.config import load_config
from gateway.sms.template_check import (
    check_templates,
    format_matrix,
    format_placeholders,
    format_table,
    placeholder_ids,
)

if TYPE_CHECKING:
    from gateway.cli.base import Commands

__all__ = ["add_parser", "run"]


def add_parser(commands: Commands) -> None:
    p = commands.add_parser("templates", help="SMS templates: `templates check` lints them all")
    p.add_argument("action", choices=["check"])
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The table, the SMS count per template and language; 1 when any has a problem."""
    config = load_config(args.config)
    static = load_static(config)
    rows = check_templates(config, static.catalogs, static.templates)
    print(format_table(rows))
    print("\nSMS per template and language (g: GSM-7, u: UCS-2):\n")
    print(format_matrix(rows))
    codes = [lang.code for lang in config.languages]
    ids = placeholder_ids(config.path(config.paths.sms_templates))
    placeholders = format_placeholders(static.templates, ids, codes)
    if placeholders:
        print(
            "\nPlaceholder DLT template IDs (register each text on the operator's DLT "
            "platform and put its real ID in place before sending through a provider on "
            f"DLT):\n{placeholders}"
        )
    bad = [r for r in rows if r.problems]
    print(f"\n{len(rows) - len(bad)} ok, {len(bad)} with problems")
    return 1 if bad else 0

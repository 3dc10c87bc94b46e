"""``sampark init DIR``: a site directory to run the gateway from, without a checkout: the
sample ``config.yaml``, the catalogs (``locales/``) and the SMS templates
(``sms_templates/``), as shipped. Then ``cd DIR && sampark serve``."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import gateway

if TYPE_CHECKING:
    from gateway.cli.base import Commands

__all__ = ["SITE", "add_parser", "run", "skeleton"]

SITE = ("config.yaml", "locales", "sms_templates")
"""What a site directory holds (``paths:`` in ``config.yaml`` names the two folders)."""


def add_parser(commands: Commands) -> None:
    p = commands.add_parser(
        "init", help="write a site directory (config.yaml, locales/, sms_templates/) to run in"
    )
    p.add_argument("directory", type=Path, help="where to write it (made if missing)")
    p.set_defaults(run=run)


def skeleton() -> Path:
    """Where the shipped site is: inside the installed package (a wheel carries it as
    ``gateway/skeleton``: setup.py), else the checkout this package runs from."""
    package = Path(gateway.__file__).resolve().parent
    for place in (package / "skeleton", package.parent):
        if all((place / name).exists() for name in SITE):
            return place
    raise FileNotFoundError(f"no sample site beside {package}")


def run(args: argparse.Namespace) -> int:
    target: Path = args.directory
    taken = [name for name in SITE if (target / name).exists()]
    if taken:
        print(
            f"sampark: {target}: {', '.join(taken)} already there (choose an empty directory; "
            "nothing was written)",
            file=sys.stderr,
        )
        return 2
    source = skeleton()
    target.mkdir(parents=True, exist_ok=True)
    for name in SITE:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, ignore=shutil.ignore_patterns("*.mo"))
        else:
            shutil.copy2(source / name, target / name)
    print(f"wrote {target}: {', '.join(SITE)}")
    print(f"next: edit {target / 'config.yaml'}, then `cd {target} && sampark serve`")
    return 0

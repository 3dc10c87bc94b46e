"""``python -m gateway report``: the monthly review on the command line (the whole state,
optionally narrowed to a district and/or department), audited as ``cli``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from gateway.cli.base import say_database
from gateway.complaints.scope import Scope
from gateway.config import Config, load_config
from gateway.reports.render import review_csv, review_html
from gateway.reports.review import InvalidMonth, month_bounds, monthly_review
from gateway.staff.audit import audit
from gateway.storage.db import using_database

if TYPE_CHECKING:
    from gateway.cli.base import Commands

__all__ = ["add_parser", "run", "run_report"]


def add_parser(commands: Commands) -> None:
    p = commands.add_parser("report", help="the monthly review (JSON, --csv or --html) to stdout")
    p.add_argument("--month", required=True, help="YYYY-MM, a calendar month in service.timezone")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument(
        "--csv", action="store_true", help="CSV: a row per department, district, officer"
    )
    fmt.add_argument("--html", action="store_true", help="a printable HTML page")
    p.add_argument("--district", help="only this district")
    p.add_argument("--department", help="only this department")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    form = "csv" if args.csv else "html" if args.html else "json"
    return asyncio.run(
        run_report(
            config,
            month=args.month,
            form=form,
            district=args.district,
            department=args.department,
        )
    )


async def run_report(
    config: Config,
    *,
    month: str,
    form: str,
    district: str | None = None,
    department: str | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Write the review of ``month`` to ``out`` as ``csv``, ``html`` or ``json``; the exit
    status (2 for a bad argument)."""
    try:
        month_bounds(month, config.service.timezone)
    except InvalidMonth as e:
        print(f"sampark: {e}", file=err)
        return 2
    if district is not None and config.district(district) is None:
        print(f"sampark: --district: unknown district {district!r}", file=err)
        return 2
    if department is not None and config.department(department) is None:
        print(f"sampark: --department: unknown department {department!r}", file=err)
        return 2
    say_database(config)
    async with using_database(config):
        review = await monthly_review(
            month=month,
            scope=Scope(),
            config=config,
            now=datetime.now(UTC),
            district=district,
            department=department,
        )
        await audit(
            "cli",
            "report.monthly",
            target=month,
            detail={"format": form, "district": district, "department": department},
        )
    if form == "csv":
        out.write(review_csv(review))
    elif form == "html":
        title = config.service.name.get("en_IN") or next(iter(config.service.name.values()))
        out.write(review_html(review, title=title))
    else:
        out.write(review.model_dump_json(indent=2) + "\n")
    return 0

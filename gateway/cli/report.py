"""``python -m gateway report``: the monthly review on the command line (the whole state,
optionally narrowed to a district and/or department), audited as ``cli``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TextIO

from gateway.complaints.scope import Scope
from gateway.config import Config
from gateway.reports.render import review_csv, review_html
from gateway.reports.review import InvalidMonth, month_bounds, monthly_review
from gateway.staff.audit import audit
from gateway.storage.db import close_database, open_database

__all__ = ["run_report"]


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
    opened = await open_database(config)
    try:
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
    finally:
        await close_database(opened)
    if form == "csv":
        out.write(review_csv(review))
    elif form == "html":
        title = config.service.name.get("en_IN") or next(iter(config.service.name.values()))
        out.write(review_html(review, title=title))
    else:
        out.write(review.model_dump_json(indent=2) + "\n")
    return 0

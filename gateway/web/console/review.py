"""The monthly review in the console: the staff API's review (:mod:`gateway.reports.review`)
for the same roles, within the signed-in member's scope, as tables and charts.

The page shows the month's figures per department, district and officer, the flags, and
charts (:mod:`.charts`, server-side SVG): received against resolved within the deadline
per department, escalations by level, satisfaction, and a six-month trend (the months
ending with the chosen one, in one query: :func:`gateway.reports.review.monthly_trend`). It
prints (``review.css``'s print rules; ``?print=1`` shows the page as printed) and downloads
as the API's CSV
(:func:`gateway.reports.render.review_csv`). Every view is audited as the API's are
(``report.monthly``, format ``console`` or ``console-csv``).
"""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp_session import get_session
from markupsafe import Markup

from gateway.config import Config
from gateway.reports.render import review_csv
from gateway.reports.review import (
    InvalidMonth,
    MonthlyReview,
    TrendPoint,
    monthly_review,
    monthly_trend,
)
from gateway.staff.audit import actor_of, audit
from gateway.storage.models import StaffRole
from gateway.web.api.review import REVIEW_ROLES
from gateway.web.console.charts import Series, bar_chart, stacked_bars, trend_chart
from gateway.web.console.pages import CONSOLE_TEXT, Names, page_language, render
from gateway.web.console.session import current_scope, current_staff
from gateway.web.console.text import C_
from gateway.web.keys import CLOCK, CONFIG

__all__ = ["routes"]

routes = web.RouteTableDef()

TREND_MONTHS = 6
EARLIEST_MONTH = "2000-01"
"""The first month a review covers (:func:`gateway.reports.review.month_bounds`)."""
BLUE, GREEN, LIGHT, ORANGE, RED, GREY = (
    "#0b4f8a", "#0d6b2f", "#7fb8e6", "#c46a00", "#a30f0f", "#8a949e",
)  # fmt: skip


def _allowed(request: web.Request) -> None:
    if StaffRole(current_staff(request).role) not in REVIEW_ROLES:
        raise web.HTTPForbidden(text="403: your role does not read the monthly review")


def _this_month(request: web.Request) -> str:
    config = request.config_dict[CONFIG]
    now = request.config_dict[CLOCK]().astimezone(ZoneInfo(config.service.timezone))
    return f"{now.year:04d}-{now.month:02d}"


def months_before(month: str, count: int) -> list[str]:
    """The ``count`` months ending with ``month`` (``YYYY-MM``), oldest first."""
    year, number = (int(part) for part in month.split("-"))
    out = []
    for back in range(count - 1, -1, -1):
        index = year * 12 + number - 1 - back
        out.append(f"{index // 12:04d}-{index % 12 + 1:02d}")
    return out


def _narrowing(request: web.Request, config: Config) -> tuple[str | None, str | None]:
    """The district and department asked for (empty: none); 400 naming an unknown one."""
    district = request.query.get("district") or None
    department = request.query.get("department") or None
    if district is not None and config.district(district) is None:
        raise web.HTTPBadRequest(text="400: district: unknown district")
    if department is not None and config.department(department) is None:
        raise web.HTTPBadRequest(text="400: department: unknown department")
    return district, department


async def _review(request: web.Request, month: str, form: str) -> MonthlyReview:
    config = request.config_dict[CONFIG]
    district, department = _narrowing(request, config)
    scope = current_scope(request)
    try:
        review = await monthly_review(
            month=month,
            scope=scope,
            config=config,
            now=request.config_dict[CLOCK](),
            district=district,
            department=department,
        )
    except InvalidMonth as e:
        raise web.HTTPBadRequest(text=f"400: month: {e}") from None
    await audit(
        actor_of(current_staff(request)),
        "report.monthly",
        target=month,
        detail={"format": form, "scope": scope.as_json(), "district": district,
                "department": department},
    )  # fmt: skip
    return review


def _month(request: web.Request) -> str:
    month = request.query.get("month") or _this_month(request)
    if len(month) != 7 or month[4] != "-" or not (month[:4] + month[5:]).isdigit():
        raise web.HTTPBadRequest(text="400: month: give YYYY-MM")
    if not 1 <= int(month[5:]) <= 12:
        raise web.HTTPBadRequest(text="400: month: give YYYY-MM")
    return month


@routes.get("/review")
async def review_page(request: web.Request) -> web.StreamResponse:
    _allowed(request)
    month = _month(request)
    review = await _review(request, month, "console")
    config = request.config_dict[CONFIG]
    district, department = _narrowing(request, config)
    months = [m for m in months_before(month, TREND_MONTHS) if m >= EARLIEST_MONTH]
    trend = await monthly_trend(
        months=months, scope=current_scope(request), config=config,
        district=district, department=department,
    )  # fmt: skip
    staff = current_staff(request)
    text = request.config_dict[CONSOLE_TEXT]
    lang = page_language(request, staff, (await get_session(request)).get("lang"))

    def gettext(message: str) -> str:
        return text.gettext(lang, message)

    names = Names(config, lang, request.config_dict[CLOCK]())
    return await render(
        request,
        "review.html",
        review=review,
        month=month,
        district=district or "",
        department=department or "",
        config=config,
        charts=_charts(review, trend, names, gettext),
        printing=request.query.get("print") == "1",
        query=request.query_string,
    )


def _charts(
    review: MonthlyReview,
    trend: list[TrendPoint],
    names: Names,
    t: Callable[[str], str],
) -> dict[str, Markup]:
    """Each chart of the page, its words in the page's language (``t``)."""
    depts = [(names.department(f.key), f) for f in review.departments]
    received = Series(t(C_("Received")), BLUE)
    resolved = Series(t(C_("Resolved")), LIGHT)
    on_time = Series(t(C_("Resolved within deadline")), GREEN)
    levels = list(review.levels)
    escalations = [
        (names.level(i + 2), review.total.escalated.get(code, 0)) for i, code in enumerate(levels)
    ]
    escalations.append((t(C_("Flagged for the state review")), review.total.flagged))
    satisfaction_rows = [
        (
            label,
            [f.closed_solved, f.closed_no_response, f.not_solved],
            "–" if f.satisfaction is None else f"{f.satisfaction * 100:.0f}%",
        )
        for label, f in [(t(C_("All")), review.total), *depts]
    ]
    return {
        "departments": bar_chart(
            t(C_("Received and resolved within deadline, by department")),
            [(label, [f.received, f.resolved, f.resolved_within_deadline]) for label, f in depts],
            [received, resolved, on_time],
        ),
        "escalations": bar_chart(
            t(C_("Escalations by level reached")),
            [(label, [value]) for label, value in escalations],
            [Series(t(C_("Escalated")), ORANGE)],
        ),
        "satisfaction": stacked_bars(
            t(C_("Satisfaction: how feedback ended")),
            satisfaction_rows,
            [
                Series(t(C_("Solved")), GREEN),
                Series(t(C_("No response")), GREY),
                Series(t(C_("Not solved")), RED),
            ],
        ),
        "trend": trend_chart(
            t(C_("Six months: received and resolved within deadline")),
            [p.month for p in trend],
            [[p.received for p in trend], [p.resolved_within_deadline for p in trend]],
            [received, on_time],
        ),
    }


@routes.get("/review.csv")
async def review_download(request: web.Request) -> web.StreamResponse:
    _allowed(request)
    review = await _review(request, _month(request), "console-csv")
    return web.Response(
        text=review_csv(review),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="review-{review.month}.csv"'},
    )

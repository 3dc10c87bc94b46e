"""``/reports/monthly``: the monthly review for the caller's scope, as JSON, CSV or a
printable HTML page. Every request is audited (``report.monthly``)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from gateway.config import Config
from gateway.errors import FieldError
from gateway.reports.render import review_csv, review_html
from gateway.reports.review import MonthlyReview, monthly_review
from gateway.staff.audit import actor_of, audit
from gateway.storage.models import StaffRole
from gateway.web.api.common import request_query, request_scope, request_staff
from gateway.web.api.openapi import operation
from gateway.web.keys import CLOCK, CONFIG

__all__ = ["REVIEW_ROLES", "routes"]

routes = web.RouteTableDef()

REVIEW_ROLES = (
    StaffRole.STATE_REVIEWER,
    StaffRole.STATE_ADMIN,
    StaffRole.DISTRICT_ADMIN,
    StaffRole.OFFICER,
)
"""Who may read the review (each within their scope); call-centre agents may not."""


class MonthlyQuery(BaseModel):
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    district: str | None = Field(default=None, description="narrow to one district")
    department: str | None = Field(default=None, description="narrow to one department")


def _config(request: web.Request) -> Config:
    return request.config_dict[CONFIG]


async def _review(request: web.Request, form: str) -> MonthlyReview:
    query = request_query(request, MonthlyQuery)
    config = _config(request)
    if query.district is not None and config.district(query.district) is None:
        raise FieldError("district", f"unknown district {query.district!r}")
    if query.department is not None and config.department(query.department) is None:
        raise FieldError("department", f"unknown department {query.department!r}")
    scope = request_scope(request)
    review = await monthly_review(
        month=query.month,
        scope=scope,
        config=config,
        now=request.config_dict[CLOCK](),
        district=query.district,
        department=query.department,
    )
    await audit(
        actor_of(request_staff(request)),
        "report.monthly",
        target=query.month,
        detail={
            "format": form,
            "scope": scope.as_json(),
            "district": query.district,
            "department": query.department,
        },
    )
    return review


@operation(
    routes,
    "GET",
    "/reports/monthly",
    summary="The monthly review for the caller's scope",
    roles=REVIEW_ROLES,
    query=MonthlyQuery,
    response=MonthlyReview,
)
async def monthly_json(request: web.Request) -> web.Response:
    review = await _review(request, "json")
    return web.json_response(text=review.model_dump_json())


@operation(
    routes,
    "GET",
    "/reports/monthly.csv",
    summary="The monthly review as CSV (a row per department, district and officer)",
    roles=REVIEW_ROLES,
    query=MonthlyQuery,
    content_types=("text/csv",),
)
async def monthly_csv(request: web.Request) -> web.Response:
    review = await _review(request, "csv")
    return web.Response(
        text=review_csv(review),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="review-{review.month}.csv"'},
    )


@operation(
    routes,
    "GET",
    "/reports/monthly.html",
    summary="The monthly review as a printable page",
    roles=REVIEW_ROLES,
    query=MonthlyQuery,
    content_types=("text/html",),
)
async def monthly_html(request: web.Request) -> web.Response:
    review = await _review(request, "html")
    config = _config(request)
    title = config.service.name.get("en_IN") or next(iter(config.service.name.values()))
    return web.Response(text=review_html(review, title=title), content_type="text/html")

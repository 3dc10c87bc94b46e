"""The monthly review in the console over HTTP: the API's figures for the member's scope,
the SVG charts, the CSV download, the roles that may not, bad months."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.complaints.scope import Scope
from gateway.config import Config
from gateway.reports.review import monthly_review, monthly_trend
from gateway.storage.models import AuditRecord
from gateway.web.console.review import months_before
from tests.conftest import AppFactory
from tests.review_data import build_october
from tests.staff_helpers import ROLES
from tests.test_api_review import review_config  # noqa: F401  (a fixture)
from tests.test_console import account, sign_in
from tests.test_review import NOW


@pytest.fixture
async def october(start_app: AppFactory, review_config: Config) -> TestClient[Any, Any]:  # noqa: F811
    client = await start_app(review_config, clock=lambda: NOW)
    await build_october()
    return client


def figure(html: str, name: str) -> str:
    found = re.search(rf'<dd id="total-{name}">([^<]*)</dd>', html)
    assert found, name
    return found.group(1)


async def test_a_state_admin_reads_the_month_with_charts_and_csv(
    october: TestClient[Any, Any],
) -> None:
    await account(october, "admin", **ROLES["state_admin"])
    await sign_in(october, "admin")
    page = await october.get("/console/review?month=2026-10")
    assert page.status == 200
    html = await page.text()
    got = {n: figure(html, n) for n in ("received", "resolved", "on-time", "escalated",
                                         "satisfaction", "pending")}  # fmt: skip
    assert got == {"received": "4", "resolved": "4", "on-time": "3", "escalated": "3",
                   "satisfaction": "25%", "pending": "4"}  # fmt: skip
    assert html.count('<svg class="chart" role="img"') == 4
    assert "<script" not in html.split("<main>", 1)[1]  # the charts are drawn here, not there
    assert 'id="table-officer"' in html and "js_theog_je" in html
    assert "2026-05" in html  # the trend's first month
    answer = await october.get("/console/review.csv?month=2026-10")
    assert answer.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await answer.text())))
    assert next(r for r in rows if r["dimension"] == "total")["received"] == "4"
    formats = await AuditRecord.filter(action="report.monthly").values_list("detail", flat=True)
    assert sorted(d["format"] for d in formats if isinstance(d, dict)) == ["console", "console-csv"]


async def test_a_district_admin_sees_their_district_and_an_agent_nothing(
    october: TestClient[Any, Any],
) -> None:
    await account(october, "dc", **ROLES["district_admin"])
    await sign_in(october, "dc")
    html = await (await october.get("/console/review?month=2026-10")).text()
    assert (figure(html, "received"), figure(html, "pending")) == ("3", "2")
    assert "bilaspur" not in html.split('id="table-district"', 1)[1].split("</table>")[0]
    for month in ("2026-13", "oct", "2026-1\x00"):
        assert (await october.get("/console/review", params={"month": month})).status == 400
    assert (await october.get("/console/review?district=nowhere")).status == 400
    await october.post("/console/signout", data={"csrf": re.findall(
        r'name="csrf" value="([^"]+)"', html)[0]})  # fmt: skip
    await account(october, "agent", **ROLES["agent"])
    await sign_in(october, "agent")
    assert (await october.get("/console/review?month=2026-10")).status == 403
    assert (await october.get("/console/review.csv?month=2026-10")).status == 403


def test_six_months_end_with_the_chosen_one() -> None:
    assert months_before("2026-02", 6) == [
        "2025-09", "2025-10", "2025-11", "2025-12", "2026-01", "2026-02",
    ]  # fmt: skip


async def test_the_trend_counts_each_month_as_its_review_does(
    october: TestClient[Any, Any], review_config: Config  # noqa: F811
) -> None:
    months = months_before("2026-11", 4)
    trend = await monthly_trend(months=months, scope=Scope(), config=review_config)
    for point in trend:
        review = await monthly_review(month=point.month, scope=Scope(), config=review_config,
                                      now=NOW)  # fmt: skip
        assert (point.received, point.resolved, point.resolved_within_deadline) == (
            review.total.received, review.total.resolved, review.total.resolved_within_deadline,
        ), point.month  # fmt: skip
    assert [p.received for p in trend] == [1, 3, 4, 1]  # F; C, G, H; A, B, E, I; D

"""The monthly review over the staff API (JSON, CSV, HTML) and the command line: every role
against every endpoint, scopes that never leak, audit records, rendering."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from gateway.config import Config
from gateway.storage.models import AuditRecord, StaffRole
from tests.conftest import ROOT, SHIPPED_CONFIG, AppFactory, make_config
from tests.review_data import build_october
from tests.staff_helpers import ROLES, auth, make_staff_token
from tests.test_review import NOW

ENDPOINTS = (
    "/api/v1/reports/monthly",
    "/api/v1/reports/monthly.csv",
    "/api/v1/reports/monthly.html",
)

STAFF: dict[str, dict[str, Any]] = {
    "reviewer": ROLES["state_reviewer"],
    "admin": ROLES["state_admin"],
    "dc_shimla": ROLES["district_admin"],
    "dc_kangra": ROLES["district_admin_elsewhere"],
    "je_theog": ROLES["officer"],
    "je_chamba": ROLES["officer_elsewhere"],
    "xen_shimla": dict(
        role=StaffRole.OFFICER, department="jal_shakti", level="district", area="shimla"
    ),
    "agent": ROLES["agent"],
    "agent_state": dict(role=StaffRole.AGENT),
}


@pytest.fixture
def review_config(tmp_path: Path, database_url: str, redis_url: str) -> Config:
    raw = yaml.safe_load(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    departments = raw["departments"]
    for d in departments:
        if d["code"] == "revenue":
            d["name"]["en_IN"] = "Revenue <Land & Records>"
    return make_config(
        tmp_path,
        database_url,
        redis_url,
        departments=departments,
        review={"pending_flag_threshold": 2, "escalation_flag_min_outcomes": 1},
    )


@pytest.fixture
async def october(start_app: AppFactory, review_config: Config) -> TestClient[Any, Any]:
    client = await start_app(review_config, clock=lambda: NOW)
    await build_october()
    return client


async def token(client: TestClient[Any, Any], username: str) -> dict[str, str]:
    return auth(await make_staff_token(client, username, **STAFF[username]))


async def get_json(client: TestClient[Any, Any], headers: dict[str, str], query: str) -> Any:
    resp = await client.get(f"/api/v1/reports/monthly?{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


@pytest.mark.parametrize(
    ("username", "received", "pending", "districts"),
    [
        ("reviewer", 4, 4, ["bilaspur", "shimla"]),
        ("admin", 4, 4, ["bilaspur", "shimla"]),
        ("dc_shimla", 3, 2, ["shimla"]),
        # B escalated, G reopened: above the block officer, still the district officer's.
        ("je_theog", 1, 0, ["shimla"]),
        ("xen_shimla", 2, 1, ["shimla"]),
        ("dc_kangra", 0, 0, []),
        ("je_chamba", 0, 0, []),
    ],
)
async def test_each_reviewing_role_gets_its_scope_on_every_endpoint(
    october: TestClient[Any, Any],
    username: str,
    received: int,
    pending: int,
    districts: list[str],
) -> None:
    headers = await token(october, username)
    body = await get_json(october, headers, "month=2026-10")
    assert (body["total"]["received"], body["total"]["pending"]) == (received, pending)
    assert [d["key"] for d in body["districts"]] == districts
    assert body["month"] == "2026-10" and body["timezone"] == "Asia/Kolkata"

    resp = await october.get("/api/v1/reports/monthly.csv?month=2026-10", headers=headers)
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    total = next(r for r in rows if r["dimension"] == "total")
    assert (int(total["received"]), int(total["pending"])) == (received, pending)
    assert sorted(r["key"] for r in rows if r["dimension"] == "district") == districts

    resp = await october.get("/api/v1/reports/monthly.html?month=2026-10", headers=headers)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert "monthly review 2026-10" in await resp.text()

    records = await AuditRecord.filter(actor=f"staff:{username}", action="report.monthly")
    assert sorted(r.detail["format"] for r in records if r.detail) == ["csv", "html", "json"]
    assert all(r.target == "2026-10" for r in records)


@pytest.mark.parametrize("username", ["agent", "agent_state"])
@pytest.mark.parametrize("path", ENDPOINTS)
async def test_agents_may_not_read_the_review(
    october: TestClient[Any, Any], username: str, path: str
) -> None:
    headers = await token(october, username)
    resp = await october.get(f"{path}?month=2026-10", headers=headers)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"
    assert await AuditRecord.filter(action="report.monthly").count() == 0


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_no_token_is_401(october: TestClient[Any, Any], path: str) -> None:
    resp = await october.get(f"{path}?month=2026-10")
    assert resp.status == 401


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "month"),
        ("month=2026-13", "month"),
        ("month=Oct", "month"),
        ("month=2026-10&district=mars", "district"),
        ("month=2026-10&department=moon", "department"),
    ],
)
async def test_bad_parameters_are_400_naming_the_field(
    october: TestClient[Any, Any], path: str, query: str, field: str
) -> None:
    headers = await token(october, "admin")
    resp = await october.get(f"{path}?{query}", headers=headers)
    assert resp.status == 400
    assert (await resp.json())["error"]["field"] == field


async def test_out_of_scope_complaints_never_leak(october: TestClient[Any, Any]) -> None:
    headers = await token(october, "dc_shimla")
    body = await get_json(october, headers, "month=2026-10")
    text = str(body)
    for outside in ("E0005", "F0006", "bilaspur", "sdm_desk", "dc_desk"):
        assert outside not in text
    assert body["total"]["escalated"] == {"tehsil": 1}
    assert body["flagged_departments"] == []
    # Asking for another district narrows to nothing; it never widens the scope.
    body = await get_json(october, headers, "month=2026-10&district=bilaspur")
    assert body["total"]["received"] == body["total"]["pending"] == 0
    assert body["departments"] == body["districts"] == body["officers"] == []
    for path in ENDPOINTS[1:]:
        resp = await october.get(f"{path}?month=2026-10&district=bilaspur", headers=headers)
        assert "F0006" not in await resp.text()


async def test_the_csv_holds_every_figure(october: TestClient[Any, Any]) -> None:
    headers = await token(october, "reviewer")
    resp = await october.get("/api/v1/reports/monthly.csv?month=2026-10", headers=headers)
    assert resp.headers["Content-Disposition"] == 'attachment; filename="review-2026-10.csv"'
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert list(rows[0]) == [
        "dimension", "key", "name", "received", "resolved", "resolved_within_deadline",
        "escalated_to_tehsil", "escalated_to_district", "escalated_to_state", "flagged",
        "reopened", "closed_solved", "closed_no_response", "not_solved", "satisfaction",
        "median_days_to_resolve", "pending", "oldest_pending_ticket", "oldest_pending_days",
        "flag",
    ]  # fmt: skip
    assert [(r["dimension"], r["key"]) for r in rows][:5] == [
        ("total", "*"),
        ("department", "jal_shakti"),
        ("department", "revenue"),
        ("district", "bilaspur"),
        ("district", "shimla"),
    ]
    jal = rows[1]
    assert jal == {
        "dimension": "department", "key": "jal_shakti", "name": "Jal Shakti (Water)",
        "received": "2", "resolved": "4", "resolved_within_deadline": "3",
        "escalated_to_tehsil": "1", "escalated_to_district": "0", "escalated_to_state": "0",
        "flagged": "0", "reopened": "2", "closed_solved": "1", "closed_no_response": "1",
        "not_solved": "2", "satisfaction": "0.25", "median_days_to_resolve": "12.0",
        "pending": "1", "oldest_pending_ticket": "B0002", "oldest_pending_days": "30",
        "flag": "",
    }  # fmt: skip
    revenue = rows[2]
    assert revenue["name"] == "Revenue <Land & Records>"  # CSV keeps text as it is
    assert (revenue["pending"], revenue["flag"]) == ("3", "many_pending")
    flagged = {r["key"] for r in rows if r["flag"] == "escalates_often"}
    assert flagged == {"bdo_desk", "sdm_desk", "js_theog_je"}


async def test_the_html_page_shows_the_figures_and_escapes_names(
    october: TestClient[Any, Any],
) -> None:
    headers = await token(october, "reviewer")
    resp = await october.get("/api/v1/reports/monthly.html?month=2026-10", headers=headers)
    page = await resp.text()
    assert "Revenue &lt;Land &amp; Records&gt;" in page
    assert "<Land" not in page
    assert "@media print" in page
    assert "<script" not in page
    # The total row: received 4, resolved 4, 3 within deadline, 2 + 1 + 0 escalated,
    # 2 reopened, 25% satisfied (1 / 1 / 2), median 12.0 days, 4 pending, F0006 91 days.
    total_row = page.split("<h2>Total</h2>")[1].split("<tbody>")[1].split("</table>")[0]
    cells = [c.split(">", 1)[1] for c in total_row.split("</td>")[:-1]]
    assert cells[1:] == [
        "4", "4", "3", "2", "1", "0", "2", "25%", "1 / 1 / 2", "12.0", "4", "F0006 (91 days)"
    ]  # fmt: skip
    assert "Revenue &lt;Land &amp; Records&gt;: 3 complaints pending" in page


async def test_the_openapi_document_lists_the_review(october: TestClient[Any, Any]) -> None:
    doc = await (await october.get("/api/v1/openapi.json")).json()
    for path in ENDPOINTS:
        assert "get" in doc["paths"][path]
    params = {p["name"] for p in doc["paths"]["/api/v1/reports/monthly"]["get"]["parameters"]}
    assert params == {"month", "district", "department"}


async def test_the_command_line_prints_csv(
    october: TestClient[Any, Any], review_config: Config, database_url: str
) -> None:
    env = {**os.environ, "DATABASE_URL": review_config.database.url, "REDIS_URL": "embedded"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "report", "--month", "2026-10", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = run("--csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    total = rows[0]
    assert (total["dimension"], total["received"], total["resolved"]) == ("total", "4", "4")
    assert (total["oldest_pending_ticket"], total["oldest_pending_days"]) == ("F0006", "91")

    done = run("--csv", "--district", "shimla", "--department", "revenue")
    assert done.returncode == 0, done.stderr
    total = next(csv.DictReader(io.StringIO(done.stdout)))
    assert (total["received"], total["pending"], total["oldest_pending_ticket"]) == (
        "1",
        "1",
        "I0009",
    )
    assert await AuditRecord.filter(actor="cli", action="report.monthly").count() == 2

    done = run("--csv", "--district", "mars")
    assert done.returncode == 2 and "unknown district" in done.stderr

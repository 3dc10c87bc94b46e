"""The monthly review's figures against a hand-made month (tests/review_data.py).

Every expected number below was worked out by hand from the story in review_data.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.complaints.scope import Scope
from gateway.config import Config
from gateway.reports.review import (
    Figures,
    InvalidMonth,
    MonthlyReview,
    month_bounds,
    monthly_review,
)
from tests.conftest import AppFactory, make_config
from tests.review_data import build_october

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def review_config(tmp_path: Path, database_url: str, redis_url: str) -> Config:
    return make_config(
        tmp_path,
        database_url,
        redis_url,
        review={
            "pending_flag_threshold": 2,
            "escalation_flag_min_outcomes": 1,
            "escalation_flag_top": 2,
        },
    )


@pytest.fixture
async def october(start_app: AppFactory, review_config: Config) -> TestClient[Any, Any]:
    client = await start_app(review_config)
    await build_october()
    return client


def row(rows: list[Figures], key: str) -> Figures:
    found = [r for r in rows if r.key == key]
    assert len(found) == 1, f"{key} not in {[r.key for r in rows]}"
    return found[0]


def figures(f: Figures) -> dict[str, Any]:
    return f.model_dump(exclude={"key", "name"})


async def review(config: Config, scope: Scope, **narrow: str) -> MonthlyReview:
    return await monthly_review(month="2026-10", scope=scope, config=config, now=NOW, **narrow)


def test_months_are_calendar_months_in_the_service_timezone() -> None:
    start, end = month_bounds("2026-10", "Asia/Kolkata")
    assert start == datetime(2026, 9, 30, 18, 30, tzinfo=UTC)
    assert end == datetime(2026, 10, 31, 18, 30, tzinfo=UTC)
    start, end = month_bounds("2026-12", "UTC")
    assert (start.month, end.year, end.month) == (12, 2027, 1)
    for bad in ("2026-13", "2026-1", "october", ""):
        with pytest.raises(InvalidMonth):
            month_bounds(bad, "UTC")


async def test_state_totals(october: TestClient[Any, Any], review_config: Config) -> None:
    r = await review(review_config, Scope())
    assert r.as_of == datetime(2026, 10, 31, 18, 30, tzinfo=UTC)
    assert figures(r.total) == {
        "received": 4,  # A, B (00:30 IST on 1 Oct), E, I; not D (1 Nov IST)
        "resolved": 4,  # A, B, C, G
        "resolved_within_deadline": 3,  # C was late
        "escalated": {"tehsil": 2, "district": 1},  # B, E to tehsil; E to district
        "flagged": 0,
        "reopened": 2,  # B, G
        "closed_solved": 1,  # A
        "closed_no_response": 1,  # C
        "not_solved": 2,
        "satisfaction": 0.25,
        "median_days_to_resolve": 12.0,  # 3, 10, 14, 49
        "pending": 4,  # B, E, F, I
        "oldest_pending_ticket": "F0006",
        "oldest_pending_days": 91,
    }
    assert r.levels == ["tehsil", "district", "state"]


async def test_by_department_and_district(
    october: TestClient[Any, Any], review_config: Config
) -> None:
    r = await review(review_config, Scope())
    assert [d.key for d in r.departments] == ["jal_shakti", "revenue"]
    assert figures(row(r.departments, "jal_shakti")) == {
        "received": 2,
        "resolved": 4,
        "resolved_within_deadline": 3,
        "escalated": {"tehsil": 1},
        "flagged": 0,
        "reopened": 2,
        "closed_solved": 1,
        "closed_no_response": 1,
        "not_solved": 2,
        "satisfaction": 0.25,
        "median_days_to_resolve": 12.0,
        "pending": 1,
        "oldest_pending_ticket": "B0002",
        "oldest_pending_days": 30,
    }
    revenue = row(r.departments, "revenue")
    assert revenue.name == "Revenue"
    assert figures(revenue) == {
        "received": 2,
        "resolved": 0,
        "resolved_within_deadline": 0,
        "escalated": {"tehsil": 1, "district": 1},
        "flagged": 0,
        "reopened": 0,
        "closed_solved": 0,
        "closed_no_response": 0,
        "not_solved": 0,
        "satisfaction": None,
        "median_days_to_resolve": None,
        "pending": 3,
        "oldest_pending_ticket": "F0006",
        "oldest_pending_days": 91,
    }
    assert [d.key for d in r.districts] == ["bilaspur", "shimla"]
    shimla = row(r.districts, "shimla")
    assert (shimla.received, shimla.resolved, shimla.pending) == (3, 4, 2)
    assert (shimla.oldest_pending_ticket, shimla.oldest_pending_days) == ("B0002", 30)
    assert shimla.median_days_to_resolve == 12.0
    bilaspur = row(r.districts, "bilaspur")
    assert (bilaspur.received, bilaspur.resolved, bilaspur.pending) == (1, 0, 2)
    assert bilaspur.escalated == {"tehsil": 1, "district": 1}


async def test_by_officer(october: TestClient[Any, Any], review_config: Config) -> None:
    r = await review(review_config, Scope())
    je = row(r.officers, "js_theog_je")
    assert je.name == "Junior Engineer, Jal Shakti, Theog"
    assert figures(je) == {
        "received": 2,  # A, B
        "resolved": 2,  # A, C
        "resolved_within_deadline": 1,
        "escalated": {"tehsil": 1},  # B taken from them
        "flagged": 0,
        "reopened": 1,  # G's first resolution rejected
        "closed_solved": 1,
        "closed_no_response": 1,
        "not_solved": 1,
        "satisfaction": 0.3333,
        "median_days_to_resolve": 26.0,  # 3 and 49
        "pending": 0,
        "oldest_pending_ticket": None,
        "oldest_pending_days": None,
    }
    ae = row(r.officers, "js_theog_ae")
    assert (ae.resolved, ae.resolved_within_deadline, ae.reopened) == (2, 2, 1)
    assert (ae.satisfaction, ae.median_days_to_resolve, ae.pending) == (0.0, 12.0, 0)
    bdo = row(r.officers, "bdo_desk")
    assert (bdo.received, bdo.escalated, bdo.pending) == (2, {"tehsil": 1}, 2)
    assert (bdo.oldest_pending_ticket, bdo.oldest_pending_days) == ("F0006", 91)
    assert row(r.officers, "sdm_desk").escalated == {"district": 1}
    xen = row(r.officers, "js_shimla_xen")
    assert (xen.received, xen.pending, xen.oldest_pending_ticket) == (0, 1, "B0002")
    dc = row(r.officers, "dc_desk")
    assert (dc.pending, dc.oldest_pending_ticket, dc.oldest_pending_days) == (1, "E0005", 28)


async def test_flags(october: TestClient[Any, Any], review_config: Config) -> None:
    r = await review(review_config, Scope())
    assert [(f.department, f.pending) for f in r.flagged_departments] == [("revenue", 3)]
    assert [
        (o.officer, o.escalated, o.resolved, o.escalation_rate) for o in r.flagged_officers
    ] == [
        ("bdo_desk", 1, 0, 1.0),
        ("sdm_desk", 1, 0, 1.0),
    ]


async def test_default_flag_thresholds_flag_nothing_in_a_small_month(
    client: TestClient[Any, Any], config: Config
) -> None:
    await build_october()
    r = await review(config, Scope())
    assert config.review.pending_flag_threshold == 100
    assert r.flagged_departments == [] and r.flagged_officers == []


async def test_a_district_admin_sees_only_their_district(
    october: TestClient[Any, Any], review_config: Config
) -> None:
    r = await review(review_config, Scope(district="shimla"))
    assert [d.key for d in r.districts] == ["shimla"]
    assert (r.total.received, r.total.resolved, r.total.pending) == (3, 4, 2)
    assert r.total.escalated == {"tehsil": 1}
    assert (r.total.oldest_pending_ticket, r.total.oldest_pending_days) == ("B0002", 30)
    revenue = row(r.departments, "revenue")  # only I, in Shimla
    assert (revenue.received, revenue.pending, revenue.oldest_pending_ticket) == (1, 1, "I0009")
    assert revenue.oldest_pending_days == 11
    assert revenue.escalated == {}
    assert {o.key for o in r.officers} == {
        "js_theog_je",
        "js_theog_ae",
        "bdo_desk",
        "js_shimla_xen",
    }
    assert "sdm_desk" not in {o.key for o in r.officers}
    assert row(r.officers, "bdo_desk").pending == 1  # F in Bilaspur is not counted
    assert r.flagged_departments == []  # revenue's 3 pending are 1 here


async def test_an_officer_sees_their_department_in_their_block(
    october: TestClient[Any, Any], review_config: Config
) -> None:
    r = await review(review_config, Scope(department="jal_shakti", block="theog"))
    assert [d.key for d in r.departments] == ["jal_shakti"]
    assert (r.total.received, r.total.pending, r.total.oldest_pending_ticket) == (2, 1, "B0002")


async def test_narrowing_never_widens_the_scope(
    october: TestClient[Any, Any], review_config: Config
) -> None:
    r = await review(review_config, Scope(), district="bilaspur")
    assert (r.total.received, r.total.pending) == (1, 2)
    r = await review(review_config, Scope(), department="jal_shakti", district="shimla")
    assert (r.total.received, r.total.pending) == (2, 1)
    r = await review(review_config, Scope(district="shimla"), district="bilaspur")
    assert (r.total.received, r.total.resolved, r.total.pending) == (0, 0, 0)
    assert r.departments == r.districts == r.officers == []


async def test_the_current_month_counts_pending_as_of_now(
    october: TestClient[Any, Any], review_config: Config
) -> None:
    now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    r = await monthly_review(month="2026-11", scope=Scope(), config=review_config, now=now)
    assert r.as_of == now
    assert r.total.received == 1  # D
    assert r.total.closed_solved == 1  # G on 11-02 00:00
    # B, D, E, F, I open now (I is resolved only on 11-03)
    assert (r.total.pending, r.total.oldest_pending_ticket) == (5, "F0006")


async def test_lifecycle_events_record_the_officer_level_and_deadline(
    start_app: AppFactory, config: Config
) -> None:
    """What the review counts per officer comes from these fields, written by the real
    registration and lifecycle (USSD, officers' and citizens' SMS, the deadline job)."""
    from gateway.app import LIFECYCLE
    from gateway.storage.models import Complaint, ComplaintEvent
    from tests.test_lifecycle import OFFICER_L2, Clock, register, sms

    clock = Clock()
    client = await start_app(config, clock=clock)
    c = await register(client, "+919811115555", "2")
    first_due = c.due_at
    clock.advance(days=8)
    assert await client.app[LIFECYCLE].escalate_overdue() == 1
    await c.refresh_from_db()
    second_due = c.due_at
    assert await sms(client, OFFICER_L2, f"{c.ticket} DONE Pipe replaced") == 200
    assert await sms(client, "+919811115555", "2") == 200
    events = await ComplaintEvent.filter(complaint_id=c.id).order_by("id")
    assert [(e.kind, e.officer, e.level, e.due_at) for e in events] == [
        ("registered", "js_theog_je", 1, first_due),
        ("assigned", "js_theog_je", 1, first_due),
        ("escalated", "js_theog_je", 2, first_due),
        ("resolved", "js_theog_ae", 2, second_due),
        ("reopened", "js_theog_ae", 3, second_due),
    ]
    assert (await Complaint.get(id=c.id)).officer == "js_shimla_xen"


async def test_now_in_another_time_zone_is_the_same_instant(
    october: TestClient[Any, Any], review_config: Config
) -> None:
    from zoneinfo import ZoneInfo

    # 20:00 UTC is 01:30 IST on 3 Nov: after I's resolution (00:00 UTC on 3 Nov) only as text.
    now = datetime(2026, 11, 2, 20, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Kolkata"))
    r = await monthly_review(month="2026-11", scope=Scope(), config=review_config, now=now)
    assert r.as_of == now
    assert (r.total.pending, r.total.oldest_pending_ticket) == (5, "F0006")

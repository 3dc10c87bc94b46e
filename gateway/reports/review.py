"""The monthly review: what each department, district and officer did with complaints in a
calendar month, for one scope.

Definitions (a month is a calendar month in ``service.timezone``; "in the month" means an
event's time falls in it; every figure counts only complaints the caller may read
(:class:`~gateway.complaints.scope.Scope`), judged by where the complaint is *now*, so a transferred
complaint's history counts where it went, and one escalated above an officer's level
leaves that officer's review):

- **received**: complaints registered in the month.
- **resolved**: officers' resolutions in the month; **resolved within deadline**: those made
  no later than the deadline the complaint had at that level (recorded on the event).
- **escalated**, by level: deadline escalations in the month, keyed by the level reached
  (``tehsil``, ``district``, ``state``); **flagged**: complaints past the last level flagged
  for the state review in the month.
- **reopened**: complaints the citizen said were not solved, in the month.
- **satisfaction**: of the complaints whose feedback ended in the month, the share the
  citizen rated solved: ``closed_solved / (closed_solved + closed_no_response +
  not_solved)``, where ``closed_solved`` is closed after a "solved" answer,
  ``closed_no_response`` closed when the citizen did not answer, and ``not_solved`` is the
  reopenings; ``None`` when none ended.
- **median days to resolve**: over the month's resolutions, the median of days from
  registration to that resolution.
- **pending**, **oldest pending**: complaints open (with an officer, on a deadline) at the
  end of the month, or now for the current month; the oldest one's ticket and its age in
  whole days then.

Officers: each event counts for the officer recorded on it, the one who held the
complaint when it happened (for an escalation or a reopening, the officer it was taken
from; for a registration, the first officer). Pending and oldest pending count for the
complaint's officer now. Events recorded before officers were kept on events count under
no officer (key ``""``).

Flags: departments with more than ``review.pending_flag_threshold`` pending complaints, and
the ``review.escalation_flag_top`` officers whose complaints most often escalate: the
highest ``escalated / (escalated + resolved)`` among officers with at least
``review.escalation_flag_min_outcomes`` complaints escalated or resolved in the month.

Every figure is an SQL aggregate: counts (and each cell's oldest pending complaint, by a
window function) per (department, district, officer) cell, added up per dimension here;
medians by a window function per dimension. No query returns more rows than there are
such cells, however many complaints the month holds (``bench/review.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from tortoise.connection import get_connection

from gateway.complaints.lifecycle import OPEN
from gateway.complaints.scope import Scope
from gateway.config import Config
from gateway.errors import FieldError
from gateway.storage.limits import EARLIEST_DATE, LATEST_DATE
from gateway.storage.models import ComplaintStatus, EventKind, MissedCall

__all__ = [
    "DIMENSIONS",
    "Figures",
    "FlaggedDepartment",
    "FlaggedOfficer",
    "InvalidMonth",
    "MissedCallFigures",
    "MonthlyReview",
    "month_bounds",
    "monthly_review",
]

Dimension = Literal["department", "district", "officer"]
DIMENSIONS: tuple[Dimension, ...] = ("department", "district", "officer")

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class InvalidMonth(FieldError):
    """The month is not ``YYYY-MM``, or is outside the years the review covers."""

    def __init__(self, problem: str) -> None:
        super().__init__("month", problem)


class Figures(BaseModel):
    """One row of the review: a department, a district, an officer, or the total."""

    key: str
    name: str
    received: int = 0
    resolved: int = 0
    resolved_within_deadline: int = 0
    escalated: dict[str, int] = {}
    """Escalations by the level reached (level code)."""
    flagged: int = 0
    reopened: int = 0
    closed_solved: int = 0
    closed_no_response: int = 0
    not_solved: int = 0
    satisfaction: float | None = None
    median_days_to_resolve: float | None = None
    pending: int = 0
    oldest_pending_ticket: str | None = None
    oldest_pending_days: int | None = None

    @property
    def escalated_total(self) -> int:
        return sum(self.escalated.values())


class FlaggedDepartment(BaseModel):
    department: str
    name: str
    pending: int


class FlaggedOfficer(BaseModel):
    officer: str
    name: str
    escalated: int
    resolved: int
    escalation_rate: float


class MissedCallFigures(BaseModel):
    """The month's missed calls to the helpline's number (state-wide: a call has no area)."""

    calls: int
    """Missed calls received."""
    texted: int
    """Those answered with an SMS (at most one an hour per number)."""
    numbers: int
    """Distinct numbers that called."""


class MonthlyReview(BaseModel):
    """The review of one month for one scope."""

    month: str
    timezone: str
    start: datetime
    """The month's first instant (UTC)."""
    end: datetime
    """The next month's first instant (UTC)."""
    as_of: datetime
    """When pending complaints are counted: the month's end, or now for the current month."""
    scope: dict[str, str | bool | None]
    levels: list[str]
    """Level codes an escalation can reach, in order (the columns of ``escalated``)."""
    total: Figures
    departments: list[Figures]
    districts: list[Figures]
    officers: list[Figures]
    flagged_departments: list[FlaggedDepartment]
    flagged_officers: list[FlaggedOfficer]
    missed_calls: MissedCallFigures | None = None
    """For a state-wide review only (a missed call names no department or area)."""


def month_bounds(month: str, timezone: str) -> tuple[datetime, datetime]:
    """The UTC instants where calendar month ``YYYY-MM`` in ``timezone`` starts and ends."""
    m = _MONTH.match(month)
    if m is None:
        raise InvalidMonth(f"{month!r} is not a month like 2026-10")
    year, mon = int(m.group(1)), int(m.group(2))
    if not EARLIEST_DATE.year <= year <= LATEST_DATE.year:
        raise InvalidMonth(
            f"{month!r} is not between {EARLIEST_DATE:%Y-%m} and {LATEST_DATE:%Y-%m}"
        )
    zone = ZoneInfo(timezone)
    start = datetime(year, mon, 1, tzinfo=zone)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


class _Query:
    """Parameterised SQL for the connection's dialect (SQLite ``?``, PostgreSQL ``$n``)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.values: list[Any] = []

    def p(self, value: Any) -> str:
        self.values.append(value)
        # Numbered in both dialects: the text need not follow the order values are added.
        return f"?{len(self.values)}" if self.dialect == "sqlite" else f"${len(self.values)}"

    def days(self, later: str, earlier: str) -> str:
        if self.dialect == "sqlite":
            return f"(julianday({later}) - julianday({earlier}))"
        return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"

    def scope(self, conditions: Mapping[str, Any]) -> str:
        """``conditions`` (tortoise lookups on the complaint, as a scope writes them:
        ``field`` or ``field__lte``) as SQL on ``c``."""
        parts = []
        for key, value in conditions.items():
            field, _, lookup = key.partition("__")
            parts.append(f"c.{field} {_OPERATORS[lookup]} {self.p(value)}")
        return " AND ".join(parts) if parts else "1 = 1"


_OPERATORS = {"": "=", "lte": "<="}


_EVENT_KINDS = (
    EventKind.REGISTERED,
    EventKind.RESOLVED,
    EventKind.REOPENED,
    EventKind.CLOSED,
    EventKind.ESCALATED,
    EventKind.FLAGGED,
)


def _conditions(
    scope: Scope, *, district: str | None, department: str | None
) -> list[dict[str, Any]]:
    """The scope's conditions, narrowed; two values for one field simply match nothing."""
    extra = {
        name: value for name, value in (("district", district), ("department", department)) if value
    }
    return [scope.reading(), extra]


def _median_group(dimension: Dimension | None) -> tuple[str, str]:
    """The grouping expression of a median and its PARTITION BY clause."""
    if dimension is None:
        return "'*'", ""
    expr = "COALESCE(e.officer, '')" if dimension == "officer" else f"c.{dimension}"
    return expr, f"PARTITION BY {expr}"


# Counts are taken once per cell (department, district, officer) and added up per
# dimension in Python: a few thousand cells at most, one pass over the month instead of four.
_CELL_EVENT = "c.department AS dep, c.district AS dis, COALESCE(e.officer, '') AS off"
_CELL_EVENT_GROUP = "c.department, c.district, COALESCE(e.officer, '')"
_CELL_NOW = "c.department AS dep, c.district AS dis, COALESCE(c.officer, '') AS off"
_CELL_NOW_GROUP = "c.department, c.district, COALESCE(c.officer, '')"
_CELL_FIELD: dict[Dimension | None, str | None] = {
    None: None,
    "department": "dep",
    "district": "dis",
    "officer": "off",
}


def _cell_key(row: Mapping[str, Any], dim: Dimension | None) -> str:
    name = _CELL_FIELD[dim]
    return "*" if name is None else str(row[name])


@dataclass(frozen=True)
class _Cells:
    events: list[dict[str, Any]]
    escalations: list[dict[str, Any]]
    pending: list[dict[str, Any]]


def _lit(value: str) -> str:
    """An SQL literal for one of our own enum values (never for input)."""
    assert re.fullmatch(r"[a-z_]+", value)
    return f"'{value}'"


async def _rows(q: _Query, sql: str) -> list[dict[str, Any]]:
    return list(await get_connection("default").execute_query_dict(sql, q.values))


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Builder:
    def __init__(
        self,
        *,
        dialect: str,
        conditions: list[dict[str, Any]],
        start: datetime,
        end: datetime,
        as_of: datetime,
    ) -> None:
        self.dialect = dialect
        self.conditions = conditions
        self.start, self.end, self.as_of = start, end, as_of

    def _q(self) -> tuple[_Query, str]:
        q = _Query(self.dialect)
        where = " AND ".join(q.scope(c) for c in self.conditions)
        return q, where

    async def event_cells(self) -> list[dict[str, Any]]:
        """Event counts per (department, district, officer on the event)."""
        q, where = self._q()
        k = {kind: _lit(kind.value) for kind in _EVENT_KINDS}
        closed = _lit(ComplaintStatus.CLOSED.value)
        no_response = _lit(ComplaintStatus.CLOSED_NO_RESPONSE.value)
        sql = f"""
            SELECT {_CELL_EVENT},
              SUM(CASE WHEN e.kind = {k[EventKind.REGISTERED]} THEN 1 ELSE 0 END) AS received,
              SUM(CASE WHEN e.kind = {k[EventKind.RESOLVED]} THEN 1 ELSE 0 END) AS resolved,
              SUM(CASE WHEN e.kind = {k[EventKind.RESOLVED]} AND e.due_at IS NOT NULL
                        AND e.created_at <= e.due_at THEN 1 ELSE 0 END) AS on_time,
              SUM(CASE WHEN e.kind = {k[EventKind.REOPENED]} THEN 1 ELSE 0 END) AS reopened,
              SUM(CASE WHEN e.kind = {k[EventKind.CLOSED]} AND e.to_status = {closed}
                       THEN 1 ELSE 0 END) AS solved,
              SUM(CASE WHEN e.kind = {k[EventKind.CLOSED]} AND e.to_status = {no_response}
                       THEN 1 ELSE 0 END) AS no_response,
              SUM(CASE WHEN e.kind = {k[EventKind.FLAGGED]} THEN 1 ELSE 0 END) AS flagged
            FROM complaint_event e JOIN complaint c ON c.id = e.complaint_id
            WHERE e.created_at >= {q.p(self.start)} AND e.created_at < {q.p(self.end)}
              AND e.kind IN ({", ".join(k.values())})
              AND {where}
            GROUP BY {_CELL_EVENT_GROUP}"""
        return await _rows(q, sql)

    async def escalation_cells(self) -> list[dict[str, Any]]:
        """Escalations per (department, district, officer it was taken from, level reached)."""
        q, where = self._q()
        sql = f"""
            SELECT {_CELL_EVENT}, e.level AS level, COUNT(*) AS n
            FROM complaint_event e JOIN complaint c ON c.id = e.complaint_id
            WHERE e.kind = {_lit(EventKind.ESCALATED.value)}
              AND e.created_at >= {q.p(self.start)} AND e.created_at < {q.p(self.end)}
              AND {where}
            GROUP BY {_CELL_EVENT_GROUP}, e.level"""
        return await _rows(q, sql)

    async def medians(self, dim: Dimension | None) -> dict[str, float]:
        q, where = self._q()
        g, partition = _median_group(dim)
        days = q.days("e.created_at", "c.created_at")
        sql = f"""
            SELECT g, AVG(d) AS median FROM (
              SELECT {g} AS g, {days} AS d,
                ROW_NUMBER() OVER ({partition} ORDER BY {days}) AS rn,
                COUNT(*) OVER ({partition}) AS n
              FROM complaint_event e JOIN complaint c ON c.id = e.complaint_id
              WHERE e.kind = {_lit(EventKind.RESOLVED.value)}
                AND e.created_at >= {q.p(self.start)} AND e.created_at < {q.p(self.end)}
                AND {where}
            ) ranked
            WHERE rn IN ((n + 1) / 2, (n + 2) / 2)
            GROUP BY g"""
        return {str(r["g"]): round(float(r["median"]), 1) for r in await _rows(q, sql)}

    def _pending_sql(self, q: _Query, where: str) -> str:
        """Complaints open at ``as_of``: registered before it, not closed by then, and whose
        last status before it is an open one (closed complaints never reopen)."""
        as_of = q.p(self.as_of)
        open_statuses = ", ".join(_lit(s.value) for s in OPEN)
        return f"""
            FROM complaint c
            WHERE c.created_at < {as_of}
              AND (c.closed_at IS NULL OR c.closed_at >= {as_of})
              AND {where}
              AND (SELECT e.to_status FROM complaint_event e
                   WHERE e.complaint_id = c.id AND e.created_at < {as_of}
                     AND e.to_status IS NOT NULL
                   ORDER BY e.created_at DESC, e.id DESC LIMIT 1)
                  IN ({open_statuses})"""

    async def pending_cells(self) -> list[dict[str, Any]]:
        """Pending complaints per (department, district, officer now), each cell with its
        oldest complaint."""
        q, where = self._q()
        body = self._pending_sql(q, where)
        sql = f"""
            SELECT dep, dis, off, n, ticket, created_at, id FROM (
              SELECT {_CELL_NOW}, c.ticket AS ticket, c.created_at AS created_at, c.id AS id,
                ROW_NUMBER() OVER (PARTITION BY {_CELL_NOW_GROUP} ORDER BY c.created_at, c.id)
                  AS rn,
                COUNT(*) OVER (PARTITION BY {_CELL_NOW_GROUP}) AS n
              {body}
            ) ranked
            WHERE rn = 1"""
        return await _rows(q, sql)


def _name(names: Mapping[str, str], config: Config) -> str:
    return (
        names.get("en_IN")
        or names.get(config.service.default_language)
        or next(iter(names.values()), "")
    )


def _display(config: Config, dim: Dimension | None, key: str) -> str:
    if dim is None:
        return "Total"
    if dim == "department":
        d = config.department(key)
        return _name(d.name, config) if d else key
    if dim == "district":
        dist = config.district(key)
        return _name(dist.name, config) if dist else key
    officer = next((o for o in config.officers if o.code == key), None)
    if officer is not None:
        return officer.name
    return "(no officer recorded)" if key == "" else key


_EVENT_SUMS = ("received", "resolved", "on_time", "reopened", "solved", "no_response", "flagged")


async def _figures(
    b: _Builder, cells: _Cells, config: Config, dim: Dimension | None, as_of: datetime
) -> list[Figures]:
    events: dict[str, dict[str, int]] = {}
    for row in cells.events:
        sums = events.setdefault(_cell_key(row, dim), {})
        for name in _EVENT_SUMS:
            sums[name] = sums.get(name, 0) + int(row[name] or 0)
    escalations: dict[str, dict[int | None, int]] = {}
    for row in cells.escalations:
        by_level = escalations.setdefault(_cell_key(row, dim), {})
        level = None if row["level"] is None else int(row["level"])
        by_level[level] = by_level.get(level, 0) + int(row["n"])
    pending: dict[str, dict[str, Any]] = {}
    for row in cells.pending:
        key = _cell_key(row, dim)
        order = (_when(row["created_at"]), int(row["id"]))
        seen = pending.get(key)
        if seen is None:
            pending[key] = {**row, "n": int(row["n"]), "order": order}
        else:
            seen["n"] += int(row["n"])
            if order < seen["order"]:
                seen.update(ticket=row["ticket"], created_at=row["created_at"], order=order)
    medians = await b.medians(dim)
    level_codes = [lv.code for lv in config.levels]
    out: list[Figures] = []
    for key in sorted(set(events) | set(escalations) | set(medians) | set(pending)):
        ev = events.get(key, {})
        solved = int(ev.get("solved") or 0)
        no_response = int(ev.get("no_response") or 0)
        reopened = int(ev.get("reopened") or 0)
        ended = solved + no_response + reopened
        escalated: dict[str, int] = {}
        for level, n in sorted(
            escalations.get(key, {}).items(), key=lambda kv: (kv[0] is None, kv[0] or 0)
        ):
            code = (
                level_codes[level - 1]
                if level is not None and 1 <= level <= len(level_codes)
                else "unknown"
            )
            escalated[code] = escalated.get(code, 0) + n
        p = pending.get(key)
        oldest_days = None
        if p is not None:
            oldest_days = int((as_of - _when(p["created_at"])).total_seconds() // 86400)
        out.append(
            Figures(
                key=key,
                name=_display(config, dim, key),
                received=int(ev.get("received") or 0),
                resolved=int(ev.get("resolved") or 0),
                resolved_within_deadline=int(ev.get("on_time") or 0),
                escalated=escalated,
                flagged=int(ev.get("flagged") or 0),
                reopened=reopened,
                closed_solved=solved,
                closed_no_response=no_response,
                not_solved=reopened,
                satisfaction=round(solved / ended, 4) if ended else None,
                median_days_to_resolve=medians.get(key),
                pending=int(p["n"]) if p else 0,
                oldest_pending_ticket=str(p["ticket"]) if p else None,
                oldest_pending_days=oldest_days,
            )
        )
    return out


async def monthly_review(
    *,
    month: str,
    scope: Scope,
    config: Config,
    now: datetime,
    district: str | None = None,
    department: str | None = None,
) -> MonthlyReview:
    """The review of ``month`` (``YYYY-MM``) for ``scope``, optionally narrowed further to
    one ``district`` and/or ``department`` (never widened: a district outside the scope
    gives an empty review). Raises :class:`InvalidMonth`."""
    timezone = config.service.timezone
    start, end = month_bounds(month, timezone)
    as_of = min(end, now.astimezone(UTC))  # stored times are UTC (compared as text on SQLite)
    conn = get_connection("default")
    builder = _Builder(
        dialect=conn.capabilities.dialect,
        conditions=_conditions(scope, district=district, department=department),
        start=start,
        end=end,
        as_of=as_of,
    )
    cells = _Cells(
        events=await builder.event_cells(),
        escalations=await builder.escalation_cells(),
        pending=await builder.pending_cells(),
    )
    totals = await _figures(builder, cells, config, None, as_of)
    total = totals[0] if totals else Figures(key="*", name="Total")
    rows = {dim: await _figures(builder, cells, config, dim, as_of) for dim in DIMENSIONS}
    settings = config.review
    flagged_departments = [
        FlaggedDepartment(department=f.key, name=f.name, pending=f.pending)
        for f in sorted(rows["department"], key=lambda f: (-f.pending, f.key))
        if f.pending > settings.pending_flag_threshold
    ]
    candidates = []
    for f in rows["officer"]:
        outcomes = f.escalated_total + f.resolved
        if f.key and f.escalated_total and outcomes >= settings.escalation_flag_min_outcomes:
            candidates.append(
                FlaggedOfficer(
                    officer=f.key,
                    name=f.name,
                    escalated=f.escalated_total,
                    resolved=f.resolved,
                    escalation_rate=round(f.escalated_total / outcomes, 4),
                )
            )
    candidates.sort(key=lambda o: (-o.escalation_rate, -o.escalated, o.officer))
    state_wide = not (
        scope.department or scope.district or scope.tehsil or scope.block or district or department
    )
    return MonthlyReview(
        month=month,
        timezone=timezone,
        start=start,
        end=end,
        as_of=as_of,
        scope={
            "department": scope.department,
            "district": scope.district,
            "tehsil": scope.tehsil,
            "block": scope.block,
            "up_to_level": config.levels[scope.level - 1].code if scope.level else None,
            "narrowed_to_district": district,
            "narrowed_to_department": department,
        },
        levels=[lv.code for lv in config.levels[1:]],
        total=total,
        departments=rows["department"],
        districts=rows["district"],
        officers=rows["officer"],
        flagged_departments=flagged_departments,
        flagged_officers=candidates[: settings.escalation_flag_top],
        missed_calls=await _missed_calls(start, as_of) if state_wide else None,
    )


async def _missed_calls(start: datetime, end: datetime) -> MissedCallFigures:
    calls = MissedCall.filter(received_at__gte=start, received_at__lt=end)
    return MissedCallFigures(
        calls=await calls.count(),
        texted=await calls.filter(replied=True).count(),
        numbers=len(set(await calls.values_list("phone", flat=True))),
    )

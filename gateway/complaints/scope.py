"""What complaints a staff member may read and what they may act on: the rule, written once.

- **State administrators** read and act on everything; **state reviewers** read everything
  and change nothing.
- **District administrators and agents** read and act on their district (an agent with no
  district: the whole state), at any level.
- **Officers** work one post: their department (or all departments), their area, their
  level. They *act* only on complaints of their department in their area whose current
  level is their level, and, when the account is tied to a configured officer
  (``officer_code``), only on those assigned to that officer (as the SMS path has always
  required of an officer writing ``<ticket> DONE``). They *read* the complaints of their
  department in their area at their level and below: a tehsil officer supervises the
  block-level complaints of their tehsil. A complaint that moved above them (escalated, or
  reopened after the citizen said "not solved") is out of their scope like any other.

Both halves are written once, as lookups on :class:`Complaint` fields
(:meth:`Scope.reading`, :meth:`Scope.acting`): the database applies them to every staff
query (lists, counts, campaign audiences, the monthly review), and :meth:`Scope.refusal`
applies the same lookups to the complaint an action has just read and locked, in the
lifecycle's transaction, for the staff API and SMS alike. A complaint outside the reading
scope is never read, counted or notified, and a request naming one answers as if it did
not exist.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from gateway.config import Config, Officer, area_field
from gateway.storage.models import Complaint, StaffMember, StaffRole

__all__ = [
    "AREA_NAMES",
    "OutOfScope",
    "Scope",
    "area_lookups",
    "level_number",
    "officer_scope",
    "scope_of",
]

_NOTHING = 0
"""The level of an account whose level the config no longer knows: it matches nothing."""


class OutOfScope(Exception):
    """A staff member or officer tried to act on a complaint outside their acting scope."""

    def __init__(self, ticket: str | None, reason: str) -> None:
        super().__init__(f"complaint {ticket}: {reason}")
        self.ticket = ticket
        self.reason = reason


AREA_NAMES = ("department", "district", "tehsil", "block")
"""The fields that place a complaint, a scope or an audience (``None``: any)."""


def area_lookups(area: object) -> dict[str, Any]:
    """``area``'s :data:`AREA_NAMES` that are set, as equality lookups on complaints."""
    values = ((name, getattr(area, name)) for name in AREA_NAMES)
    return {name: value for name, value in values if value is not None}


@dataclass(frozen=True, kw_only=True)
class Scope:
    """Restrictions on complaints; ``None`` means no restriction on that field.

    ``level`` (1 = the first level) is an officer's: they read complaints at it and below
    and act on those at it. ``officer`` is the configured officer an account acts as: it
    acts only on complaints assigned to them (reading is not narrowed by it).
    ``writable`` is False for state reviewers, who read everything and change nothing.
    """

    department: str | None = None
    district: str | None = None
    tehsil: str | None = None
    block: str | None = None
    level: int | None = None
    officer: str | None = None
    writable: bool = True

    def _area(self) -> dict[str, Any]:
        return area_lookups(self)

    def reading(self) -> dict[str, Any]:
        """What may be read, as tortoise lookups on :class:`Complaint` (``field`` is equal,
        ``field__lte`` at most)."""
        where = self._area()
        if self.level is not None:
            where["level__lte"] = self.level
        return where

    def acting(self) -> dict[str, Any]:
        """What may be acted on (when ``writable``), as lookups like :meth:`reading`."""
        where = self._area()
        if self.level is not None:
            where["level"] = self.level
        if self.officer is not None:
            where["officer"] = self.officer
        return where

    def q(self) -> Q:
        """The reading scope as a filter on :class:`Complaint` fields."""
        return Q(**self.reading())

    def complaints(self) -> QuerySet[Complaint]:
        """Every complaint in scope."""
        return Complaint.filter(self.q())

    def refusal(self, complaint: Complaint) -> str | None:
        """Why an action on ``complaint`` is not allowed, or None when it is."""
        if not self.writable:
            return "this role can read but not change"
        return _refusal(complaint, self.acting())

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scope:
        return cls(**data)


def _refusal(complaint: Complaint, lookups: dict[str, Any]) -> str | None:
    """The first of ``lookups`` that ``complaint`` fails, in words; None when it passes all."""
    for key, wanted in lookups.items():
        name, _, operator = key.partition("__")
        assert operator in ("", "lte"), key
        actual = getattr(complaint, name)
        if not (actual <= wanted if operator == "lte" else actual == wanted):
            return f"its {name} is {actual}, yours is {wanted}"
    return None


def level_number(config: Config, code: str | None) -> int:
    """The 1-based number of the level ``code``; 0 (matching nothing) when unknown."""
    codes = [lv.code for lv in config.levels]
    return codes.index(code) + 1 if code in codes else _NOTHING


def scope_of(staff: StaffMember, config: Config) -> Scope:
    """The scope of a staff member, from role, department, level, area and officer code."""
    role = StaffRole(staff.role)
    if role is StaffRole.STATE_ADMIN:
        return Scope()
    if role is StaffRole.STATE_REVIEWER:
        return Scope(writable=False)
    if role in (StaffRole.DISTRICT_ADMIN, StaffRole.AGENT):
        return Scope(district=staff.district)
    level = level_number(config, staff.level)
    area: dict[str, Any] = {}
    field = area_field(level)
    if field is not None and staff.area:
        area[field] = staff.area
    return Scope(department=staff.department, level=level, officer=staff.officer_code, **area)


def officer_scope(officer: Officer, config: Config) -> Scope:
    """The acting scope of a configured officer writing by SMS: complaints assigned to
    them at their level (the assignment already pins the department and area, which may
    be several)."""
    return Scope(
        department=None if officer.department == "all" else officer.department,
        level=level_number(config, officer.level),
        officer=officer.code,
    )

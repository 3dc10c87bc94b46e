"""What complaints a staff member may see and act on.

Every staff query goes through :meth:`Scope.complaints` (or :meth:`Scope.filter` for a
query built elsewhere): a complaint outside the scope is never read, counted or notified,
and a request naming one answers as if it did not exist.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from gateway.models import Complaint, StaffMember, StaffRole

__all__ = ["LEVEL_AREA_FIELD", "Scope", "scope_of"]

LEVEL_AREA_FIELD = {"block": "block", "tehsil": "tehsil", "district": "district"}
"""The complaint field an officer's area is matched against, by level code."""


@dataclass(frozen=True, kw_only=True)
class Scope:
    """Restrictions on complaints; ``None`` means no restriction on that field.

    ``writable`` is False for state reviewers, who read everything and change nothing.
    """

    department: str | None = None
    district: str | None = None
    tehsil: str | None = None
    block: str | None = None
    writable: bool = True

    @property
    def is_everything(self) -> bool:
        return (
            self.department is None
            and self.district is None
            and self.tehsil is None
            and (self.block is None)
        )

    def restrictions(self) -> dict[str, str]:
        """The :class:`Complaint` fields the scope fixes, and their values."""
        return {
            name: value
            for name, value in (
                ("department", self.department),
                ("district", self.district),
                ("tehsil", self.tehsil),
                ("block", self.block),
            )
            if value is not None
        }

    def q(self) -> Q:
        """The scope as a filter on :class:`Complaint` fields."""
        return Q(**self.restrictions())

    def complaints(self) -> QuerySet[Complaint]:
        """Every complaint in scope."""
        return Complaint.filter(self.q())

    def filter(self, query: QuerySet[Complaint]) -> QuerySet[Complaint]:
        """``query`` narrowed to the scope."""
        return query.filter(self.q())

    def contains(self, complaint: Complaint) -> bool:
        """Whether an already loaded complaint is in scope."""
        return all(
            value is None or getattr(complaint, name) == value
            for name, value in (
                ("department", self.department),
                ("district", self.district),
                ("tehsil", self.tehsil),
                ("block", self.block),
            )
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scope:
        return cls(**data)


def scope_of(staff: StaffMember) -> Scope:
    """The scope of a staff member, from role, department, level and area.

    An officer sees the complaints of their department (all departments when ``None``) in
    their area at their level: a block officer their block, a tehsil officer their tehsil, a
    district officer their district, a state-level officer the whole state.
    """
    role = StaffRole(staff.role)
    if role in (StaffRole.STATE_ADMIN,):
        return Scope()
    if role is StaffRole.STATE_REVIEWER:
        return Scope(writable=False)
    if role in (StaffRole.DISTRICT_ADMIN, StaffRole.AGENT):
        return Scope(district=staff.district)
    area_field = LEVEL_AREA_FIELD.get(staff.level or "")
    area: dict[str, Any] = {area_field: staff.area} if area_field and staff.area else {}
    return Scope(department=staff.department, **area)

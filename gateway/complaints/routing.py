"""Who has a complaint: the configured officer for its department, level and area.

A complaint's area at a level is one of its place fields, the kind of area the level is
divided into (:func:`gateway.config.area_field`: its block at the first level, its tehsil
at the second, its district at the third; a higher level covers every area). An officer
may take a complaint when they work at its level, for its department (or for all), in
its area (or in all). Registration, escalation, transfer and reassignment go by these
rules, and an officer's account reads and acts on the same area field
(:func:`gateway.complaints.scope.scope_of`).
"""

from __future__ import annotations

from gateway.config import AREA_FIELDS, Config, Officer, area_field
from gateway.storage.models import Complaint

__all__ = ["area_of", "district_level", "officer_for", "officer_refusal"]


def area_of(complaint: Complaint, level: int) -> str | None:
    """``complaint``'s area at level ``level`` (1-based); None for a level covering all."""
    field = area_field(level)
    return getattr(complaint, field) if field is not None else None


def district_level(config: Config) -> int:
    """The level whose areas are districts (the top level when there are fewer levels)."""
    return min(AREA_FIELDS.index("district") + 1, len(config.levels))


def officer_refusal(config: Config, officer: Officer, complaint: Complaint) -> str | None:
    """Why ``officer`` may not take ``complaint`` at its current level; None if they may."""
    level = config.levels[complaint.level - 1].code
    if officer.level != level:
        return f"{officer.code} works at the {officer.level} level, the complaint is at {level}"
    if officer.department not in (complaint.department, "all"):
        return f"{officer.code} is not an officer of {complaint.department}"
    area = area_of(complaint, complaint.level)
    if officer.areas != "all" and (area is None or area not in officer.areas):
        return f"{officer.code} does not cover {area}"
    return None


def officer_for(config: Config, complaint: Complaint) -> Officer | None:
    """The officer for ``complaint`` at its current level: of those who may take it, one of
    its own department before a desk for all departments, one of its area before one for
    all areas (the first configured of equals)."""
    if not 1 <= complaint.level <= len(config.levels):
        return None
    best: tuple[int, Officer] | None = None
    for o in config.officers:
        if officer_refusal(config, o, complaint) is not None:
            continue
        score = (2 if o.department == complaint.department else 0) + (1 if o.areas != "all" else 0)
        if best is None or score > best[0]:
            best = (score, o)
    return best[1] if best else None

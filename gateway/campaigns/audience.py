"""Audiences: a filter over complaints, or a CSV's numbers, always within the creator's scope."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.expressions import Q

from gateway.complaints.lifecycle import OPEN
from gateway.complaints.scope import AREA_NAMES, Scope, area_lookups
from gateway.config import Config
from gateway.storage.models import Campaign, CampaignContact, Citizen, Complaint
from gateway.storage.sql import param

__all__ = [
    "ComplaintFilter",
    "Person",
    "audience_batch",
    "campaign_scope",
    "scope_sql",
    "within",
]


@dataclass(frozen=True, kw_only=True)
class ComplaintFilter:
    """An audience as a filter over complaints; always narrowed to the creator's scope."""

    department: str | None = None
    district: str | None = None
    tehsil: str | None = None
    block: str | None = None
    statuses: tuple[str, ...] = ()
    open_only: bool = False
    """Only complaints not yet resolved or closed (:data:`~gateway.complaints.lifecycle.OPEN`)."""

    def q(self) -> Q:
        conditions = area_lookups(self)
        if self.statuses:
            conditions["status__in"] = list(self.statuses)
        q = Q(**conditions)
        if self.open_only:
            q &= Q(status__in=[s.value for s in OPEN])
        return q

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "statuses": list(self.statuses)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ComplaintFilter:
        return cls(
            department=data.get("department"),
            district=data.get("district"),
            tehsil=data.get("tehsil"),
            block=data.get("block"),
            statuses=tuple(data.get("statuses") or ()),
            open_only=bool(data.get("open_only")),
        )


def campaign_scope(scope: Scope, config: Config) -> Scope:
    """The reading part of ``scope`` with the areas above its block or tehsil filled in, so
    that a district administrator's scope contains the campaigns of the officers of their
    district (and a tehsil officer's those of the block officers of their tehsil)."""
    district, tehsil = scope.district, scope.tehsil
    for d in config.districts:
        for t in d.tehsils:
            if scope.block is not None and any(b.code == scope.block for b in t.blocks):
                district, tehsil = d.code, t.code
            elif scope.tehsil is not None and t.code == scope.tehsil:
                district = d.code
    return Scope(
        department=scope.department,
        district=district,
        tehsil=tehsil,
        block=scope.block,
        level=scope.level,
        writable=scope.writable,
    )


def within(inner: Scope, outer: Scope) -> bool:
    """Whether every complaint ``inner`` may read, ``outer`` may read too."""
    if outer.level is not None and (inner.level is None or inner.level > outer.level):
        return False
    return all(
        getattr(outer, name) is None or getattr(outer, name) == getattr(inner, name)
        for name in AREA_NAMES
    )


def scope_sql(conn: BaseDBAsyncClient, scope: Scope) -> tuple[str, list[Any]]:
    """``scope``'s reading lookups (:meth:`Scope.reading`) as conditions on complaints
    ``co`` (`` AND co.block = ?1 AND co.level <= ?2``), and their values."""
    where = ""
    values: list[Any] = []
    for lookup, value in scope.reading().items():
        name, _, op = lookup.partition("__")
        values.append(value)
        where += f" AND co.{name} {'<=' if op == 'lte' else '='} {param(conn, len(values))}"
    return where, values


@dataclass(frozen=True, slots=True)
class Person:
    """One of a campaign's audience, as the runner writes their message."""

    key: int
    """Where the audience's keyset cursor (``Campaign.cursor``) stands after them."""
    phone: str
    language: str
    opted_out: bool
    latin_only: bool = False
    """Their handset shows only Latin letters: they get the language's Latin alternative."""
    script: str | None = None
    """The script their handset was marked as drawing: the language in that script."""


async def audience_batch(
    campaign: Campaign, *, after: int, size: int, default_language: str
) -> list[Person]:
    """The next ``size`` people of the campaign's audience past the cursor ``after``; a
    citizen of several complaints comes once for each (the message's key keeps one)."""
    if "filter" in campaign.audience:
        scope = Scope.from_json(campaign.scope)
        f = ComplaintFilter.from_json(campaign.audience["filter"])
        rows = (
            await Complaint.filter(scope.q() & f.q(), id__gt=after)
            .order_by("id")
            .limit(size)
            .values(
                "id",
                "language",
                "citizen__phone",
                "citizen__language",
                "citizen__opted_out",
                "citizen__latin_only",
                "citizen__script",
            )
        )
        return [
            Person(
                int(r["id"]),
                str(r["citizen__phone"]),
                str(r["citizen__language"] or r["language"]),
                bool(r["citizen__opted_out"]),
                bool(r["citizen__latin_only"]),
                r["citizen__script"],
            )
            for r in rows
        ]
    # One statement, the citizens joined by number: tortoise's ``phone__in`` of a batch's
    # numbers cost more CPU to build than the database took to answer (py-spy).
    conn = get_connection("default")
    rows = await conn.execute_query_dict(
        "SELECT cc.id, cc.phone, ci.language, ci.opted_out, ci.latin_only, ci.script "
        f'FROM "{CampaignContact._meta.db_table}" cc '
        f'LEFT JOIN "{Citizen._meta.db_table}" ci ON ci.phone = cc.phone '
        f"WHERE cc.campaign_id = {param(conn, 1)} AND cc.id > {param(conn, 2)} "
        f"ORDER BY cc.id LIMIT {param(conn, 3)}",
        [campaign.id, after, size],
    )
    return [
        Person(
            int(r["id"]),
            str(r["phone"]),
            str(r["language"] or default_language),
            bool(r["opted_out"]),
            bool(r["latin_only"]),
            r["script"],
        )
        for r in rows
    ]

"""Bulk status notifications: one DLT template to many citizens, each in their language.

A campaign is previewed (audience size, languages, segments: the cost), created as a
draft, then started. Its recipients become :class:`OutboundMessage` rows carrying its ID,
written in batches by walking the audience with a keyset cursor (``Campaign.cursor``) and
de-duplicated by the idempotency key ``campaign:<id>:<phone>``: memory stays flat however
large the audience, and a worker killed mid-way resumes from the cursor.

Messages move forward only (queued -> sending -> sent -> delivered, or failed), exactly as
in :mod:`gateway.outbox`, so a recipient is sent to once. Sending (:class:`CampaignRunner`)
runs on its own arq queue, below acknowledgements and lifecycle messages, at a rate
counted in segments a second per provider, outside quiet hours, with one provider request
for every recipient of the same text.

This module knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import time as _time
import uuid
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiohttp
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.expressions import F, Q, Subquery
from tortoise.functions import Count, Min
from tortoise.transactions import in_transaction

from gateway.audit import audit
from gateway.config import Config
from gateway.models import (
    Campaign,
    CampaignContact,
    CampaignStatus,
    Citizen,
    Complaint,
    ComplaintStatus,
    MessageStatus,
    OutboundMessage,
    StaffMember,
)
from gateway.notices import ESSENTIAL
from gateway.outbox import (
    NEW_MESSAGE_COLUMNS,
    STALE_SENDING,
    SentRow,
    claim_messages,
    new_message_row,
    record_sent,
    sent_row,
)
from gateway.phone import InvalidPhoneNumber, mask_phone, normalize_phone
from gateway.providers.base import OutgoingSms, Provider, ProviderError, SendOutcome
from gateway.scope import Scope
from gateway.sql import insert_returning, insert_rows
from gateway.templates import DLT_VARIABLE_MAX, RenderedSms, TemplateBook, TemplateError
from gateway.worker import backoff

__all__ = [
    "OPEN_STATUSES",
    "CampaignError",
    "CampaignRunner",
    "Campaigns",
    "ComplaintFilter",
    "CsvReport",
    "Preview",
    "Progress",
    "RunScheduler",
    "campaign_scope",
    "csv_phone",
    "in_quiet_hours",
    "parse_numbers",
    "progress",
]

log = logging.getLogger(__name__)

DONE_CURSOR = "done"
OPEN_STATUSES = (
    ComplaintStatus.REGISTERED,
    ComplaintStatus.ASSIGNED,
    ComplaintStatus.IN_PROGRESS,
    ComplaintStatus.REOPENED,
    ComplaintStatus.TRANSFERRED,
)
_CLAIMABLE = (MessageStatus.QUEUED, MessageStatus.RETRYING)
_Pending = tuple[int, str, str, int]
"""A message to send: (id, recipient, text, segments)."""
_PENDING = (MessageStatus.QUEUED, MessageStatus.RETRYING, MessageStatus.SENDING)
CANCELLED_REASON = "campaign cancelled"
CSV_MAX_BAD_LINES_LISTED = 20


class CampaignError(Exception):
    """A campaign request that cannot be done as asked: names the field, or the conflict."""

    def __init__(self, message: str, *, field: str | None = None, conflict: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.conflict = conflict


@dataclass(frozen=True, kw_only=True)
class ComplaintFilter:
    """An audience as a filter over complaints; always narrowed to the creator's scope."""

    department: str | None = None
    district: str | None = None
    tehsil: str | None = None
    block: str | None = None
    statuses: tuple[str, ...] = ()
    open_only: bool = False
    """Only complaints not yet resolved or closed (:data:`OPEN_STATUSES`)."""

    def q(self) -> Q:
        conditions: dict[str, Any] = {
            name: value
            for name, value in (
                ("department", self.department),
                ("district", self.district),
                ("tehsil", self.tehsil),
                ("block", self.block),
            )
            if value is not None
        }
        if self.statuses:
            conditions["status__in"] = list(self.statuses)
        q = Q(**conditions)
        if self.open_only:
            q &= Q(status__in=[s.value for s in OPEN_STATUSES])
        return q

    def as_json(self) -> dict[str, Any]:
        return {
            "department": self.department,
            "district": self.district,
            "tehsil": self.tehsil,
            "block": self.block,
            "statuses": list(self.statuses),
            "open_only": self.open_only,
        }

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


@dataclass(frozen=True)
class Preview:
    """What a campaign would send: the cost the district pays, before it is paid."""

    recipients: int
    """Distinct phone numbers that will get the message."""
    skipped_opted_out: int
    languages: dict[str, int]
    """Recipients per language of the text they get."""
    segments: dict[str, int]
    """Segments of one message, per language."""
    total_segments: int
    essential: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "recipients": self.recipients,
            "skipped_opted_out": self.skipped_opted_out,
            "languages": self.languages,
            "segments_per_message": self.segments,
            "total_segments": self.total_segments,
            "essential": self.essential,
        }


@dataclass(frozen=True)
class CsvReport:
    """What an uploaded CSV of phone numbers gave."""

    lines: int
    numbers: int
    """Distinct valid numbers added."""
    duplicates: int
    bad_lines: int
    bad_line_numbers: list[int] = field(default_factory=list)
    """The first few bad lines' numbers (1-based), to find them in the file."""

    def as_json(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "numbers": self.numbers,
            "duplicates": self.duplicates,
            "bad_lines": self.bad_lines,
            "bad_line_numbers": self.bad_line_numbers,
        }


@dataclass(frozen=True)
class Progress:
    status: str
    expected: int
    """The audience size the preview counted (when the campaign was last previewed)."""
    recipients: int
    """Messages written so far (all of them once ``written`` is True)."""
    written: bool
    queued: int
    sent: int
    delivered: int
    failed: int
    cancelled: int
    skipped: int
    waiting_until: datetime | None = None
    """Sending, but held by quiet hours until then."""

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "expected": self.expected,
            "recipients": self.recipients,
            "all_written": self.written,
            "queued": self.queued,
            "sent": self.sent,
            "delivered": self.delivered,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "skipped": self.skipped,
            "waiting_until": self.waiting_until.isoformat() if self.waiting_until else None,
        }


BAD = "bad"
"""What :func:`csv_phone` answers for a line that is not a phone number."""


def csv_phone(raw: str, line_no: int) -> str | None:
    """The E.164 number in a CSV line's first column; None for a blank line or a header
    (a first line without digits), :data:`BAD` for anything else that is not a number."""
    cell = raw.strip().split(",")[0].strip().strip('"').strip()
    if not cell:
        return None
    try:
        return normalize_phone(cell)
    except InvalidPhoneNumber:
        if line_no == 1 and not any(ch.isdigit() for ch in cell):
            return None
        return BAD


def parse_numbers(text: str) -> tuple[list[str], CsvReport]:
    """The distinct numbers of a small CSV held in memory (a preview), and its report."""
    seen: dict[str, None] = {}
    valid = bad = 0
    bad_lines: list[int] = []
    lines = text.splitlines()
    for i, raw in enumerate(lines, start=1):
        phone = csv_phone(raw, i)
        if phone is None:
            continue
        if phone == BAD:
            bad += 1
            if len(bad_lines) < CSV_MAX_BAD_LINES_LISTED:
                bad_lines.append(i)
            continue
        valid += 1
        seen[phone] = None
    report = CsvReport(
        lines=len(lines),
        numbers=len(seen),
        duplicates=valid - len(seen),
        bad_lines=bad,
        bad_line_numbers=bad_lines,
    )
    return list(seen), report


class RunScheduler(Protocol):
    """Queues a campaign's sending job (on the bulk queue)."""

    async def schedule(self, campaign_id: int, *, at: datetime | None = None) -> None: ...


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


def _within(inner: Scope, outer: Scope) -> bool:
    """Whether every complaint ``inner`` may read, ``outer`` may read too."""
    if outer.level is not None and (inner.level is None or inner.level > outer.level):
        return False
    return all(
        getattr(outer, name) is None or getattr(outer, name) == getattr(inner, name)
        for name in ("department", "district", "tehsil", "block")
    )


def in_quiet_hours(config: Config, now: datetime) -> datetime | None:
    """When quiet hours hold at ``now``, the moment they end (aware); else None."""
    quiet = config.bulk.quiet_hours
    if quiet is None or quiet.start == quiet.end:
        return None
    tz = ZoneInfo(config.service.timezone)
    local = now.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        inside = quiet.start <= t < quiet.end
    else:
        inside = t >= quiet.start or t < quiet.end
    if not inside:
        return None
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(UTC)


class Campaigns:
    """Previewing, creating and steering campaigns (the staff side; no sending here)."""

    def __init__(
        self,
        *,
        config: Config,
        templates: TemplateBook,
        scheduler: RunScheduler,
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.templates = templates
        self.scheduler = scheduler
        self.clock = clock

    # ------------------------------------------------------------------ validation

    def is_essential(self, template: str) -> bool:
        """Essential messages go to opted-out citizens too: those the citizen asked for
        (:data:`gateway.notices.ESSENTIAL`) and DLT-transactional ones."""
        return template in ESSENTIAL or self.templates[template].category == "transactional"

    def render_all(self, template: str, variables: Mapping[str, str]) -> dict[str, RenderedSms]:
        """The message in every configured language; raises CampaignError naming the field."""
        try:
            tpl = self.templates[template]
        except TemplateError:
            raise CampaignError(f"no SMS template named {template!r}", field="template") from None
        if not tpl.bulk:
            # A lifecycle message (a ticket's acknowledgement, a resolution...) sent in bulk
            # would tell citizens untrue things about their complaints, opted out or not.
            raise CampaignError(
                f"{template!r} is not a bulk template (its file does not say 'bulk: true')",
                field="template",
            )
        for name in tpl.variables:
            value = variables.get(name)
            if value is None or not str(value).strip():
                raise CampaignError(f"{name} is missing", field=f"variables.{name}")
            if len(str(value)) > DLT_VARIABLE_MAX:
                raise CampaignError(
                    f"{name} is longer than {DLT_VARIABLE_MAX} characters (DLT's limit)",
                    field=f"variables.{name}",
                )
        extra = sorted(set(variables) - set(tpl.variables))
        if extra:
            raise CampaignError(
                f"the template has no variable {extra[0]!r}", field=f"variables.{extra[0]}"
            )
        fallback = self.config.service.default_language
        return {
            lang.code: tpl.render(lang.code, variables, fallback=fallback)
            for lang in self.config.languages
        }

    def check_filter(self, f: ComplaintFilter) -> None:
        """Raise CampaignError naming a code the configuration does not know."""
        if f.department is not None and self.config.department(f.department) is None:
            raise CampaignError("unknown department", field="audience.filter.department")
        if f.district is not None and self.config.district(f.district) is None:
            raise CampaignError("unknown district", field="audience.filter.district")
        tehsils = {t.code for d in self.config.districts for t in d.tehsils}
        if f.tehsil is not None and f.tehsil not in tehsils:
            raise CampaignError("unknown tehsil", field="audience.filter.tehsil")
        blocks = {b.code for d in self.config.districts for b in d.blocks}
        if f.block is not None and f.block not in blocks:
            raise CampaignError("unknown block", field="audience.filter.block")
        known = {s.value for s in ComplaintStatus}
        for s in f.statuses:
            if s not in known:
                raise CampaignError(f"unknown status {s!r}", field="audience.filter.statuses")

    # ------------------------------------------------------------------ preview

    async def preview_filter(
        self, scope: Scope, template: str, variables: Mapping[str, str], audience: ComplaintFilter
    ) -> Preview:
        """The preview of a filter audience, counted by the database (never loaded)."""
        rendered = self.render_all(template, variables)
        self.check_filter(audience)
        base = Complaint.filter(scope.q() & audience.q())
        # A citizen gets one message, in their language, else that of their first complaint
        # in the audience: the same rule the writing job follows.
        firsts = base.group_by("citizen_id").annotate(first=Min("id")).values("first")
        rows = (
            await Complaint.filter(id__in=Subquery(firsts))
            .annotate(n=Count("id"))
            .group_by("language", "citizen__language", "citizen__opted_out")
            .values("language", "citizen__language", "citizen__opted_out", "n")
        )
        return self._tally(
            template,
            rendered,
            (
                (
                    str(r["citizen__language"] or r["language"]),
                    bool(r["citizen__opted_out"]),
                    int(r["n"]),
                )
                for r in rows
            ),
        )

    async def preview_numbers(
        self, template: str, variables: Mapping[str, str], numbers: Sequence[str]
    ) -> Preview:
        """The preview of a list of (normalised, distinct) numbers."""
        rendered = self.render_all(template, variables)
        known: dict[str, tuple[str | None, bool]] = {}
        for i in range(0, len(numbers), 500):
            chunk = list(numbers[i : i + 500])
            for phone, lang, opted in await Citizen.filter(phone__in=chunk).values_list(
                "phone", "language", "opted_out"
            ):
                known[str(phone)] = (lang, bool(opted))
        default = self.config.service.default_language
        groups: dict[tuple[str, bool], int] = {}
        for n in numbers:
            lang, opted = known.get(n, (None, False))
            key = (lang or default, opted)
            groups[key] = groups.get(key, 0) + 1
        return self._tally(template, rendered, ((k[0], k[1], v) for k, v in groups.items()))

    async def preview_campaign(self, campaign: Campaign) -> Preview:
        """The preview of a campaign's stored audience."""
        if "filter" in campaign.audience:
            return await self.preview_filter(
                Scope.from_json(campaign.scope),
                campaign.template,
                campaign.variables,
                ComplaintFilter.from_json(campaign.audience["filter"]),
            )
        rendered = self.render_all(campaign.template, campaign.variables)
        default = self.config.service.default_language
        if default not in {lang.code for lang in self.config.languages}:  # pragma: no cover
            raise CampaignError("bad default language")
        conn = get_connection("default")
        # Numbers are joined to citizens by phone (no foreign key): raw SQL, ints only.
        sql = (
            "SELECT ci.language, ci.opted_out, COUNT(*) FROM campaign_contact cc "
            "LEFT JOIN citizen ci ON ci.phone = cc.phone "
            f"WHERE cc.campaign_id = {int(campaign.id)} GROUP BY ci.language, ci.opted_out"
        )
        _, rows = await conn.execute_query(sql)
        triples = []
        for row in rows:
            values = list(dict(row).values()) if not isinstance(row, tuple) else list(row)
            triples.append((str(values[0] or default), bool(values[1]), int(values[2])))
        return self._tally(campaign.template, rendered, triples)

    def _tally(
        self,
        template: str,
        rendered: Mapping[str, RenderedSms],
        groups: Any,
    ) -> Preview:
        essential = self.is_essential(template)
        fallback = self.config.service.default_language
        languages: dict[str, int] = {}
        skipped = 0
        for lang, opted_out, n in groups:
            if opted_out and not essential:
                skipped += n
                continue
            text_lang = rendered[lang].language if lang in rendered else rendered[fallback].language
            languages[text_lang] = languages.get(text_lang, 0) + n
        segments = {lang: rendered[lang].segments for lang in languages}
        return Preview(
            recipients=sum(languages.values()),
            skipped_opted_out=skipped,
            languages=dict(sorted(languages.items())),
            segments=dict(sorted(segments.items())),
            total_segments=sum(n * segments[lang] for lang, n in languages.items()),
            essential=essential,
        )

    # ------------------------------------------------------------------ creating

    async def create(
        self,
        staff: StaffMember,
        scope: Scope,
        *,
        template: str,
        variables: Mapping[str, str],
        audience: ComplaintFilter | None,
        actor: str,
    ) -> Campaign:
        """A draft campaign: ``audience`` a filter, or None for a CSV audience (numbers
        added with :meth:`add_numbers` before it starts)."""
        self.render_all(template, variables)
        stored_scope = campaign_scope(scope, self.config)
        if audience is not None:
            self.check_filter(audience)
            aud: dict[str, Any] = {"filter": audience.as_json()}
        else:
            aud = {"csv": {"lines": 0, "numbers": 0, "bad_lines": 0}}
        async with in_transaction() as conn:
            campaign = await Campaign.create(
                created_by=staff,
                template=template,
                variables=dict(variables),
                audience=aud,
                scope=stored_scope.as_json(),
                essential=self.is_essential(template),
                using_db=conn,
            )
            await audit(
                actor,
                "campaign.create",
                target=f"campaign:{campaign.id}",
                detail={"template": template, "audience": aud},
                conn=conn,
            )
        await self.refresh_totals(campaign)
        return campaign

    async def add_numbers(
        self, campaign: Campaign, lines: AsyncIterable[str], *, actor: str
    ) -> CsvReport:
        """Add a CSV's phone numbers (first column; a header line is allowed) to a draft
        campaign with a CSV audience, in batches: the file is never held whole."""
        if "csv" not in campaign.audience:
            raise CampaignError(
                "this campaign's audience is a filter", field="audience", conflict=True
            )
        if campaign.status is not CampaignStatus.DRAFT:
            raise CampaignError(f"the campaign is {campaign.status.value}", conflict=True)
        before = await CampaignContact.filter(campaign_id=campaign.id).count()
        line_no = valid = bad = 0
        bad_numbers: list[int] = []
        batch: list[str] = []

        async def flush() -> None:
            if batch:
                await insert_rows(
                    get_connection("default"),
                    CampaignContact._meta.db_table,
                    ("campaign_id", "phone"),
                    [(campaign.id, p) for p in batch],
                    skip_conflicts_on=("campaign_id", "phone"),
                )
                batch.clear()

        async for raw in lines:
            line_no += 1
            phone = csv_phone(raw, line_no)
            if phone is None:
                continue
            if phone == BAD:
                bad += 1
                if len(bad_numbers) < CSV_MAX_BAD_LINES_LISTED:
                    bad_numbers.append(line_no)
                continue
            valid += 1
            batch.append(phone)
            if len(batch) >= 1000:
                await flush()
        await flush()
        added = await CampaignContact.filter(campaign_id=campaign.id).count() - before
        report = CsvReport(
            lines=line_no,
            numbers=added,
            duplicates=valid - added,
            bad_lines=bad,
            bad_line_numbers=bad_numbers,
        )
        csv_info = dict(campaign.audience["csv"])
        csv_info["lines"] = int(csv_info.get("lines", 0)) + line_no
        csv_info["numbers"] = int(csv_info.get("numbers", 0)) + added
        csv_info["bad_lines"] = int(csv_info.get("bad_lines", 0)) + bad
        campaign.audience = {"csv": csv_info}
        await Campaign.filter(id=campaign.id).update(audience=campaign.audience)
        await audit(
            actor, "campaign.upload", target=f"campaign:{campaign.id}", detail=report.as_json()
        )
        await self.refresh_totals(campaign)
        return report

    async def refresh_totals(self, campaign: Campaign) -> Preview:
        """Store the preview's recipients and segments on a draft campaign."""
        preview = await self.preview_campaign(campaign)
        campaign.recipients_total = preview.recipients
        campaign.segments_total = preview.total_segments
        await Campaign.filter(id=campaign.id).update(
            recipients_total=preview.recipients, segments_total=preview.total_segments
        )
        return preview

    # ------------------------------------------------------------------ finding

    async def get(self, scope: Scope, campaign_id: int) -> Campaign | None:
        """The campaign, when it lies within ``scope`` (else None, as if it did not exist)."""
        campaign = await Campaign.get_or_none(id=campaign_id)
        if campaign is None:
            return None
        if not _within(Scope.from_json(campaign.scope), campaign_scope(scope, self.config)):
            return None
        return campaign

    # ------------------------------------------------------------------ steering

    async def _move(
        self,
        campaign: Campaign,
        *,
        from_: Sequence[CampaignStatus],
        to: CampaignStatus,
        actor: str,
        action: str,
        **extra: Any,
    ) -> Campaign:
        async with in_transaction() as conn:
            moved = (
                await Campaign.filter(id=campaign.id, status__in=list(from_))
                .using_db(conn)
                .update(status=to, **extra)
            )
            if not moved:
                current = await Campaign.get(id=campaign.id, using_db=conn)
                raise CampaignError(
                    f"the campaign is {current.status.value}; cannot {action.split('.')[-1]} it",
                    conflict=True,
                )
            await audit(actor, action, target=f"campaign:{campaign.id}", conn=conn)
        await campaign.refresh_from_db()
        return campaign

    async def start(self, campaign: Campaign, *, actor: str) -> Campaign:
        """Start sending a draft campaign."""
        if campaign.status is CampaignStatus.DRAFT:
            preview = await self.refresh_totals(campaign)
            if preview.recipients == 0:
                raise CampaignError("the campaign has no recipients", field="audience")
        campaign = await self._move(
            campaign,
            from_=[CampaignStatus.DRAFT],
            to=CampaignStatus.SENDING,
            actor=actor,
            action="campaign.start",
            started_at=datetime.now(UTC),
        )
        await self.scheduler.schedule(campaign.id)
        return campaign

    async def pause(self, campaign: Campaign, *, actor: str) -> Campaign:
        """Stop sending after the request under way; nothing is lost."""
        return await self._move(
            campaign,
            from_=[CampaignStatus.SENDING],
            to=CampaignStatus.PAUSED,
            actor=actor,
            action="campaign.pause",
        )

    async def resume(self, campaign: Campaign, *, actor: str) -> Campaign:
        campaign = await self._move(
            campaign,
            from_=[CampaignStatus.PAUSED],
            to=CampaignStatus.SENDING,
            actor=actor,
            action="campaign.resume",
        )
        await self.scheduler.schedule(campaign.id)
        return campaign

    async def cancel(self, campaign: Campaign, *, actor: str) -> Campaign:
        """Stop for good: messages not yet handed to the provider are marked failed
        (``campaign cancelled``); those already sent stay sent."""
        campaign = await self._move(
            campaign,
            from_=[CampaignStatus.DRAFT, CampaignStatus.SENDING, CampaignStatus.PAUSED],
            to=CampaignStatus.CANCELLED,
            actor=actor,
            action="campaign.cancel",
            finished_at=datetime.now(UTC),
        )
        await OutboundMessage.filter(campaign_id=campaign.id, status__in=list(_CLAIMABLE)).update(
            status=MessageStatus.FAILED, last_error=CANCELLED_REASON
        )
        return campaign


async def progress(
    campaign: Campaign, *, config: Config | None = None, now: datetime | None = None
) -> Progress:
    """Counts by message status (from the outbox rows, by the index on campaign, status).

    With ``config`` and ``now``, a sending campaign held by quiet hours says until when.
    """
    await campaign.refresh_from_db()
    rows = (
        await OutboundMessage.filter(campaign_id=campaign.id)
        .annotate(n=Count("id"))
        .group_by("status")
        .values("status", "n")
    )
    counts = {str(r["status"]): int(r["n"]) for r in rows}
    cancelled = await OutboundMessage.filter(
        campaign_id=campaign.id, status=MessageStatus.FAILED, last_error=CANCELLED_REASON
    ).count()
    return Progress(
        status=campaign.status.value,
        expected=campaign.recipients_total,
        recipients=sum(counts.values()),
        written=campaign.cursor == DONE_CURSOR,
        queued=sum(counts.get(s.value, 0) for s in _PENDING),
        sent=counts.get(MessageStatus.SENT.value, 0),
        delivered=counts.get(MessageStatus.DELIVERED.value, 0),
        failed=counts.get(MessageStatus.FAILED.value, 0) - cancelled,
        cancelled=cancelled,
        skipped=campaign.skipped,
        waiting_until=_held_until(campaign, config, now),
    )


def _held_until(campaign: Campaign, config: Config | None, now: datetime | None) -> datetime | None:
    """When quiet hours hold a sending campaign: their end, in the service's time zone."""
    if config is None or now is None or campaign.status is not CampaignStatus.SENDING:
        return None
    end = in_quiet_hours(config, now)
    return end.astimezone(ZoneInfo(config.service.timezone)) if end is not None else None


class RateLimiter:
    """Segments a second per provider, shared through Redis by every campaign and worker."""

    def __init__(self, redis: Any, *, provider: str, per_second: float) -> None:
        self.redis = redis
        self.provider = provider
        self.per_second = per_second

    @property
    def budget(self) -> int:
        return max(1, int(self.per_second))

    async def acquire(self, segments: int) -> None:
        """Wait until ``segments`` fit in the current one-second window."""
        while True:
            now = _time.time()
            window = int(now)
            key = f"sampark:bulk-rate:{self.provider}:{window}"
            used = int(await self.redis.incrby(key, segments))
            await self.redis.expire(key, 5)
            if used <= self.budget or used == segments:
                return
            await self.redis.decrby(key, segments)
            await asyncio.sleep(max(0.01, window + 1 - now))


class CampaignRunner:
    """The worker side: writes a campaign's recipients and sends them, resumably."""

    LOCK_TTL = 60
    JOB_BUDGET = 45.0
    """Seconds one job works before handing over to the next (arq jobs time out)."""

    def __init__(
        self,
        *,
        config: Config,
        templates: TemplateBook,
        provider: Provider,
        session: aiohttp.ClientSession,
        sender_id: str | None,
        redis: Any,
        scheduler: RunScheduler,
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.templates = templates
        self.provider = provider
        self.session = session
        self.sender_id = sender_id
        self.redis = redis
        self.scheduler = scheduler
        self.clock = clock
        self.limiter = RateLimiter(
            redis, provider=provider.name, per_second=config.bulk.segments_per_second
        )

    def _lock_key(self, campaign_id: int) -> str:
        return f"sampark:campaign-lock:{campaign_id}"

    async def run(self, campaign_id: int) -> str:
        """Work on the campaign for a while; queues its own continuation. One runner per
        campaign at a time (a Redis lock); a second job for it returns ``busy``."""
        token = uuid.uuid4().hex
        key = self._lock_key(campaign_id)
        if not await self.redis.set(key, token, nx=True, ex=self.LOCK_TTL):
            return "busy"
        then: tuple[bool, datetime | None] | None = None
        try:
            outcome, then = await self._run_locked(campaign_id)
            return outcome
        finally:
            if await self.redis.get(key) in (token, token.encode()):
                await self.redis.delete(key)
            if then is not None:
                await self.scheduler.schedule(campaign_id, at=then[1])

    async def _run_locked(
        self, campaign_id: int
    ) -> tuple[str, tuple[bool, datetime | None] | None]:
        fresh: list[_Pending] = []
        try:
            return await self._work(campaign_id, fresh)
        finally:
            # Written and held for sending, but the runner stops first (paused, cancelled,
            # quiet hours, its time is up): back to the queue, as if never claimed.
            if fresh:
                await OutboundMessage.filter(
                    id__in=[p[0] for p in fresh], status=MessageStatus.SENDING
                ).update(status=MessageStatus.QUEUED, attempts=F("attempts") - 1)

    async def _work(
        self, campaign_id: int, fresh: list[_Pending]
    ) -> tuple[str, tuple[bool, datetime | None] | None]:
        """The runner's loop; ``fresh`` holds the messages written but not yet sent."""
        deadline = _time.monotonic() + self.JOB_BUDGET
        failures = 0
        while True:
            await self.redis.expire(self._lock_key(campaign_id), self.LOCK_TTL)
            campaign = await Campaign.get_or_none(id=campaign_id)
            if campaign is None or campaign.status is not CampaignStatus.SENDING:
                if campaign is not None and campaign.status is CampaignStatus.CANCELLED:
                    # A batch written while the cancel was being recorded, and this
                    # runner's own written but unsent one.
                    await OutboundMessage.filter(
                        Q(status__in=list(_CLAIMABLE))
                        | Q(id__in=[p[0] for p in fresh], status=MessageStatus.SENDING),
                        campaign_id=campaign_id,
                    ).update(status=MessageStatus.FAILED, last_error=CANCELLED_REASON)
                    fresh.clear()
                return (campaign.status.value if campaign else "missing"), None
            quiet_end = in_quiet_hours(self.config, self.clock())
            if quiet_end is not None:
                log.info("campaign %s: quiet hours, resuming at %s", campaign_id, quiet_end)
                return "quiet", (True, quiet_end)
            # The next batch is written while the provider takes the last one.
            writing = (
                asyncio.ensure_future(self._write_batch(campaign))
                if campaign.cursor != DONE_CURSOR
                else None
            )
            try:
                sent, transient = await self._send_batch(campaign, fresh)
            finally:
                if writing is not None:
                    fresh += await writing
            failures = failures + 1 if transient else 0
            if failures:
                delay = backoff(
                    failures,
                    base=self.config.worker.retry_base_seconds,
                    maximum=self.config.worker.retry_max_seconds,
                )
                if delay > 10:
                    return "retrying", (True, datetime.now(UTC) + timedelta(seconds=delay))
                await asyncio.sleep(delay)
            elif not sent and campaign.cursor == DONE_CURSOR:
                pending = await OutboundMessage.filter(
                    campaign_id=campaign_id, status__in=list(_PENDING)
                ).count()
                if pending == 0:
                    await Campaign.filter(id=campaign_id, status=CampaignStatus.SENDING).update(
                        status=CampaignStatus.DONE, finished_at=datetime.now(UTC)
                    )
                    log.info("campaign %s: every recipient handed to the provider", campaign_id)
                    return "done", None
                # Only messages another (dead) worker left "sending": take them when stale.
                return "waiting", (True, datetime.now(UTC) + timedelta(seconds=15))
            if _time.monotonic() > deadline:
                return "continues", (True, None)

    async def _write_batch(self, campaign: Campaign) -> list[_Pending]:
        """Write the next batch of recipients and move the cursor, in one transaction.

        The messages are written already held by this runner ("sending", first attempt):
        it sends them next, with no claim of their own. Returns them."""
        size = self.config.bulk.batch_size
        after = int(campaign.cursor) if campaign.cursor else 0
        rendered = Campaigns(
            config=self.config, templates=self.templates, scheduler=self.scheduler, clock=self.clock
        ).render_all(campaign.template, campaign.variables)
        default = self.config.service.default_language
        people: list[tuple[int, str, str, bool]] = []  # (cursor key, phone, language, opted out)
        if "filter" in campaign.audience:
            scope = Scope.from_json(campaign.scope)
            f = ComplaintFilter.from_json(campaign.audience["filter"])
            rows = (
                await Complaint.filter(scope.q() & f.q(), id__gt=after)
                .order_by("id")
                .limit(size)
                .values(
                    "id", "language", "citizen__phone", "citizen__language", "citizen__opted_out"
                )
            )
            for r in rows:
                people.append(
                    (
                        int(r["id"]),
                        str(r["citizen__phone"]),
                        str(r["citizen__language"] or r["language"]),
                        bool(r["citizen__opted_out"]),
                    )
                )
        else:
            contacts = (
                await CampaignContact.filter(campaign_id=campaign.id, id__gt=after)
                .order_by("id")
                .limit(size)
                .values_list("id", "phone")
            )
            phones = [str(p) for _, p in contacts]
            known = {
                str(p): (lang, bool(o))
                for p, lang, o in await Citizen.filter(phone__in=phones).values_list(
                    "phone", "language", "opted_out"
                )
            }
            for cid, phone in contacts:
                lang, opted = known.get(str(phone), (None, False))
                people.append((int(cid), str(phone), str(lang or default), opted))
        if not people:
            await Campaign.filter(id=campaign.id).update(cursor=DONE_CURSOR)
            campaign.cursor = DONE_CURSOR
            return []
        messages: list[tuple[Any, ...]] = []
        skipped = 0
        now = datetime.now(UTC)
        for _, phone, lang, opted in people:
            if opted and not campaign.essential:
                skipped += 1
                continue
            messages.append(
                new_message_row(
                    rendered.get(lang) or rendered[default],
                    recipient=phone,
                    provider=self.provider.name,
                    idempotency_key=f"campaign:{campaign.id}:{phone}",
                    at=now,
                    campaign_id=campaign.id,
                    held=True,
                )
            )
        cursor = str(people[-1][0])
        async with in_transaction() as conn:
            # A citizen seen before (another complaint, or a batch redone) is skipped by
            # the unique key: one message per number.
            written = await insert_returning(
                conn,
                OutboundMessage._meta.db_table,
                NEW_MESSAGE_COLUMNS,
                messages,
                returning=("id", "recipient", "text", "segments"),
                skip_conflicts_on="idempotency_key",
            )
            await (
                Campaign.filter(id=campaign.id)
                .using_db(conn)
                .update(cursor=cursor, skipped=F("skipped") + skipped)
            )
        campaign.cursor = cursor
        return [
            (int(r["id"]), str(r["recipient"]), str(r["text"]), int(r["segments"])) for r in written
        ]

    async def _send_batch(self, campaign: Campaign, fresh: list[_Pending]) -> tuple[int, bool]:
        """Send ``fresh`` (taken from the list as they go to the provider), then the next of
        the messages waiting; (messages accepted, any transient failure)."""
        now = datetime.now(UTC)
        size = self.config.bulk.batch_size
        held = {p[0] for p in fresh}
        rows: list[_Pending] = list(fresh)
        mine = OutboundMessage.filter(campaign_id=campaign.id)
        columns = ("id", "recipient", "text", "segments")
        if len(rows) < size:
            # Retried and stale ones, then queued ones: each query a range of the
            # (campaign_id, status) index (one OR over all the statuses walked every
            # message already sent, batch after batch).
            rows += (
                await mine.filter(status__in=[MessageStatus.RETRYING, MessageStatus.SENDING])
                .filter(Q(status=MessageStatus.RETRYING) | Q(updated_at__lt=now - STALE_SENDING))
                .exclude(id__in=list(held))
                .order_by("id")
                .limit(size - len(rows))
                .values_list(*columns)
            )
        if len(rows) < size:
            rows += (
                await mine.filter(status=MessageStatus.QUEUED)
                .order_by("id")
                .limit(size - len(rows))
                .values_list(*columns)
            )
        by_text: dict[str, list[tuple[int, str, int]]] = {}
        for mid, recipient, text, segments in rows:
            by_text.setdefault(str(text), []).append((int(mid), str(recipient), int(segments)))
        accepted = 0
        transient = False
        for text, group in by_text.items():
            segments = group[0][2]
            per_request = max(1, self.limiter.budget // max(1, segments))
            for i in range(0, len(group), per_request):
                status = await Campaign.filter(id=campaign.id).values_list("status", flat=True)
                if status and str(status[0]) != CampaignStatus.SENDING.value:
                    return accepted, False
                chunk = group[i : i + per_request]
                await self.limiter.acquire(segments * len(chunk))
                ids = {mid for mid, _, _ in chunk}
                fresh[:] = [p for p in fresh if p[0] not in ids]
                # Shielded: a worker stopped mid-request still records what the provider took.
                a, t = await asyncio.shield(self._send_one_request(text, chunk, held))
                accepted += a
                transient = transient or t
        return accepted, transient

    async def _send_one_request(
        self, text: str, chunk: list[tuple[int, str, int]], held: set[int]
    ) -> tuple[int, bool]:
        # Messages this runner wrote are held already (first attempt); the others are
        # claimed in one statement: a row another worker holds (sending, not stale), or one
        # already sent, is left alone.
        claimed = {phone: mid for mid, phone, _ in chunk if mid in held}
        attempts = {mid: 1 for mid in claimed.values()}
        others = [mid for mid, _, _ in chunk if mid not in held]
        for m in await claim_messages(others) if others else []:
            if m is not None:
                claimed[m.recipient] = m.id
                attempts[m.id] = m.attempts
        if not claimed:
            return 0, False
        sms = OutgoingSms(
            text=text, recipients=tuple(claimed), sender_id=self.sender_id, bulk=len(claimed) > 1
        )
        try:
            results = await self.provider.send(sms, session=self.session)
        except ProviderError as e:
            async with in_transaction() as conn:
                for phone, mid in claimed.items():
                    await self._failed(
                        mid, phone, attempts[mid], str(e), transient=e.transient, conn=conn
                    )
            return 0, e.transient
        transient = False
        answered = {r.phone: r for r in results}
        done = datetime.now(UTC)
        sent: list[SentRow] = []
        async with in_transaction() as conn:
            for phone, mid in claimed.items():
                result = answered.get(phone)
                if result is None:
                    await self._failed(
                        mid,
                        phone,
                        attempts[mid],
                        "no answer for recipient",
                        transient=True,
                        conn=conn,
                    )
                    transient = True
                    continue
                if result.outcome in (SendOutcome.ACCEPTED, SendOutcome.DELIVERED):
                    sent.append(sent_row(mid, result, at=done))
                    continue
                is_transient = result.outcome is SendOutcome.TRANSIENT_FAILURE
                transient = transient or is_transient
                await (
                    OutboundMessage.filter(id=mid)
                    .using_db(conn)
                    .update(provider_status=result.provider_status)
                )
                await self._failed(
                    mid,
                    phone,
                    attempts[mid],
                    f"{result.provider_status} ({result.status_code})",
                    transient=is_transient,
                    conn=conn,
                )
                if result.status_code == 406:
                    await Citizen.filter(phone=phone).using_db(conn).update(opted_out=True)
            await record_sent(conn, sent)
        accepted = len(sent)
        log.info("campaign request: %d of %d accepted", accepted, len(claimed))
        return accepted, transient

    async def _failed(
        self,
        message_id: int,
        phone: str,
        attempts: int,
        reason: str,
        *,
        transient: bool,
        conn: BaseDBAsyncClient,
    ) -> None:
        if transient and attempts < self.config.bulk.max_tries:
            await (
                OutboundMessage.filter(id=message_id)
                .using_db(conn)
                .update(status=MessageStatus.RETRYING, last_error=reason)
            )
            return
        await (
            OutboundMessage.filter(id=message_id)
            .using_db(conn)
            .update(status=MessageStatus.FAILED, last_error=reason)
        )
        log.warning("campaign message %s to %s failed: %s", message_id, mask_phone(phone), reason)

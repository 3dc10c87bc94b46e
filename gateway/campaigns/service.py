"""Bulk status notifications: one DLT template to many citizens, each in their language.

A campaign is previewed (audience size, languages, segments: the cost), created as a
draft, then started. Its recipients become :class:`OutboundMessage` rows carrying its ID,
written in batches by walking the audience with a keyset cursor (``Campaign.cursor``) and
de-duplicated by the idempotency key ``campaign:<id>:<phone>``: memory stays flat however
large the audience, and a worker killed mid-way resumes from the cursor.

Messages move forward only (queued -> sending -> sent -> delivered, or failed), exactly as
in :mod:`gateway.sms.outbox`, so a recipient is sent to once; a request whose answer was lost
leaves its recipients "unknown", settled by their delivery reports or sent once more after
the outbox's wait, never re-sent with the next request. Sending (:class:`CampaignRunner`)
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiohttp
from redis.asyncio import Redis
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.expressions import F, Q, Subquery
from tortoise.functions import Count, Min
from tortoise.transactions import in_transaction

from gateway.channels.base import OutgoingSms, Provider
from gateway.complaints.lifecycle import OPEN
from gateway.complaints.scope import Scope
from gateway.config import Config
from gateway.errors import FieldError
from gateway.sms.delivery import ClaimedMessage, claim_messages, send_request
from gateway.sms.outbox import NEW_MESSAGE_COLUMNS, new_message_row
from gateway.sms.retry import backoff
from gateway.sms.templates import DLT_VARIABLE_MAX, RenderedSms, TemplateBook, TemplateError
from gateway.sms.unanswered import next_unanswered_retry, retry_unanswered
from gateway.staff.audit import audit
from gateway.storage.models import (
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
from gateway.storage.sql import insert_returning, insert_rows, param
from gateway.text.csv_numbers import CsvReport, NumberReader

__all__ = [
    "CampaignConflict",
    "CampaignRunner",
    "Campaigns",
    "ComplaintFilter",
    "InvalidCampaign",
    "Preview",
    "Progress",
    "RunScheduler",
    "campaign_scope",
    "in_quiet_hours",
    "progress",
    "resume_sending",
]

log = logging.getLogger(__name__)

DONE_CURSOR = "done"
_CLAIMABLE = (MessageStatus.QUEUED, MessageStatus.RETRYING)
_Pending = tuple[int, str, str, int, str | None]
"""A message to send: (id, recipient, text, segments, DLT template ID)."""
_PENDING_COLUMNS = ("id", "recipient", "text", "segments", "dlt_template_id")
"""A :data:`_Pending`'s columns of the message's row."""


def _pending(
    message_id: object, recipient: object, text: object, segments: object, dlt: object
) -> _Pending:
    """A :data:`_Pending` from the row's values (as the database driver gives them)."""
    return (
        int(str(message_id)),
        str(recipient),
        str(text),
        int(str(segments)),
        None if dlt is None else str(dlt),
    )


_PENDING = (MessageStatus.QUEUED, MessageStatus.RETRYING, MessageStatus.SENDING)
_TAKEN = (MessageStatus.SENT, MessageStatus.DELIVERED)
CANCELLED_REASON = "campaign cancelled"


class InvalidCampaign(FieldError):
    """A campaign asked for with a value that cannot be taken (names the field)."""


class CampaignConflict(Exception):
    """The campaign as it is now does not allow the request (its status, or its kind of
    audience): nothing was done."""


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
            q &= Q(status__in=[s.value for s in OPEN])
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
    """Distinct phone numbers that will get the message (at most, with numbers outside
    the sender's scope: those of them who opted out are left out when it is sent)."""
    skipped_opted_out: int
    """In the sender's scope."""
    languages: dict[str, int]
    """Recipients in the sender's scope per language of the text they get."""
    segments: dict[str, int]
    """Segments of one message, per language."""
    total_segments: int
    """The cost; numbers outside the scope counted at the longest text's segments."""
    essential: bool
    outside_scope: int = 0
    """A CSV audience's numbers with no complaint in the sender's scope (citizens of
    other areas, or numbers the gateway does not know): their language and opt-out are
    not the sender's to see, so only their count is shown."""

    def as_json(self) -> dict[str, Any]:
        return {
            "recipients": self.recipients,
            "skipped_opted_out": self.skipped_opted_out,
            "languages": self.languages,
            "segments_per_message": self.segments,
            "total_segments": self.total_segments,
            "essential": self.essential,
            "outside_scope": self.outside_scope,
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
    unknown: int = 0
    """Handed to the provider, its answer lost: a delivery report or one more try settles it."""
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
            "unknown": self.unknown,
            "waiting_until": self.waiting_until.isoformat() if self.waiting_until else None,
        }


class RunScheduler(Protocol):
    """Queues a campaign's sending job (on the bulk queue)."""

    async def schedule(self, campaign_id: int, *, at: datetime | None = None) -> None: ...


async def resume_sending(scheduler: RunScheduler) -> int:
    """Queue every campaign marked sending (after a restart, or a job lost with a worker);
    how many."""
    ids = await Campaign.filter(status=CampaignStatus.SENDING).values_list("id", flat=True)
    for campaign_id in ids:
        await scheduler.schedule(int(str(campaign_id)))
    return len(ids)


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


def _scope_sql(conn: BaseDBAsyncClient, scope: Scope) -> tuple[str, list[Any]]:
    """``scope``'s reading lookups (:meth:`Scope.reading`) as conditions on complaints
    ``co`` (`` AND co.block = ?1 AND co.level <= ?2``), and their values."""
    where = ""
    values: list[Any] = []
    for lookup, value in scope.reading().items():
        name, _, op = lookup.partition("__")
        values.append(value)
        where += f" AND co.{name} {'<=' if op == 'lte' else '='} {param(conn, len(values))}"
    return where, values


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

    def render_all(self, template: str, variables: Mapping[str, str]) -> dict[str, RenderedSms]:
        """The message in every configured language; raises :class:`InvalidCampaign`."""
        try:
            tpl = self.templates[template]
        except TemplateError:
            raise InvalidCampaign("template", f"no SMS template named {template!r}") from None
        if not tpl.bulk:
            # A lifecycle message (a ticket's acknowledgement, a resolution...) sent in bulk
            # would tell citizens untrue things about their complaints, opted out or not.
            raise InvalidCampaign(
                "template",
                f"{template!r} is not a bulk template (its file does not say 'bulk: true')",
            )
        for name in tpl.variables:
            value = variables.get(name)
            if value is None or not str(value).strip():
                raise InvalidCampaign(f"variables.{name}", f"{name} is missing")
            if len(str(value)) > DLT_VARIABLE_MAX:
                raise InvalidCampaign(
                    f"variables.{name}",
                    f"{name} is longer than {DLT_VARIABLE_MAX} characters (DLT's limit)",
                )
        extra = sorted(set(variables) - set(tpl.variables))
        if extra:
            raise InvalidCampaign(
                f"variables.{extra[0]}", f"the template has no variable {extra[0]!r}"
            )
        fallback = self.config.service.default_language
        return {
            lang.code: tpl.render(lang.code, variables, fallback=fallback)
            for lang in self.config.languages
        }

    def check_filter(self, f: ComplaintFilter) -> None:
        """:class:`InvalidCampaign` for a code the configuration does not know."""
        if f.department is not None and self.config.department(f.department) is None:
            raise InvalidCampaign("audience.filter.department", "unknown department")
        if f.district is not None and self.config.district(f.district) is None:
            raise InvalidCampaign("audience.filter.district", "unknown district")
        tehsils = {t.code for d in self.config.districts for t in d.tehsils}
        if f.tehsil is not None and f.tehsil not in tehsils:
            raise InvalidCampaign("audience.filter.tehsil", "unknown tehsil")
        blocks = {b.code for d in self.config.districts for b in d.blocks}
        if f.block is not None and f.block not in blocks:
            raise InvalidCampaign("audience.filter.block", "unknown block")
        known = {s.value for s in ComplaintStatus}
        for s in f.statuses:
            if s not in known:
                raise InvalidCampaign("audience.filter.statuses", f"unknown status {s!r}")

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
        self, scope: Scope, template: str, variables: Mapping[str, str], numbers: Sequence[str]
    ) -> Preview:
        """The preview of a list of (normalised, distinct) numbers, for a sender with
        ``scope``: only the numbers with a complaint in it are broken down."""
        rendered = self.render_all(template, variables)
        mine: dict[str, tuple[str | None, bool]] = {}
        for i in range(0, len(numbers), 500):
            chunk = list(numbers[i : i + 500])
            in_scope = Complaint.filter(scope.q(), citizen__phone__in=chunk)
            for phone, lang, opted in await in_scope.distinct().values_list(
                "citizen__phone", "citizen__language", "citizen__opted_out"
            ):
                mine[str(phone)] = (lang, bool(opted))
        default = self.config.service.default_language
        groups: dict[tuple[str, bool], int] = {}
        for n in numbers:
            if n in mine:
                lang, opted = mine[n]
                key = (lang or default, opted)
                groups[key] = groups.get(key, 0) + 1
        outside = len(numbers) - sum(groups.values())
        return self._tally(
            template, rendered, ((k[0], k[1], v) for k, v in groups.items()), outside=outside
        )

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
        conn = get_connection("default")
        # Numbers are joined to citizens by phone (no foreign key): raw SQL. A number is
        # in the creator's scope when its citizen has a complaint there.
        where, values = _scope_sql(conn, Scope.from_json(campaign.scope))
        sql = (
            "SELECT ci.language, ci.opted_out, EXISTS (SELECT 1 FROM complaint co "
            f"WHERE co.citizen_id = ci.id{where}) AS mine, COUNT(*) FROM campaign_contact cc "
            "LEFT JOIN citizen ci ON ci.phone = cc.phone "
            f"WHERE cc.campaign_id = {int(campaign.id)} GROUP BY 1, 2, 3"
        )
        _, rows = await conn.execute_query(sql, values)
        triples = []
        outside = 0
        for row in rows:
            language, opted_out, mine, n = (
                list(dict(row).values()) if not isinstance(row, tuple) else list(row)
            )
            if mine:
                triples.append((str(language or default), bool(opted_out), int(n)))
            else:
                outside += int(n)
        return self._tally(campaign.template, rendered, triples, outside=outside)

    def _tally(
        self,
        template: str,
        rendered: Mapping[str, RenderedSms],
        groups: Any,
        *,
        outside: int = 0,
    ) -> Preview:
        essential = self.templates[template].essential
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
        longest = max(r.segments for r in rendered.values())
        return Preview(
            recipients=sum(languages.values()) + outside,
            skipped_opted_out=skipped,
            languages=dict(sorted(languages.items())),
            segments=dict(sorted(segments.items())),
            total_segments=sum(n * segments[lang] for lang, n in languages.items())
            + outside * longest,
            essential=essential,
            outside_scope=outside,
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
                essential=self.templates[template].essential,
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
        self, campaign: Campaign, text: AsyncIterable[str], *, actor: str
    ) -> CsvReport:
        """Add a CSV's phone numbers (:mod:`gateway.text.csv_numbers`; ``text`` the file in
        pieces of any size) to a draft campaign with a CSV audience, in batches: the file
        is never held whole."""
        if "csv" not in campaign.audience:
            raise CampaignConflict("audience: this campaign's audience is a filter")
        if campaign.status is not CampaignStatus.DRAFT:
            raise CampaignConflict(f"the campaign is {campaign.status.value}")
        before = await CampaignContact.filter(campaign_id=campaign.id).count()
        reader = NumberReader(region=self.config.service.country)
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

        async for piece in text:
            # In a thread: some 50 ms of checking numbers a 64 KiB piece, during which the
            # event loop (USSD hops) gets its turns.
            batch += await asyncio.to_thread(reader.feed, piece)
            if len(batch) >= 1000:
                await flush()
        batch += reader.finish()
        await flush()
        added = await CampaignContact.filter(campaign_id=campaign.id).count() - before
        report = reader.report(numbers=added, duplicates=reader.accepted - added)
        csv_info = dict(campaign.audience["csv"])
        csv_info["lines"] = int(csv_info.get("lines", 0)) + report.lines
        csv_info["numbers"] = int(csv_info.get("numbers", 0)) + added
        csv_info["bad_lines"] = int(csv_info.get("bad_lines", 0)) + report.bad_lines
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
                raise CampaignConflict(
                    f"the campaign is {current.status.value}; cannot {action.split('.')[-1]} it"
                )
            await audit(actor, action, target=f"campaign:{campaign.id}", conn=conn)
        await campaign.refresh_from_db()
        return campaign

    async def start(self, campaign: Campaign, *, actor: str) -> Campaign:
        """Start sending a draft campaign."""
        if campaign.status is CampaignStatus.DRAFT:
            preview = await self.refresh_totals(campaign)
            if preview.recipients == 0:
                raise InvalidCampaign("audience", "the campaign has no recipients")
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
        unknown=counts.get(MessageStatus.UNKNOWN.value, 0),
        waiting_until=_held_until(campaign, config, now),
    )


def _held_until(campaign: Campaign, config: Config | None, now: datetime | None) -> datetime | None:
    """When quiet hours hold a sending campaign: their end, in the service's time zone."""
    if config is None or now is None or campaign.status is not CampaignStatus.SENDING:
        return None
    end = in_quiet_hours(config, now)
    return end.astimezone(ZoneInfo(config.service.timezone)) if end is not None else None


_TOKEN_BUCKET = """
local rate, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local wanted, now = tonumber(ARGV[3]), tonumber(ARGV[4])
if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(held[1]) or capacity, tonumber(held[2]) or now
if now > at then
    tokens = math.min(capacity, tokens + (now - at) * rate)
    at = now
end
tokens = tokens - wanted
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
           'at', string.format('%.6f', at))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
if tokens >= 0 then return 0 end
return math.ceil(-tokens / rate * 1e6)
"""
"""A token bucket, one atomic step: refill for the time since the last request, take the
tokens wanted (the bucket may go into debt), answer the microseconds until the debt is
paid. Key: the bucket (a hash, gone once it would be full again); args: rate a second,
capacity, tokens wanted, now in seconds (empty: the Redis server's clock)."""


class RateLimiter:
    """Segments a second per provider, shared through Redis by every campaign and worker.

    A token bucket (:data:`_TOKEN_BUCKET`) filling at ``per_second`` up to ``capacity``,
    one second's worth (at least one segment). A request takes its segments at once and
    waits until the bucket is out of debt, so any ``t`` seconds carry at most ``capacity +
    per_second * t`` segments, a fractional rate holds (0.5: a segment every two seconds)
    and a request larger than the capacity waits for what it takes beyond it. Requests
    are served in the order they ask, whichever worker they come from. The time is the
    Redis server's, the same for every worker; ``clock`` (seconds) replaces it in tests.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        provider: str,
        per_second: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.key = f"sampark:bulk-rate:{provider}"
        self.per_second = per_second
        self.capacity = max(1.0, per_second)
        self.clock = clock
        self._take = redis.register_script(_TOKEN_BUCKET)

    async def reserve(self, segments: int) -> float:
        """Take ``segments`` from the bucket; the seconds to wait before sending them."""
        now = "" if self.clock is None else repr(self.clock())
        micros = await self._take(
            keys=[self.key], args=[repr(self.per_second), repr(self.capacity), segments, now]
        )
        return int(micros) / 1e6

    async def acquire(self, segments: int) -> None:
        """Wait until ``segments`` may be sent."""
        wait = await self.reserve(segments)
        if wait > 0:
            await asyncio.sleep(wait)


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
        redis: Redis,
        scheduler: RunScheduler,
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.templates = templates
        self.provider = provider
        self.session = session
        self.redis = redis
        self.scheduler = scheduler
        self.clock = clock
        self.limiter = RateLimiter(
            redis, provider=provider.name, per_second=config.bulk.segments_per_second
        )
        self._answer_wait = timedelta(minutes=config.worker.unknown_answer_retry_minutes)
        self._lease = timedelta(seconds=config.worker.send_lease_seconds)

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
                soon = datetime.now(UTC) + timedelta(seconds=15)
                if pending:
                    # Only messages another (dead) worker left "sending": take them when stale.
                    return "waiting", (True, soon)
                answer_due = await next_unanswered_retry(
                    wait=self._answer_wait, campaign_id=campaign_id
                )
                if answer_due is not None:
                    # Answers lost: their reports may settle them any moment (look again
                    # soon, to be done then), else their one more try is due then.
                    return "waiting", (True, min(soon, answer_due))
                await Campaign.filter(id=campaign_id, status=CampaignStatus.SENDING).update(
                    status=CampaignStatus.DONE, finished_at=datetime.now(UTC)
                )
                log.info("campaign %s: every recipient handed to the provider", campaign_id)
                return "done", None
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
                returning=_PENDING_COLUMNS,
                skip_conflicts_on="idempotency_key",
            )
            await (
                Campaign.filter(id=campaign.id)
                .using_db(conn)
                .update(cursor=cursor, skipped=F("skipped") + skipped)
            )
        campaign.cursor = cursor
        return [_pending(*(r[c] for c in _PENDING_COLUMNS)) for r in written]

    async def _send_batch(self, campaign: Campaign, fresh: list[_Pending]) -> tuple[int, bool]:
        """Send ``fresh`` (taken from the list as they go to the provider), then the next of
        the messages waiting; (messages accepted, any transient failure)."""
        now = datetime.now(UTC)
        size = self.config.bulk.batch_size
        held = {p[0] for p in fresh}
        await retry_unanswered(wait=self._answer_wait, now=now, campaign_id=campaign.id)
        rows: list[_Pending] = list(fresh)
        mine = OutboundMessage.filter(campaign_id=campaign.id)
        columns = _PENDING_COLUMNS
        if len(rows) < size:
            # Retried and stale ones, then queued ones: each query a range of the
            # (campaign_id, status) index (one OR over all the statuses would walk every
            # message already sent, batch after batch).
            rows += [
                _pending(*row)
                for row in await mine.filter(
                    status__in=[MessageStatus.RETRYING, MessageStatus.SENDING]
                )
                .filter(Q(status=MessageStatus.RETRYING) | Q(updated_at__lt=now - self._lease))
                .exclude(id__in=list(held))
                .order_by("id")
                .limit(size - len(rows))
                .values_list(*columns)
            ]
        if len(rows) < size:
            rows += [
                _pending(*row)
                for row in await mine.filter(status=MessageStatus.QUEUED)
                .order_by("id")
                .limit(size - len(rows))
                .values_list(*columns)
            ]
        # One request per text (and its DLT template: one per language of the template).
        by_text: dict[tuple[str, str | None], list[tuple[int, str, int]]] = {}
        for mid, recipient, text, segments, dlt_template_id in rows:
            by_text.setdefault((text, dlt_template_id), []).append((mid, recipient, segments))
        accepted = 0
        transient = False
        for (text, dlt_template_id), group in by_text.items():
            segments = group[0][2]
            per_request = max(1, int(self.limiter.capacity) // max(1, segments))
            for i in range(0, len(group), per_request):
                status = await Campaign.filter(id=campaign.id).values_list("status", flat=True)
                if status and str(status[0]) != CampaignStatus.SENDING.value:
                    return accepted, False
                chunk = group[i : i + per_request]
                await self.limiter.acquire(segments * len(chunk))
                ids = {mid for mid, _, _ in chunk}
                fresh[:] = [p for p in fresh if p[0] not in ids]
                # Shielded: a worker stopped mid-request still records what the provider took.
                sms = OutgoingSms(
                    text=text,
                    recipients=(),
                    dlt_template_id=dlt_template_id,
                    dlt_entity_id=self.config.sms.dlt_entity_id,
                )
                a, t = await asyncio.shield(self._send_one_request(sms, chunk, held))
                accepted += a
                transient = transient or t
        return accepted, transient

    async def _send_one_request(
        self, sms: OutgoingSms, chunk: list[tuple[int, str, int]], held: set[int]
    ) -> tuple[int, bool]:
        """Send ``sms`` (its text and DLT IDs) to the messages of ``chunk`` this runner holds
        or can claim; (messages accepted, any transient failure)."""
        # Messages this runner wrote are held already (first attempt); the others are
        # claimed in one statement: a row another worker holds (sending, not stale), or one
        # already sent, is left alone.
        mine = [
            ClaimedMessage(mid, phone, sms.text, 1, sms.dlt_template_id)
            for mid, phone, _ in chunk
            if mid in held
        ]
        others = [mid for mid, _, _ in chunk if mid not in held]
        claimed = await claim_messages(others, lease=self._lease) if others else []
        mine += [m for m in claimed if m is not None]
        results = await send_request(
            mine,
            sms,
            provider=self.provider,
            session=self.session,
            may_retry=lambda m: m.attempts < self.config.bulk.max_tries,
        )
        return (
            sum(r.status in _TAKEN for r in results.values()),
            any(r.transient for r in results.values()),
        )

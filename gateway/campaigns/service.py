"""Bulk status notifications, the staff side: one DLT template to many citizens, each in
their language.

A campaign is previewed (audience size, languages, segments: the cost), created as a
draft, then started, paused, resumed or cancelled here; its audience is
:mod:`.audience`'s, its sending :mod:`.runner`'s (on its own arq queue, below
acknowledgements and lifecycle messages), its progress :mod:`.progress`'s. Its recipients
become outbox rows carrying its ID, de-duplicated by the idempotency key
``campaign:<id>:<phone>``, and move forward only as any outbox message does, so a
recipient is sent to once.

This module knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from tortoise.connection import get_connection
from tortoise.expressions import Subquery
from tortoise.functions import Count, Min
from tortoise.transactions import in_transaction

from gateway.campaigns.audience import ComplaintFilter, campaign_scope, scope_sql, within
from gateway.campaigns.progress import fail_unsent
from gateway.complaints.scope import Scope
from gateway.config import Config
from gateway.errors import FieldError
from gateway.sms.templates import DLT_VARIABLE_MAX, RenderedSms, TemplateBook, TemplateError
from gateway.staff.audit import audit
from gateway.storage.models import (
    Campaign,
    CampaignContact,
    CampaignStatus,
    Complaint,
    ComplaintStatus,
    StaffMember,
)
from gateway.storage.sql import insert_rows
from gateway.text.csv_numbers import CsvReport, NumberReader

__all__ = [
    "START_AHEAD_MAX",
    "CampaignConflict",
    "Campaigns",
    "InvalidCampaign",
    "Preview",
    "RunScheduler",
]

log = logging.getLogger(__name__)


START_AHEAD_MAX = timedelta(days=30)
# What decides the language of a filter audience's SMS: the complaint's and the citizen's
# language, and what the citizen's handset draws.
HANDSET_GROUP = (
    "language",
    "citizen__language",
    "citizen__opted_out",
    "citizen__latin_only",
    "citizen__script",
)
"""How far ahead a campaign may be started for."""


class InvalidCampaign(FieldError):
    """A campaign asked for with a value that cannot be taken (names the field)."""


class CampaignConflict(Exception):
    """The campaign as it is now does not allow the request (its status, or its kind of
    audience): nothing was done."""


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
        data = asdict(self)
        data["segments_per_message"] = data.pop("segments")
        return data


class RunScheduler(Protocol):
    """Queues a campaign's sending job (on the bulk queue)."""

    async def schedule(self, campaign_id: int, *, at: datetime | None = None) -> None: ...


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
            .group_by(*HANDSET_GROUP)
            .values(*HANDSET_GROUP, "n")
        )
        return self._tally(
            template,
            rendered,
            (
                (
                    self.config.sms_language(
                        str(r["citizen__language"] or r["language"]),
                        latin_only=bool(r["citizen__latin_only"]),
                        script=r["citizen__script"],
                    ),
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
            for phone, lang, opted, latin, script in await in_scope.distinct().values_list(
                "citizen__phone",
                "citizen__language",
                "citizen__opted_out",
                "citizen__latin_only",
                "citizen__script",
            ):
                chosen = lang or self.config.service.default_language
                language = self.config.sms_language(chosen, latin_only=latin, script=script)
                mine[str(phone)] = (language, bool(opted))
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
        where, values = scope_sql(conn, Scope.from_json(campaign.scope))
        sql = (
            "SELECT ci.language, ci.opted_out, EXISTS (SELECT 1 FROM complaint co "
            f"WHERE co.citizen_id = ci.id{where}) AS mine, ci.latin_only, ci.script, COUNT(*) "
            "FROM campaign_contact cc LEFT JOIN citizen ci ON ci.phone = cc.phone "
            f"WHERE cc.campaign_id = {int(campaign.id)} GROUP BY 1, 2, 3, 4, 5"
        )
        _, rows = await conn.execute_query(sql, values)
        triples = []
        outside = 0
        for row in rows:
            language, opted_out, mine, latin, script, n = (
                list(dict(row).values()) if not isinstance(row, tuple) else list(row)
            )
            if mine:
                lang = self.config.sms_language(
                    str(language or default), latin_only=bool(latin), script=script
                )
                triples.append((lang, bool(opted_out), int(n)))
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
        if not within(Scope.from_json(campaign.scope), campaign_scope(scope, self.config)):
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

    async def start(
        self, campaign: Campaign, *, actor: str, at: datetime | None = None
    ) -> Campaign:
        """Start sending a draft campaign: now, or at ``at`` (aware; the campaign is
        ``sending`` from now on, and its runner waits until then)."""
        if campaign.status is CampaignStatus.DRAFT:
            preview = await self.refresh_totals(campaign)
            if preview.recipients == 0:
                raise InvalidCampaign("audience", "the campaign has no recipients")
        # Real time, as the job queue's (not the clock tests may set).
        if at is not None and at > datetime.now(UTC) + START_AHEAD_MAX:
            raise InvalidCampaign("at", f"at most {START_AHEAD_MAX.days} days ahead")
        if at is not None and at <= datetime.now(UTC):
            at = None
        return await self._send(
            campaign,
            from_=CampaignStatus.DRAFT,
            actor=actor,
            action="campaign.start",
            at=at,
            started_at=at or datetime.now(UTC),
        )

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
        return await self._send(
            campaign, from_=CampaignStatus.PAUSED, actor=actor, action="campaign.resume"
        )

    async def _send(
        self,
        campaign: Campaign,
        *,
        from_: CampaignStatus,
        actor: str,
        action: str,
        at: datetime | None = None,
        **extra: Any,
    ) -> Campaign:
        """Move the campaign to sending and queue its run (now, or at ``at``)."""
        campaign = await self._move(
            campaign, from_=[from_], to=CampaignStatus.SENDING, actor=actor, action=action, **extra
        )
        await self.scheduler.schedule(campaign.id, at=at)
        return campaign

    async def visible(self, scope: Scope, *, limit: int = 100) -> list[Campaign]:
        """The campaigns within ``scope``, newest first (at most ``limit``, among the
        newest 500)."""
        found: list[Campaign] = []
        outer = campaign_scope(scope, self.config)
        # Scope is checked per campaign (their stored scopes are small JSON).
        for c in await Campaign.all().order_by("-id").limit(500):
            if within(Scope.from_json(c.scope), outer):
                found.append(c)
                if len(found) >= limit:
                    break
        return found

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
        await fail_unsent(campaign.id, provider=self.config.sms.provider)
        return campaign

"""The complaint domain: registering a complaint and telling the citizen its ticket.

Knows nothing of HTTP, USSD or providers: callers hand it plain values, and it writes the
complaint, its first event and the acknowledgement SMS in one transaction, then hands the
message to the :class:`~gateway.sms.outbox.Dispatcher`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.complaints.lifecycle import IllegalTransition, Lifecycle
from gateway.complaints.routing import officer_for
from gateway.config import Config
from gateway.errors import FieldError
from gateway.ops import metrics
from gateway.sms.notices import Notices
from gateway.sms.outbox import Dispatcher, queue_messages
from gateway.storage.models import (
    Channel,
    Citizen,
    Complaint,
    ComplaintEvent,
    ComplaintStatus,
    EventKind,
)
from gateway.storage.sql import param
from gateway.text.phone import mask_phone
from gateway.text.tickets import TicketCodec

__all__ = [
    "ComplaintService",
    "ComplaintView",
    "InvalidComplaint",
    "MonthlyLimitReached",
    "NewComplaint",
    "Registration",
]

log = logging.getLogger(__name__)

ACKNOWLEDGEMENT = "complaint_registered"


class MonthlyLimitReached(Exception):
    """The number has registered as many complaints this month as one number may."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} complaints a month from one number")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class ComplaintView:
    """What a citizen may see of a complaint (no personal data)."""

    ticket: str
    status: str
    department: str
    due_at: datetime
    owned: bool
    """The asking number registered it (only the owner may rate it)."""


class InvalidComplaint(FieldError):
    """A complaint names something the configuration does not have (names the field)."""


@dataclass(frozen=True, slots=True)
class NewComplaint:
    phone: str
    """E.164."""
    language: str
    department: str
    district: str
    block: str
    channel: Channel
    source_key: str
    """Identifies the request (``ussd:<session id>``): registering it twice returns the first."""
    issue_type: str | None = None
    description: str | None = None
    actor: str | None = None
    """Who registered it, for the event (default: the citizen on USSD, else the system)."""


@dataclass(frozen=True, slots=True)
class Registration:
    complaint_id: int
    ticket: str
    due_at: datetime
    created: bool
    """False when ``source_key`` had registered it already."""


class ComplaintService:
    """Registers complaints and keeps each citizen's language."""

    def __init__(
        self,
        *,
        config: Config,
        notices: Notices,
        tickets: TicketCodec,
        dispatcher: Dispatcher,
        lifecycle: Lifecycle | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.notices = notices
        self.tickets = tickets
        self.dispatcher = dispatcher
        self.lifecycle = lifecycle
        self.clock = clock
        self.tz = ZoneInfo(config.service.timezone)

    async def language_of(self, phone: str) -> str | None:
        """The language the citizen chose before, if any (and if still offered)."""
        # Asked on every session's first hop: one statement, not a tortoise query.
        conn = get_connection("default")
        rows = await conn.execute_query_dict(
            f'SELECT "language" FROM "citizen" WHERE "phone" = {param(conn, 1)}', [phone]
        )
        code = rows[0]["language"] if rows else None
        return code if isinstance(code, str) and self.config.language(code) else None

    async def set_language(self, phone: str, language: str) -> None:
        lang = self.config.language(language)
        if lang is None:
            raise InvalidComplaint("language", f"{language!r} is not offered")
        # Choosing a language in Latin letters marks the handset Latin-only; choosing one in
        # another script shows it can show that script. One upsert: most callers are new.
        now = datetime.now(UTC)
        conn = get_connection("default")
        p = [param(conn, i) for i in range(1, 6)]
        await conn.execute_query(
            'INSERT INTO "citizen" ("phone", "language", "latin_only", "script", "opted_out", '
            f'"created_at", "updated_at") VALUES ({p[0]}, {p[1]}, {p[2]}, {p[3]}, FALSE, '
            f'{p[4]}, {p[4]}) ON CONFLICT ("phone") DO UPDATE SET '
            '"language" = excluded."language", "latin_only" = excluded."latin_only", '
            '"script" = excluded."script", "updated_at" = excluded."updated_at"',
            [phone, language, lang.latin, lang.script, now],
        )

    async def registered_this_month(self, phone: str) -> int:
        """Complaints this number registered in the current calendar month (local time)."""
        local = self.clock().astimezone(self.tz)
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        conn = get_connection("default")
        rows = await conn.execute_query_dict(
            'SELECT COUNT(*) AS "n" FROM "complaint" JOIN "citizen" '
            'ON "citizen"."id" = "complaint"."citizen_id" '
            f'WHERE "citizen"."phone" = {param(conn, 1)} '
            f'AND "complaint"."created_at" >= {param(conn, 2)}',
            [phone, start.astimezone(UTC)],
        )
        return int(rows[0]["n"])

    async def may_register(self, phone: str) -> bool:
        limit = self.config.lifecycle.monthly_limit_per_number
        return await self.registered_this_month(phone) < limit

    def parse_ticket(self, raw: str) -> str:
        """The ticket's canonical digits; raises :class:`InvalidTicket` (a mistyped digit is
        caught by the check digit)."""
        return self.tickets.parse(raw)

    async def recent(self, phone: str, *, limit: int = 20) -> list[ComplaintView]:
        """The number's complaints, newest first."""
        rows = await Complaint.filter(citizen__phone=phone).order_by("-id").limit(limit)
        return [self._view(c, owned=True) for c in rows]

    async def find(self, ticket: str, *, phone: str) -> ComplaintView | None:
        c = await Complaint.get_or_none(ticket=ticket).prefetch_related("citizen")
        if c is None:
            return None
        return self._view(c, owned=c.citizen.phone == phone)

    def _view(self, c: Complaint, *, owned: bool) -> ComplaintView:
        assert c.ticket is not None
        return ComplaintView(c.ticket, c.status.value, c.department, c.due_at, owned)

    async def rate(self, ticket: str, *, phone: str, satisfied: bool) -> bool:
        """The owner's answer to "is your problem solved?" given on USSD; False when the
        complaint is not awaiting one (answered already, or not theirs)."""
        if self.lifecycle is None:
            return False
        c = await Complaint.get_or_none(ticket=ticket, citizen__phone=phone)
        if c is None:
            return False
        try:
            await self.lifecycle.feedback(c.id, satisfied=satisfied)
        except IllegalTransition:
            return False
        return True

    def validate(self, new: NewComplaint) -> str:
        """Check every code against the configuration; returns the block's tehsil."""
        dept = self.config.department(new.department)
        if dept is None:
            raise InvalidComplaint("department", f"unknown department {new.department!r}")
        if new.issue_type is not None and dept.issue(new.issue_type) is None:
            raise InvalidComplaint(
                "issue_type", f"{new.issue_type!r} is not an issue of {dept.code}"
            )
        if new.issue_type is None and not (new.description and new.description.strip()):
            raise InvalidComplaint("description", "give an issue type or a description")
        district = self.config.district(new.district)
        if district is None:
            raise InvalidComplaint("district", f"unknown district {new.district!r}")
        tehsil = district.tehsil_of(new.block)
        if tehsil is None:
            raise InvalidComplaint("block", f"{new.block!r} is not a block of {district.code}")
        if self.config.language(new.language) is None:
            raise InvalidComplaint("language", f"{new.language!r} is not offered")
        return tehsil.code

    async def register(self, new: NewComplaint) -> Registration:
        """Register ``new`` and queue its acknowledgement SMS, or return the registration
        ``new.source_key`` made before."""
        tehsil = self.validate(new)
        try:
            registration, message_ids = await self._register(new, tehsil)
        except IntegrityError:
            # The same source registered it concurrently: return that one.
            existing = await Complaint.get_or_none(source_key=new.source_key)
            if existing is None or existing.ticket is None:
                raise
            return Registration(existing.id, existing.ticket, existing.due_at, created=False)
        if message_ids:
            await self.dispatcher.dispatch(message_ids)
        return registration

    async def _register(self, new: NewComplaint, tehsil: str) -> tuple[Registration, list[int]]:
        now = self.clock()
        async with in_transaction() as conn:
            existing = await Complaint.get_or_none(source_key=new.source_key, using_db=conn)
            if existing is not None and existing.ticket is not None:
                return Registration(existing.id, existing.ticket, existing.due_at, False), []
            if not await self.may_register(new.phone):
                raise MonthlyLimitReached(self.config.lifecycle.monthly_limit_per_number)
            citizen = await Citizen.get_or_none(phone=new.phone, using_db=conn)
            lang = self.config.language(new.language)
            latin = lang is not None and lang.latin
            script = lang.script if lang is not None else None
            if citizen is None:
                citizen = await Citizen.create(
                    phone=new.phone,
                    language=new.language,
                    latin_only=latin,
                    script=script,
                    using_db=conn,
                )
            elif citizen.language != new.language:
                citizen.language = new.language
                citizen.latin_only = latin
                citizen.script = script
                await citizen.save(
                    using_db=conn, update_fields=["language", "latin_only", "script", "updated_at"]
                )
            sms_lang = self.config.sms_language(
                new.language, latin_only=citizen.latin_only, script=citizen.script
            )
            level = self.config.levels[0]
            due_at = now + timedelta(days=level.days)
            complaint = await Complaint.create(
                citizen=citizen,
                language=new.language,
                department=new.department,
                issue_type=new.issue_type,
                description=new.description,
                district=new.district,
                tehsil=tehsil,
                block=new.block,
                channel=new.channel,
                level=1,
                due_at=due_at,
                source_key=new.source_key,
                using_db=conn,
            )
            # The ticket comes from the row's id: unique however many gateways write.
            complaint.ticket = self.tickets.encode(complaint.id)
            officer = officer_for(self.config, complaint)
            events = [
                ComplaintEvent(
                    complaint=complaint,
                    kind=EventKind.REGISTERED,
                    actor=new.actor or ("citizen" if new.channel is Channel.USSD else "system"),
                    to_status=complaint.status.value,
                    remark=f"via {new.channel.value}",
                    officer=officer.code if officer else None,
                    level=1,
                    due_at=due_at,
                )
            ]
            if officer is not None:
                complaint.officer = officer.code
                complaint.status = ComplaintStatus.ASSIGNED
                events.append(
                    ComplaintEvent(
                        complaint=complaint,
                        kind=EventKind.ASSIGNED,
                        actor="system",
                        from_status=ComplaintStatus.REGISTERED.value,
                        to_status=complaint.status.value,
                        remark=officer.code,
                        officer=officer.code,
                        level=1,
                        due_at=due_at,
                    )
                )
            else:
                log.warning("no level-1 officer for %s in %s", new.department, new.block)
            await ComplaintEvent.bulk_create(events, using_db=conn)
            await complaint.save(using_db=conn, update_fields=["ticket", "officer", "status"])
            acknowledgement = self.notices.draft(
                ACKNOWLEDGEMENT,
                to=new.phone,
                language=sms_lang,
                values={
                    "ticket": complaint.ticket,
                    "department": self.notices.department(new.department, sms_lang),
                    "due_date": self.notices.date(sms_lang, due_at),
                    "service_code": self.config.service.service_code,
                },
                key=f"complaint:{complaint.id}:{ACKNOWLEDGEMENT}",
                complaint_id=complaint.id,
            )
            assert acknowledgement is not None  # essential: written even for an opted-out number
            drafts = [acknowledgement]
            if officer is not None and (
                to_officer := self.notices.draft_to_officer(
                    complaint, officer, "officer_new_complaint", key="L1"
                )
            ):
                drafts.append(to_officer)
            ids = await queue_messages(drafts, using_db=conn)
        metrics.registration(new.channel.value, new.language)
        log.info(
            "complaint %s registered via %s for %s",
            complaint.ticket,
            new.channel.value,
            mask_phone(new.phone),
        )
        return Registration(complaint.id, complaint.ticket, due_at, True), ids

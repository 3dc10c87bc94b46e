"""A complaint's life after registration: officers act, deadlines escalate it a level up,
the citizen's feedback closes or reopens it.

Every change is a conditional update on the status (and level) the change was decided
from, in one transaction with its events and SMS: two workers, or a retried request, that
decide the same change find the second update matching no row, so it happens once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from gateway.config import Config, Officer
from gateway.models import (
    Citizen,
    Complaint,
    ComplaintEvent,
    ComplaintStatus,
    EventKind,
)
from gateway.notices import Notices
from gateway.outbox import Dispatcher

__all__ = [
    "OPEN",
    "Change",
    "IllegalTransition",
    "InvalidReassignment",
    "Lifecycle",
    "officer_for",
]

log = logging.getLogger(__name__)

S = ComplaintStatus
OPEN = (S.REGISTERED, S.ASSIGNED, S.IN_PROGRESS, S.REOPENED, S.TRANSFERRED)
"""With an officer, on a deadline."""

ALLOWED: dict[str, tuple[ComplaintStatus, ...]] = {
    "note": OPEN,
    "resolve": OPEN,
    "transfer": OPEN,
    "reassign": OPEN,
    "escalate": OPEN,
    "feedback": (S.RESOLVED,),
    "expire_feedback": (S.RESOLVED,),
}


class IllegalTransition(Exception):
    """The complaint's status does not allow the action (names both)."""

    def __init__(self, action: str, status: str) -> None:
        super().__init__(f"cannot {action} a complaint that is {status}")
        self.action = action
        self.status = status


class InvalidReassignment(ValueError):
    """The officer asked for cannot take the complaint (names the field)."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field_name = field_name
        self.problem = problem


def officer_for(
    config: Config, *, department: str, level: int, district: str, tehsil: str, block: str
) -> Officer | None:
    """The officer for a complaint at ``level`` (1-based): the most specific match wins."""
    if not 1 <= level <= len(config.levels):
        return None
    level_code = config.levels[level - 1].code
    area = (block, tehsil, district)[level - 1] if level <= 3 else None
    best: tuple[int, Officer] | None = None
    for o in config.officers:
        if o.level != level_code or o.department not in (department, "all"):
            continue
        if o.areas != "all" and (area is None or area not in o.areas):
            continue
        score = (2 if o.department == department else 0) + (1 if o.areas != "all" else 0)
        if best is None or score > best[0]:
            best = (score, o)
    return best[1] if best else None


@dataclass(frozen=True, slots=True)
class Change:
    complaint_id: int
    status: ComplaintStatus
    level: int


class Lifecycle:
    """The actions on a complaint after registration."""

    def __init__(
        self,
        *,
        config: Config,
        notices: Notices,
        dispatcher: Dispatcher,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.notices = notices
        self.dispatcher = dispatcher
        self.clock = clock

    # Officers' actions -------------------------------------------------------------
    async def add_note(self, complaint_id: int, remark: str, *, actor: str) -> Change:
        """An officer's status update (आख्या): the citizen is told."""
        return await self._act(complaint_id, "note", actor=actor, remark=remark)

    async def resolve(self, complaint_id: int, remark: str, *, actor: str) -> Change:
        """Resolved by the officer: the citizen is asked whether the problem is solved."""
        return await self._act(complaint_id, "resolve", actor=actor, remark=remark)

    async def transfer(
        self,
        complaint_id: int,
        *,
        actor: str,
        remark: str,
        department: str | None = None,
        block: str | None = None,
    ) -> Change:
        """Send to the right department or block (never closed as "does not pertain");
        past ``lifecycle.max_transfers`` it goes to the district level instead."""
        return await self._act(
            complaint_id,
            "transfer",
            actor=actor,
            remark=remark,
            department=department,
            block=block,
        )

    async def reassign(
        self, complaint_id: int, officer: str, *, actor: str, remark: str | None = None
    ) -> Change:
        """Give the complaint to another officer of its current level (same department or
        a desk for all departments, covering its area); the new officer is told by SMS.
        The deadline is unchanged: a handover does not buy time."""
        return await self._act(
            complaint_id, "reassign", actor=actor, remark=remark, officer=officer
        )

    async def feedback(
        self, complaint_id: int, *, satisfied: bool, actor: str = "citizen"
    ) -> Change:
        """The citizen's answer: solved closes it; not solved reopens it a level up."""
        return await self._act(
            complaint_id, "feedback", actor=actor, remark=None, satisfied=satisfied
        )

    # Scheduled -----------------------------------------------------------------------
    async def escalate_overdue(self, *, limit: int = 1000) -> int:
        """Move every open complaint past its due date one level up; returns how many.

        Reads only overdue rows (the (status, due_at) index), and each move is conditional
        on the level it was read at: a second worker running the same job moves none twice.
        """
        now = self.clock()
        rows = await (
            Complaint.filter(status__in=OPEN, due_at__lt=now, needs_review=False)
            .order_by("due_at")
            .limit(limit)
            .values_list("id", flat=True)
        )
        moved = 0
        for complaint_id in rows:
            try:
                await self._act(int(str(complaint_id)), "escalate", actor="system", remark=None)
                moved += 1
            except (IllegalTransition, _Raced):
                continue
        return moved

    async def feedback_timers(self) -> tuple[int, int]:
        """Remind citizens who have not answered; close without response after longer."""
        now = self.clock()
        lc = self.config.lifecycle
        reminded = closed = 0
        due_close = await Complaint.filter(
            status=S.RESOLVED, resolved_at__lt=now - timedelta(days=lc.feedback_close_days)
        ).values_list("id", flat=True)
        for cid in due_close:
            try:
                await self._act(int(str(cid)), "expire_feedback", actor="system", remark=None)
                closed += 1
            except (IllegalTransition, _Raced):
                continue
        due_remind = await Complaint.filter(
            status=S.RESOLVED,
            reminded_at__isnull=True,
            resolved_at__lt=now - timedelta(days=lc.feedback_reminder_days),
        ).values_list("id", flat=True)
        for cid in due_remind:
            if await self._remind(int(str(cid)), now):
                reminded += 1
        return reminded, closed

    # Mechanics -----------------------------------------------------------------------
    async def _act(
        self,
        complaint_id: int,
        action: str,
        *,
        actor: str,
        remark: str | None,
        satisfied: bool | None = None,
        department: str | None = None,
        block: str | None = None,
        officer: str | None = None,
    ) -> Change:
        now = self.clock()
        async with in_transaction() as conn:
            # Row lock (PostgreSQL): a concurrent action waits, then sees this one's result.
            c = await Complaint.filter(id=complaint_id).select_for_update().using_db(conn).get()
            if c.status not in ALLOWED[action]:
                raise IllegalTransition(action, c.status.value)
            if action == "escalate" and (c.due_at >= now or c.needs_review):
                raise _Raced()  # another worker escalated it since it was listed
            citizen = await Citizen.get(id=c.citizen_id, using_db=conn)  # type: ignore[attr-defined]
            before = (c.status, c.level)
            held_by, due_before = c.officer, c.due_at
            messages: list[int | None] = []
            event = EventKind.STATUS_CHANGED
            event_remark = remark
            if action == "note":
                c.status = S.IN_PROGRESS
                event = EventKind.NOTE
                messages.append(
                    await self._tell_citizen(
                        c,
                        citizen,
                        "complaint_status_update",
                        conn,
                        remark=remark or "",
                        key=f"note:{await self._count_events(c, conn)}",
                    )
                )
            elif action == "resolve":
                c.status = S.RESOLVED
                c.resolved_at = now
                c.reminded_at = None
                event = EventKind.RESOLVED
                messages.append(
                    await self._tell_citizen(
                        c,
                        citizen,
                        "complaint_resolved",
                        conn,
                        remark=remark or "",
                        key=f"resolved:{await self._count_events(c, conn)}",
                    )
                )
            elif action == "feedback" and satisfied:
                c.status = S.CLOSED
                c.closed_at = now
                event = EventKind.CLOSED
                messages.append(await self._tell_citizen(c, citizen, "complaint_closed", conn))
            elif action == "feedback":
                event = EventKind.REOPENED
                c.status = S.REOPENED
                messages += await self._move_up(
                    c, citizen, conn, now, citizen_template="complaint_reopened"
                )
            elif action == "expire_feedback":
                c.status = S.CLOSED_NO_RESPONSE
                c.closed_at = now
                event = EventKind.CLOSED
                messages.append(
                    await self._tell_citizen(
                        c,
                        citizen,
                        "complaint_closed_no_response",
                        conn,
                        service_code=self.config.service.service_code,
                    )
                )
            elif action == "escalate":
                event = EventKind.ESCALATED
                if c.level >= len(self.config.levels):
                    c.needs_review = True
                    event = EventKind.FLAGGED
                else:
                    c.status = S.ASSIGNED
                    messages += await self._move_up(
                        c, citizen, conn, now, citizen_template="complaint_escalated"
                    )
            elif action == "transfer":
                event = EventKind.TRANSFERRED
                messages += await self._transfer(c, citizen, conn, now, department, block)
            elif action == "reassign":
                event = EventKind.ASSIGNED
                new_officer = self._reassignable(c, officer or "")
                c.officer = new_officer.code
                if c.status is S.REGISTERED:
                    c.status = S.ASSIGNED
                event_remark = new_officer.code + (f": {remark}" if remark else "")
                key = f"R{await self._count_events(c, conn)}"
                messages.append(
                    await self._tell_officer(c, new_officer, "officer_new_complaint", conn, key)
                )
            updated = (
                await Complaint.filter(id=c.id, status=before[0], level=before[1])
                .using_db(conn)
                .update(
                    status=c.status,
                    level=c.level,
                    due_at=c.due_at,
                    officer=c.officer,
                    department=c.department,
                    district=c.district,
                    tehsil=c.tehsil,
                    block=c.block,
                    transfers=c.transfers,
                    needs_review=c.needs_review,
                    resolved_at=c.resolved_at,
                    reminded_at=c.reminded_at,
                    closed_at=c.closed_at,
                    updated_at=now,
                )
            )
            if not updated:
                raise _Raced()
            await ComplaintEvent.create(
                complaint_id=c.id,
                kind=event,
                actor=actor,
                from_status=before[0].value,
                to_status=c.status.value,
                remark=event_remark,
                officer=held_by,
                level=c.level,
                due_at=due_before,
                using_db=conn,
            )
        ids = [m for m in messages if m is not None]
        if ids:
            await self.dispatcher.dispatch(ids)
        log.info(
            "complaint %s: %s by %s -> %s L%d", c.ticket, action, actor, c.status.value, c.level
        )
        return Change(c.id, c.status, c.level)

    def _assign(self, c: Complaint, now: datetime) -> Officer | None:
        """Give ``c`` the officer and the deadline of its (new) level and area."""
        c.due_at = now + timedelta(days=self.config.levels[c.level - 1].days)
        officer = officer_for(
            self.config,
            department=c.department,
            level=c.level,
            district=c.district,
            tehsil=c.tehsil,
            block=c.block,
        )
        c.officer = officer.code if officer else None
        return officer

    def _reassignable(self, c: Complaint, code: str) -> Officer:
        """The config officer ``code``, if they may take ``c`` at its current level."""
        officer = next((o for o in self.config.officers if o.code == code), None)
        if officer is None:
            raise InvalidReassignment("officer", f"no officer {code!r} in the configuration")
        if officer.code == c.officer:
            raise InvalidReassignment("officer", f"{code} has the complaint already")
        level = self.config.levels[c.level - 1].code
        if officer.level != level:
            raise InvalidReassignment(
                "officer", f"{code} works at the {officer.level} level, the complaint is at {level}"
            )
        if officer.department not in (c.department, "all"):
            raise InvalidReassignment("officer", f"{code} is not an officer of {c.department}")
        area = (c.block, c.tehsil, c.district)[c.level - 1] if c.level <= 3 else None
        if officer.areas != "all" and (area is None or area not in officer.areas):
            raise InvalidReassignment("officer", f"{code} does not cover {area}")
        return officer

    async def _count_events(self, c: Complaint, conn: BaseDBAsyncClient) -> int:
        return await ComplaintEvent.filter(complaint_id=c.id).using_db(conn).count()

    async def _move_up(
        self,
        c: Complaint,
        citizen: Citizen,
        conn: BaseDBAsyncClient,
        now: datetime,
        *,
        citizen_template: str,
    ) -> list[int | None]:
        if c.level >= len(self.config.levels):
            c.needs_review = True  # already at the top: the state review takes it
        else:
            c.level += 1
        officer = self._assign(c, now)
        lang = self._sms_language(c, citizen)
        out = [
            await self._tell_citizen(
                c,
                citizen,
                citizen_template,
                conn,
                key=f"L{c.level}:{c.due_at.date()}",
                level=self.notices.level(c.level, lang),
                due_date=self.notices.date(lang, c.due_at),
            )
        ]
        out.append(await self._tell_officer(c, officer, "officer_escalated", conn, f"L{c.level}"))
        return out

    async def _transfer(
        self,
        c: Complaint,
        citizen: Citizen,
        conn: BaseDBAsyncClient,
        now: datetime,
        department: str | None,
        block: str | None,
    ) -> list[int | None]:
        cfg = self.config
        if department is not None and cfg.department(department) is None:
            raise ValueError(f"department: unknown department {department!r}")
        if block is not None:
            district = next((d for d in cfg.districts if d.tehsil_of(block)), None)
            if district is None:
                raise ValueError(f"block: unknown block {block!r}")
            tehsil = district.tehsil_of(block)
            assert tehsil is not None
            c.district, c.tehsil, c.block = district.code, tehsil.code, block
        if department is not None:
            c.department = department
        if c.transfers >= cfg.lifecycle.max_transfers:
            # Passed around too often: the district level takes it.
            c.level = max(c.level, min(3, len(cfg.levels)))
        else:
            c.transfers += 1
            c.level = 1
        c.status = S.TRANSFERRED
        officer = self._assign(c, now)
        lang = self._sms_language(c, citizen)
        return [
            await self._tell_citizen(
                c,
                citizen,
                "complaint_transferred",
                conn,
                key=f"T{c.transfers}:L{c.level}",
                department=self.notices.department(c.department, lang),
                due_date=self.notices.date(lang, c.due_at),
            ),
            await self._tell_officer(c, officer, "officer_new_complaint", conn, f"T{c.transfers}"),
        ]

    async def _remind(self, complaint_id: int, now: datetime) -> bool:
        async with in_transaction() as conn:
            updated = (
                await Complaint.filter(id=complaint_id, status=S.RESOLVED, reminded_at__isnull=True)
                .using_db(conn)
                .update(reminded_at=now)
            )
            if not updated:
                return False
            c = await Complaint.get(id=complaint_id, using_db=conn)
            citizen = await Citizen.get(id=c.citizen_id, using_db=conn)  # type: ignore[attr-defined]
            await ComplaintEvent.create(
                complaint_id=c.id,
                kind=EventKind.REMINDED,
                actor="system",
                from_status=c.status.value,
                to_status=c.status.value,
                using_db=conn,
            )
            message = await self._tell_citizen(
                c, citizen, "feedback_reminder", conn, key=f"reminder:{c.resolved_at}"
            )
        if message is not None:
            await self.dispatcher.dispatch([message])
        return True

    def _sms_language(self, c: Complaint, citizen: Citizen) -> str:
        """The language of an SMS to ``citizen`` (Latin letters on a Latin-only handset)."""
        return self.config.sms_language(
            citizen.language or c.language, latin_only=citizen.latin_only
        )

    async def _tell_citizen(
        self,
        c: Complaint,
        citizen: Citizen,
        template: str,
        conn: BaseDBAsyncClient,
        *,
        key: str = "",
        **values: str,
    ) -> int | None:
        lang = self._sms_language(c, citizen)
        assert c.ticket is not None
        msg = await self.notices.queue(
            template,
            to=citizen.phone,
            language=lang,
            values={"ticket": c.ticket, **values},
            key=f"complaint:{c.id}:{template}:{key}",
            complaint=c,
            conn=conn,
            opted_out=citizen.opted_out,
        )
        return msg.id if msg else None

    async def _tell_officer(
        self,
        c: Complaint,
        officer: Officer | None,
        template: str,
        conn: BaseDBAsyncClient,
        key: str,
    ) -> int | None:
        if officer is None:
            log.warning("complaint %s: no officer configured at level %d", c.ticket, c.level)
            return None
        msg = await self.notices.to_officer(c, officer, template, conn=conn, key=key)
        return msg.id if msg else None


class _Raced(Exception):
    """Another worker or request changed the complaint first."""

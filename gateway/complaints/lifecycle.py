"""A complaint's life after registration: officers act, deadlines escalate it a level up,
the citizen's feedback closes or reopens it.

Every change is a conditional update on the status (and level) the change was decided
from, in one transaction with its events and SMS: two workers, or a retried request, that
decide the same change find the second update matching no row, so it happens once. An
action asked for by an inbound SMS carries its ``source_key``, unique on its event: a
retry of the SMS that would act again (a note, a transfer) fails instead. The
deadline job moves many complaints per transaction by the same rules: it reads them again
inside it (locked, on PostgreSQL) and moves only those still due.

A staff member or officer acts within their :class:`~gateway.complaints.scope.Scope`, checked on the
row the action read and locked, so a complaint escalated a moment before is refused
(:class:`~gateway.complaints.scope.OutOfScope`). Refusals are typed: :class:`IllegalTransition` (the
status forbids it), :class:`InvalidTransfer` and :class:`InvalidReassignment` (a transfer
target or officer that cannot take it: a :class:`~gateway.errors.FieldError` naming the
field), :class:`ConcurrentChange` (another process changed the complaint between this
action's read and its write: nothing was done, the caller may try again).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import OperationalError
from tortoise.transactions import in_transaction

from gateway.complaints.routing import district_level, officer_for, officer_refusal
from gateway.complaints.scope import OutOfScope, Scope
from gateway.config import Config, Officer
from gateway.errors import FieldError
from gateway.ops import metrics
from gateway.sms.notices import Notices
from gateway.sms.outbox import Dispatcher, MessageDraft, queue_messages
from gateway.sms.templates import RenderedSms
from gateway.storage.models import Citizen, Complaint, ComplaintEvent, ComplaintStatus, EventKind
from gateway.storage.sql import insert_rows, is_stale_snapshot, update_rows

__all__ = [
    "OPEN",
    "Change",
    "ConcurrentChange",
    "IllegalTransition",
    "InvalidReassignment",
    "InvalidTransfer",
    "Lifecycle",
    "RemarkMissing",
]

log = logging.getLogger(__name__)

S = ComplaintStatus
ESCALATION_CHUNK = 250
"""Complaints the deadline job moves in one transaction: few statements per complaint, and
no transaction holding SQLite's one writer for long."""
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


class InvalidReassignment(FieldError):
    """The officer asked for cannot take the complaint (field ``officer``)."""


class InvalidTransfer(FieldError):
    """The transfer target is unknown, or where the complaint already is (field
    ``department`` or ``block``)."""


class RemarkMissing(FieldError):
    """A status update or a resolution without a word of what was done: the citizen's SMS
    would say nothing (field ``remark``)."""

    def __init__(self) -> None:
        super().__init__("remark", "say what was done (1 to 500 characters)")


def _said(remark: str) -> str:
    """``remark``, which the citizen is sent; :class:`RemarkMissing` when blank."""
    if not remark.strip():
        raise RemarkMissing
    return remark


class ConcurrentChange(Exception):
    """Another worker, process or request changed the complaint between this action's read
    and its write; nothing was done."""

    def __init__(self, action: str, complaint_id: int) -> None:
        super().__init__(f"the complaint changed while trying to {action} it: try again")
        self.action = action
        self.complaint_id = complaint_id


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
    # ``scope``: the acting staff member's or officer's (None for the system's own moves).
    # ``source_key``: what asked for the action, kept on its event and unique there, so
    # that the same request (an inbound SMS retried) never acts twice.
    async def add_note(
        self,
        complaint_id: int,
        remark: str,
        *,
        actor: str,
        scope: Scope | None = None,
        source_key: str | None = None,
    ) -> Change:
        """An officer's status update (आख्या): the citizen is told."""
        return await self._act(
            complaint_id,
            "note",
            actor=actor,
            remark=_said(remark),
            scope=scope,
            source_key=source_key,
        )

    async def resolve(
        self,
        complaint_id: int,
        remark: str,
        *,
        actor: str,
        scope: Scope | None = None,
        source_key: str | None = None,
    ) -> Change:
        """Resolved by the officer: the citizen is asked whether the problem is solved."""
        return await self._act(
            complaint_id,
            "resolve",
            actor=actor,
            remark=_said(remark),
            scope=scope,
            source_key=source_key,
        )

    async def transfer(
        self,
        complaint_id: int,
        *,
        actor: str,
        remark: str,
        department: str | None = None,
        block: str | None = None,
        scope: Scope | None = None,
        source_key: str | None = None,
    ) -> Change:
        """Send to the right department or block (never closed as "does not pertain");
        past ``lifecycle.max_transfers`` it goes to the district level instead. Raises
        :class:`InvalidTransfer` for an unknown target or the complaint's own."""
        self._check_target(department, block)
        return await self._act(
            complaint_id,
            "transfer",
            actor=actor,
            remark=remark,
            department=department,
            block=block,
            scope=scope,
            source_key=source_key,
        )

    async def reassign(
        self,
        complaint_id: int,
        officer: str,
        *,
        actor: str,
        remark: str | None = None,
        scope: Scope | None = None,
    ) -> Change:
        """Give the complaint to another officer of its current level (same department or
        a desk for all departments, covering its area); the new officer is told by SMS.
        The deadline is unchanged: a handover does not buy time."""
        return await self._act(
            complaint_id, "reassign", actor=actor, remark=remark, officer=officer, scope=scope
        )

    async def feedback(
        self,
        complaint_id: int,
        *,
        satisfied: bool,
        actor: str = "citizen",
        source_key: str | None = None,
    ) -> Change:
        """The citizen's answer: solved closes it; not solved reopens it a level up."""
        return await self._act(
            complaint_id,
            "feedback",
            actor=actor,
            remark=None,
            satisfied=satisfied,
            source_key=source_key,
        )

    # Scheduled -----------------------------------------------------------------------
    async def escalate_overdue(self, *, limit: int = 1000, chunk: int = ESCALATION_CHUNK) -> int:
        """Move every open complaint past its due date one level up; returns how many.

        Reads only overdue rows (the (status, due_at) index), then moves them ``chunk`` at
        a time, each chunk in one transaction: its complaints read again (locked on
        PostgreSQL) and moved only if still open, overdue and not flagged, so a staff
        action or a second worker that got there first wins and none moves twice.
        """
        now = self.clock()
        rows = await (
            Complaint.filter(status__in=OPEN, due_at__lt=now, needs_review=False)
            .order_by("due_at")
            .limit(limit)
            .values_list("id", flat=True)
        )
        ids = [int(str(i)) for i in rows]
        moved = 0
        for start in range(0, len(ids), chunk):
            moved += await self._escalate_chunk(ids[start : start + chunk])
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
            except (IllegalTransition, ConcurrentChange):
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
        scope: Scope | None = None,
        source_key: str | None = None,
    ) -> Change:
        now = self.clock()
        async with in_transaction() as conn:
            # Row lock (PostgreSQL): a concurrent action waits, then sees this one's result.
            c = await Complaint.filter(id=complaint_id).select_for_update().using_db(conn).get()
            refusal = scope.refusal(c) if scope is not None else None
            if refusal is not None:
                raise OutOfScope(c.ticket, refusal)
            if c.status not in ALLOWED[action]:
                raise IllegalTransition(action, c.status.value)
            citizen = await Citizen.get(id=c.citizen_id, using_db=conn)  # type: ignore[attr-defined]
            move = _Move.of(c, remark)
            move.source_key = source_key
            if action == "note":
                c.status = S.IN_PROGRESS
                move.event = EventKind.NOTE
                move.messages.append(
                    self._tell_citizen(
                        c,
                        citizen,
                        "complaint_status_update",
                        remark=remark or "",
                        key=f"note:{await self._count_events(c, conn)}",
                    )
                )
            elif action == "resolve":
                c.status = S.RESOLVED
                c.resolved_at = now
                c.reminded_at = None
                move.event = EventKind.RESOLVED
                move.messages.append(
                    self._tell_citizen(
                        c,
                        citizen,
                        "complaint_resolved",
                        remark=remark or "",
                        key=f"resolved:{await self._count_events(c, conn)}",
                    )
                )
            elif action == "feedback" and satisfied:
                c.status = S.CLOSED
                c.closed_at = now
                move.event = EventKind.CLOSED
                move.messages.append(self._tell_citizen(c, citizen, "complaint_closed"))
            elif action == "feedback":
                move.event = EventKind.REOPENED
                c.status = S.REOPENED
                move.messages += self._move_up(
                    c, citizen, now, citizen_template="complaint_reopened"
                )
            elif action == "expire_feedback":
                c.status = S.CLOSED_NO_RESPONSE
                c.closed_at = now
                move.event = EventKind.CLOSED
                move.messages.append(
                    self._tell_citizen(
                        c,
                        citizen,
                        "complaint_closed_no_response",
                        service_code=self.config.service.service_code,
                    )
                )
            elif action == "transfer":
                move.event = EventKind.TRANSFERRED
                move.messages += self._transfer(c, citizen, now, department, block)
            elif action == "reassign":
                move.event = EventKind.ASSIGNED
                new_officer = self._reassignable(c, officer or "")
                c.officer = new_officer.code
                if c.status is S.REGISTERED:
                    c.status = S.ASSIGNED
                move.remark = new_officer.code + (f": {remark}" if remark else "")
                key = f"R{await self._count_events(c, conn)}"
                move.messages.append(
                    self._tell_officer(c, new_officer, "officer_new_complaint", key)
                )
            try:  # the transaction's first write
                updated = (
                    await Complaint.filter(id=c.id, status=move.status, level=move.level)
                    .using_db(conn)
                    .update(**_changes(c, now))
                )
            except OperationalError as e:
                if is_stale_snapshot(e):  # SQLite: another process wrote since the read
                    raise ConcurrentChange(action, complaint_id) from e
                raise
            if not updated:
                raise ConcurrentChange(action, complaint_id)
            ids = await self._record([move], conn, actor=actor)
        if ids:
            await self.dispatcher.dispatch(ids)
        log.info(
            "complaint %s: %s by %s -> %s L%d", c.ticket, action, actor, c.status.value, c.level
        )
        return Change(c.id, c.status, c.level)

    def _overdue(self, c: Complaint, now: datetime) -> bool:
        """Whether the deadline job should move ``c``: open, past its deadline, not flagged."""
        return c.status in ALLOWED["escalate"] and c.due_at < now and not c.needs_review

    def _escalate(self, move: _Move, citizen: Citizen, now: datetime) -> None:
        """Past its deadline: a level up with that level's officer, deadline and SMS; at the
        top level, flagged for the state review instead."""
        c = move.c
        if c.level >= len(self.config.levels):
            c.needs_review = True
            move.event = EventKind.FLAGGED
            return
        c.status = S.ASSIGNED
        move.event = EventKind.ESCALATED
        move.messages += self._move_up(c, citizen, now, citizen_template="complaint_escalated")

    async def _escalate_chunk(self, ids: Sequence[int]) -> int:
        """Escalate those of complaints ``ids`` still due, in one transaction; how many."""
        now = self.clock()
        async with in_transaction() as conn:
            # Locked in id order (PostgreSQL): a staff action on one of them, or another
            # run's chunk, waits for this one or this one for it; never a deadlock.
            found = await (
                Complaint.filter(id__in=list(ids)).order_by("id").select_for_update().using_db(conn)
            )
            due = [c for c in found if self._overdue(c, now)]
            if not due:
                return 0
            citizens = {
                p.id: p
                for p in await Citizen.filter(
                    id__in=list({c.citizen_id for c in due})  # type: ignore[attr-defined]
                ).using_db(conn)
            }
            moves = []
            for c in due:
                move = _Move.of(c, None)
                self._escalate(move, citizens[c.citizen_id], now)  # type: ignore[attr-defined]
                moves.append(move)
            # Each row was read in this transaction and found due, and still is: locked on
            # PostgreSQL; on SQLite a write by another process since the read makes this
            # first write fail (a stale WAL snapshot) rather than match a changed row.
            await update_rows(
                conn,
                Complaint._meta.db_table,
                _CHANGED,
                [(*_db_values(_changes(m.c, now)), m.c.id, m.status.value, m.level) for m in moves],
                key=("id", "status", "level"),
            )
            message_ids = await self._record(moves, conn, actor="system")
        if message_ids:
            await self.dispatcher.dispatch(message_ids)
        for m in moves:
            metrics.escalation(self.config.levels[m.c.level - 1].code)
            log.info(
                "complaint %s: escalate by system -> %s L%d",
                m.c.ticket,
                m.c.status.value,
                m.c.level,
            )
        return len(moves)

    async def _record(
        self, moves: Sequence[_Move], conn: BaseDBAsyncClient, *, actor: str
    ) -> list[int]:
        """Write the messages and events of ``moves`` (their complaints updated already);
        the IDs of the messages to dispatch."""
        ids = await queue_messages(
            [d for m in moves for d in m.messages if d is not None], using_db=conn
        )
        at = datetime.now(UTC)  # as tortoise's auto_now_add: the wall clock, not self.clock
        await insert_rows(
            conn,
            ComplaintEvent._meta.db_table,
            _EVENT_COLUMNS,
            [
                (
                    m.c.id,
                    m.event.value,
                    actor,
                    m.status.value,
                    m.c.status.value,
                    m.remark,
                    m.officer,
                    m.c.level,
                    m.due_at,
                    m.source_key,
                    at,
                )
                for m in moves
            ],
        )
        return ids

    def _assign(self, c: Complaint, now: datetime) -> Officer | None:
        """Give ``c`` the officer and the deadline of its (new) level and area."""
        c.due_at = now + timedelta(days=self.config.levels[c.level - 1].days)
        officer = officer_for(self.config, c)
        c.officer = officer.code if officer else None
        return officer

    def _check_target(self, department: str | None, block: str | None) -> None:
        """:class:`InvalidTransfer` unless the config knows the target, and there is one."""
        if department is None and block is None:
            raise InvalidTransfer("department", "give a department, a block or both")
        if department is not None and self.config.department(department) is None:
            raise InvalidTransfer("department", f"unknown department {department!r}")
        if block is not None and not any(d.tehsil_of(block) for d in self.config.districts):
            raise InvalidTransfer("block", f"unknown block {block!r}")

    def _reassignable(self, c: Complaint, code: str) -> Officer:
        """The config officer ``code``, if they may take ``c`` at its current level."""
        officer = next((o for o in self.config.officers if o.code == code), None)
        if officer is None:
            raise InvalidReassignment("officer", f"no officer {code!r} in the configuration")
        if officer.code == c.officer:
            raise InvalidReassignment("officer", f"{code} has the complaint already")
        why_not = officer_refusal(self.config, officer, c)
        if why_not is not None:
            raise InvalidReassignment("officer", why_not)
        return officer

    async def _count_events(self, c: Complaint, conn: BaseDBAsyncClient) -> int:
        return await ComplaintEvent.filter(complaint_id=c.id).using_db(conn).count()

    def _move_up(
        self, c: Complaint, citizen: Citizen, now: datetime, *, citizen_template: str
    ) -> list[MessageDraft | None]:
        if c.level >= len(self.config.levels):
            c.needs_review = True  # already at the top: the state review takes it
        else:
            c.level += 1
        officer = self._assign(c, now)
        lang = self._sms_language(c, citizen)
        return [
            self._tell_citizen(
                c,
                citizen,
                citizen_template,
                key=f"L{c.level}:{c.due_at.date()}",
                level=self.notices.level(c.level, lang),
                due_date=self.notices.date(lang, c.due_at),
            ),
            self._tell_officer(c, officer, "officer_escalated", f"L{c.level}"),
        ]

    def _transfer(
        self,
        c: Complaint,
        citizen: Citizen,
        now: datetime,
        department: str | None,
        block: str | None,
    ) -> list[MessageDraft | None]:
        cfg = self.config
        if (department or c.department, block or c.block) == (c.department, c.block):
            field_name = "department" if department is not None else "block"
            raise InvalidTransfer(field_name, f"the complaint is with {c.department} in {c.block}")
        if block is not None:
            district = next(d for d in cfg.districts if d.tehsil_of(block))
            tehsil = district.tehsil_of(block)
            assert tehsil is not None
            c.district, c.tehsil, c.block = district.code, tehsil.code, block
        if department is not None:
            c.department = department
        if c.transfers >= cfg.lifecycle.max_transfers:
            # Passed around too often: the district level takes it.
            c.level = max(c.level, district_level(cfg))
        else:
            c.transfers += 1
            c.level = 1
        c.status = S.TRANSFERRED
        officer = self._assign(c, now)
        lang = self._sms_language(c, citizen)
        return [
            self._tell_citizen(
                c,
                citizen,
                "complaint_transferred",
                key=f"T{c.transfers}:L{c.level}",
                department=self.notices.department(c.department, lang),
                due_date=self.notices.date(lang, c.due_at),
            ),
            self._tell_officer(c, officer, "officer_new_complaint", f"T{c.transfers}"),
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
            draft = self._tell_citizen(
                c, citizen, "feedback_reminder", key=f"reminder:{c.resolved_at}"
            )
            ids = await queue_messages([draft] if draft else [], using_db=conn)
        if ids:
            await self.dispatcher.dispatch(ids)
        return True

    def _sms_language(self, c: Complaint, citizen: Citizen) -> str:
        """The language of an SMS to ``citizen`` (Latin letters on a Latin-only handset)."""
        return self.config.sms_language(
            citizen.language or c.language, latin_only=citizen.latin_only, script=citizen.script
        )

    async def citizen_preview(
        self,
        complaint_id: int,
        action: str,
        remark: str = "",
        *,
        department: str | None = None,
        block: str | None = None,
    ) -> RenderedSms | None:
        """The SMS ``action`` (``note``, ``resolve`` or ``transfer``) would send the citizen,
        rendered as the action renders it (their language, their handset's script), from
        the complaint as it is now (nothing is written); None when they would get none
        (opted out). A transfer's target is checked as :meth:`transfer` checks it."""
        c = await Complaint.get(id=complaint_id)
        citizen = await Citizen.get(id=c.citizen_id)  # type: ignore[attr-defined]
        if action == "transfer":
            self._check_target(department, block)
            draft = self._transfer(c, citizen, self.clock(), department, block)[0]
        else:
            template = {"note": "complaint_status_update", "resolve": "complaint_resolved"}
            draft = self._tell_citizen(c, citizen, template[action], remark=remark)
        return draft.sms if draft is not None else None

    def _tell_citizen(
        self, c: Complaint, citizen: Citizen, template: str, *, key: str = "", **values: str
    ) -> MessageDraft | None:
        lang = self._sms_language(c, citizen)
        assert c.ticket is not None
        return self.notices.draft(
            template,
            to=citizen.phone,
            language=lang,
            values={"ticket": c.ticket, **values},
            key=f"complaint:{c.id}:{template}:{key}",
            complaint_id=c.id,
            opted_out=citizen.opted_out,
        )

    def _tell_officer(
        self, c: Complaint, officer: Officer | None, template: str, key: str
    ) -> MessageDraft | None:
        if officer is None:
            log.warning("complaint %s: no officer configured at level %d", c.ticket, c.level)
            return None
        return self.notices.draft_to_officer(c, officer, template, key=key)


@dataclass(slots=True)
class _Move:
    """One complaint's change as decided: what it was before (for the conditional update
    and the event), the event, and the messages to write with it."""

    c: Complaint
    status: ComplaintStatus
    level: int
    officer: str | None
    due_at: datetime
    remark: str | None
    event: EventKind = EventKind.STATUS_CHANGED
    messages: list[MessageDraft | None] = field(default_factory=list)
    source_key: str | None = None

    @classmethod
    def of(cls, c: Complaint, remark: str | None) -> _Move:
        return cls(c, c.status, c.level, c.officer, c.due_at, remark)


_CHANGED = (
    "status",
    "level",
    "due_at",
    "officer",
    "department",
    "district",
    "tehsil",
    "block",
    "transfers",
    "needs_review",
    "resolved_at",
    "reminded_at",
    "closed_at",
    "updated_at",
)
"""The complaint columns an action may change, written back in full."""


_EVENT_COLUMNS = (
    "complaint_id",
    "kind",
    "actor",
    "from_status",
    "to_status",
    "remark",
    "officer",
    "level",
    "due_at",
    "source_key",
    "created_at",
)


def _changes(c: Complaint, now: datetime) -> dict[str, Any]:
    """The new values of :data:`_CHANGED` for ``c``, changed at ``now``."""
    values = {name: getattr(c, name) for name in _CHANGED}
    values["updated_at"] = now
    return values


def _db_values(values: dict[str, Any]) -> list[Any]:
    """``values`` as the driver takes them (an enum as its value)."""
    return [v.value if isinstance(v, enum.Enum) else v for v in values.values()]

"""The application side of the providers' callbacks: what a hop, a session's end, a
delivery report or an inbound SMS leads to."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from redis.exceptions import RedisError
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError, OperationalError
from tortoise.transactions import in_transaction

from gateway.channels.base import (
    DeliveryReport,
    InboundSms,
    MissedCall,
    RetryLater,
    UssdHop,
    UssdReply,
    UssdSessionEnd,
)
from gateway.complaints.inbox import InboundInProgress, Inbox
from gateway.complaints.missed_calls import MissedCalls
from gateway.ops import metrics
from gateway.sms.delivery import SecondChance
from gateway.sms.reports import ReportTooEarly, record_delivery_report
from gateway.storage.db import DATABASE_UNREACHABLE
from gateway.storage.limits import USSD_OUTCOME
from gateway.storage.models import Complaint, UssdSession
from gateway.storage.sql import param
from gateway.ussd.engine import SessionHooks
from gateway.ussd.menu import End

__all__ = ["GatewayCallbacks", "SessionRecorder", "count_failure", "session_hooks"]

log = logging.getLogger(__name__)


def count_failure(exc: BaseException, where: str) -> None:
    """Count ``exc`` as a Redis or a database error seen at ``where``, when it is one."""
    if isinstance(exc, RedisError):
        metrics.redis_error(where)
    elif isinstance(exc, DATABASE_UNREACHABLE | OperationalError):
        metrics.database_error(where)


class UssdHandler(Protocol):
    """What answers a USSD hop (the :class:`~gateway.ussd.engine.UssdEngine`, whatever
    services its menu uses)."""

    async def handle(self, hop: UssdHop) -> UssdReply: ...


class GatewayCallbacks:
    """Implements :class:`gateway.channels.base.Callbacks` for the gateway."""

    def __init__(
        self,
        *,
        engine: UssdHandler,
        apology: str,
        inbox: Inbox,
        second_chance: SecondChance | None = None,
        sessions: SessionRecorder | None = None,
        answer_window: timedelta | None = None,
        missed_calls: MissedCalls | None = None,
    ) -> None:
        """``answer_window``: how long a message whose answer was lost may be settled by a
        report naming only its number (``worker.unknown_answer_retry_minutes``)."""
        self.sessions = sessions
        self.answer_window = answer_window
        self.engine = engine
        self.apology = apology
        self.inbox = inbox
        self.second_chance = second_chance
        self.missed_calls = missed_calls

    async def ussd_hop(self, hop: UssdHop) -> UssdReply:
        started = time.perf_counter()
        try:
            reply = await self.engine.handle(hop)
        except Exception as e:
            # Redis or the database down: close politely rather than answer a 500, which
            # the phone shows as a network error.
            log.exception("ussd hop failed for session %s", hop.session_id)
            count_failure(e, "ussd_hop")
            metrics.ussd_hop(hop.provider, "apology", time.perf_counter() - started)
            return UssdReply(self.apology, end=True)
        outcome = "end" if reply.end else "continue"
        metrics.ussd_hop(hop.provider, outcome, time.perf_counter() - started)
        return reply

    async def ussd_session_ended(self, end: UssdSessionEnd) -> None:
        if self.sessions is not None:
            await self.sessions.flush()  # the session's row, if still waiting to be written
        fields: dict[str, Any] = {
            "ended_at": datetime.now(UTC),
            "end_status": end.status,
            "duration_ms": end.duration_ms,
            "hops": end.hops,
            "last_input": end.last_input,
            "last_response": end.last_response,
            "error_message": end.error_message,
            "cost": end.cost,
        }
        updated = await UssdSession.filter(session_id=end.session_id).update(**fields)
        if updated:
            return
        # A notice for a session we never saw (it ended before reaching us, or was purged).
        try:
            await UssdSession.create(
                session_id=end.session_id,
                phone=end.phone or "",
                service_code=end.service_code or "",
                network_code=end.network_code,
                **fields,
            )
        except IntegrityError:
            await UssdSession.filter(session_id=end.session_id).update(**fields)

    async def delivery_report(self, report: DeliveryReport) -> None:
        metrics.delivery_report(report.provider, report.state.value)
        try:
            found = await record_delivery_report(
                report, second_chance=self.second_chance, answer_window=self.answer_window
            )
        except ReportTooEarly as exc:
            raise RetryLater(str(exc)) from None
        if not found:
            log.info(
                "delivery report for unknown message %s (%s) acknowledged",
                report.provider_message_id,
                report.provider_status,
            )

    async def inbound_sms(self, sms: InboundSms) -> None:
        try:
            await self.inbox.receive(sms)
        except InboundInProgress as exc:
            raise RetryLater(str(exc)) from None

    async def missed_call(self, call: MissedCall) -> None:
        if self.missed_calls is None:
            log.warning("missed call %s not handled: no missed-call service", call.call_id)
            return
        await self.missed_calls.receive(call)


class SessionRecorder:
    """Writes the rows of USSD sessions, a few at a time: one when a session starts, its
    outcome when it ends.

    A hop answers without waiting for its session's row: what the sessions started or
    ended within ``delay`` seconds is written together, in one transaction, after the
    screens went out. On SQLite every transaction waits for the disk, and one per session
    start (and another per end, before the last screen) was the largest cost of those hops.
    Whatever reads or updates a session's row calls :meth:`flush` first; a crash loses at
    most the last ``delay`` of these records (the session's record, never anything the
    citizen did: the complaint is written before its END screen).
    """

    def __init__(self, *, delay: float = 0.05) -> None:
        self.delay = delay
        self._pending: dict[str, UssdSession] = {}
        self._ends: dict[str, tuple[str, str | None, datetime]] = {}
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self.set_aside = 0
        """Records the database refused, since start (each logged)."""

    def started(self, hop: UssdHop, language: str) -> None:
        self._pending.setdefault(
            hop.session_id,
            UssdSession(
                session_id=hop.session_id,
                phone=hop.phone,
                service_code=hop.service_code,
                network_code=hop.network_code or None,
                language=language,
                started_at=datetime.now(UTC),
            ),
        )
        self._soon()

    def ended(self, hop: UssdHop, end: End) -> None:
        """Record how the session ended (and the complaint it registered, by its ticket)."""
        self._ends[hop.session_id] = (
            end.outcome[:USSD_OUTCOME],
            end.reference,
            datetime.now(UTC),
        )
        self._soon()

    def _soon(self) -> None:
        if self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_later(), name="ussd-session-rows")

    async def _flush_later(self) -> None:
        # Until nothing waits: what arrives while a flush is writing goes in the next one.
        while True:
            await asyncio.sleep(self.delay)
            await self.flush()
            if not self._pending and not self._ends:
                return

    async def flush(self) -> None:
        """Write everything waiting; returns once what is already being written is written.

        What the database refuses as a batch is written one record at a time, so a record
        it cannot take (which the callbacks' checks should make impossible) is set aside,
        counted in :attr:`set_aside` and logged once per flush, and takes no other with it.
        """
        async with self._lock:
            rows, self._pending = list(self._pending.values()), {}
            ends, self._ends = self._ends, {}
            if not rows and not ends:
                return
            try:
                async with in_transaction() as conn:
                    # A row may exist already: the session's state expired from Redis, not
                    # its row.
                    if rows:
                        await UssdSession.bulk_create(rows, ignore_conflicts=True, using_db=conn)
                    if ends:
                        await self._write_ends(conn, ends)
            except Exception:
                await self._write_one_by_one(rows, ends)

    async def _write_one_by_one(
        self, rows: list[UssdSession], ends: dict[str, tuple[str, str | None, datetime]]
    ) -> None:
        refused: list[tuple[str, Exception]] = []
        for row in rows:
            try:
                await UssdSession.bulk_create([row], ignore_conflicts=True)
            except Exception as e:
                refused.append((row.session_id, e))
        for session_id, end in ends.items():
            try:
                await self._write_ends(get_connection("default"), {session_id: end})
            except Exception as e:
                refused.append((session_id, e))
        if not refused:
            return
        self.set_aside += len(refused)
        error = refused[0][1]
        # The error's first clause names the column (tortoise: "service_code: Length of
        # ..."); the rest may quote the value, which may be anything.
        log.error(
            "ussd session records set aside: the database refused %d of %d (%s: %r); sessions %s",
            len(refused),
            len(rows) + len(ends),
            type(error).__name__,
            str(error).split(":", 1)[0][:80],
            ", ".join(repr(session_id[:40]) for session_id, _ in refused[:5]),
        )

    @staticmethod
    async def _write_ends(
        conn: BaseDBAsyncClient, ends: dict[str, tuple[str, str | None, datetime]]
    ) -> None:
        p = [param(conn, i) for i in range(1, 5)]
        await conn.execute_many(
            f'UPDATE "{UssdSession._meta.db_table}" SET "outcome" = {p[0]}, '
            f'"complaint_id" = (SELECT "id" FROM "{Complaint._meta.db_table}" '
            f'WHERE "ticket" = {p[1]}), "ended_at" = {p[2]} WHERE "session_id" = {p[3]}',
            [[outcome, ticket, at, sid] for sid, (outcome, ticket, at) in ends.items()],
        )

    async def close(self) -> None:
        """Write what is waiting (at shutdown)."""
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
            with suppress(asyncio.CancelledError):
                await self._timer
        await self.flush()


def session_hooks(recorder: SessionRecorder) -> SessionHooks:
    """Record USSD sessions in the database: one row when one starts, its outcome when it
    ends (both written by ``recorder``, a few sessions at a time)."""

    async def started(hop: UssdHop, language: str) -> None:
        recorder.started(hop, language)
        metrics.session_started(hop.provider)

    async def ended(hop: UssdHop, end: End) -> None:
        recorder.ended(hop, end)
        metrics.session_completed(hop.provider, end.outcome[:USSD_OUTCOME])

    return SessionHooks(started=started, ended=ended)

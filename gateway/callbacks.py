"""The application side of the providers' callbacks: what a hop, a session's end, a
delivery report or an inbound SMS leads to."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError

from gateway.inbox import Inbox
from gateway.models import Complaint, UssdSession
from gateway.outbox import SecondChance, record_delivery_report
from gateway.providers.base import (
    DeliveryReport,
    InboundSms,
    UssdHop,
    UssdReply,
    UssdSessionEnd,
)
from gateway.ussd.engine import SessionHooks, UssdEngine
from gateway.ussd.menu import End

__all__ = ["GatewayCallbacks", "SessionRecorder", "session_hooks"]

log = logging.getLogger(__name__)


class GatewayCallbacks:
    """Implements :class:`gateway.providers.base.Callbacks` for the gateway."""

    def __init__(
        self,
        *,
        engine: UssdEngine,
        apology: str,
        inbox: Inbox,
        second_chance: SecondChance | None = None,
        sessions: SessionRecorder | None = None,
    ) -> None:
        self.sessions = sessions
        self.engine = engine
        self.apology = apology
        self.inbox = inbox
        self.second_chance = second_chance

    async def ussd_hop(self, hop: UssdHop) -> UssdReply:
        try:
            return await self.engine.handle(hop)
        except Exception:
            # Redis or the database down: close politely rather than answer a 500, which
            # the phone shows as a network error.
            log.exception("ussd hop failed for session %s", hop.session_id)
            return UssdReply(self.apology, end=True)

    async def ussd_session_ended(self, end: UssdSessionEnd) -> None:
        if self.sessions is not None:
            await self.sessions.flush()  # the session's row, if still waiting to be written
        fields: dict[str, Any] = {
            "ended_at": datetime.now(UTC),
            "end_status": end.status[:30],
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
        found = await record_delivery_report(report, second_chance=self.second_chance)
        if not found:
            log.info(
                "delivery report for unknown message %s (%s) acknowledged",
                report.provider_message_id,
                report.provider_status,
            )

    async def inbound_sms(self, sms: InboundSms) -> None:
        await self.inbox.receive(sms, provider="africastalking")


class SessionRecorder:
    """Writes the row of each USSD session that starts, a few at a time.

    A session's first hop answers without waiting for its row: the rows of the sessions
    started within ``delay`` seconds are written together, in one transaction, after the
    screens went out. On SQLite every transaction waits for the disk, and one per session
    start was the largest cost of a first hop. Whatever reads or updates a session's row
    calls :meth:`flush` first; a crash loses at most the last ``delay`` of starts (the
    session's record, never anything the citizen did).
    """

    def __init__(self, *, delay: float = 0.05) -> None:
        self.delay = delay
        self._pending: dict[str, UssdSession] = {}
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None

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
        if self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_later(), name="ussd-session-rows")

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.delay)
        await self.flush()

    async def flush(self) -> None:
        """Write every row waiting; returns once those already being written are written."""
        async with self._lock:
            rows, self._pending = list(self._pending.values()), {}
            if not rows:
                return
            try:
                # A row may exist already: the session's state expired from Redis, not its row.
                await UssdSession.bulk_create(rows, ignore_conflicts=True)
            except Exception:
                log.exception("recording the start of %d ussd sessions failed", len(rows))

    async def close(self) -> None:
        """Write what is waiting (at shutdown)."""
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
            with suppress(asyncio.CancelledError):
                await self._timer
        await self.flush()


def session_hooks(recorder: SessionRecorder) -> SessionHooks:
    """Record USSD sessions in the database: one row when one starts (written by
    ``recorder``, a few sessions at a time), its outcome when it ends."""

    async def started(hop: UssdHop, language: str) -> None:
        recorder.started(hop, language)

    async def ended(hop: UssdHop, end: End) -> None:
        await recorder.flush()
        complaint_id = None
        if end.reference is not None:
            complaint_id = await Complaint.filter(ticket=end.reference).values_list("id", flat=True)
        await UssdSession.filter(session_id=hop.session_id).update(
            outcome=end.outcome[:30],
            complaint_id=complaint_id[0] if complaint_id else None,
            ended_at=datetime.now(UTC),
        )

    return SessionHooks(started=started, ended=ended)

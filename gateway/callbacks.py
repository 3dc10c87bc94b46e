"""The application side of the providers' callbacks: what a hop, a session's end, a
delivery report or an inbound SMS leads to."""

from __future__ import annotations

import logging
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

__all__ = ["GatewayCallbacks", "session_hooks"]

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
    ) -> None:
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


def session_hooks() -> SessionHooks:
    """Record USSD sessions in the database: one row when one starts, its outcome when it ends."""

    async def started(hop: UssdHop, language: str) -> None:
        try:
            await UssdSession.create(
                session_id=hop.session_id,
                phone=hop.phone,
                service_code=hop.service_code,
                network_code=hop.network_code or None,
                language=language,
            )
        except IntegrityError:
            pass  # the session's state expired from Redis, but its row exists

    async def ended(hop: UssdHop, end: End) -> None:
        complaint_id = None
        if end.reference is not None:
            complaint_id = await Complaint.filter(ticket=end.reference).values_list("id", flat=True)
        await UssdSession.filter(session_id=hop.session_id).update(
            outcome=end.outcome[:30],
            complaint_id=complaint_id[0] if complaint_id else None,
            ended_at=datetime.now(UTC),
        )

    return SessionHooks(started=started, ended=ended)

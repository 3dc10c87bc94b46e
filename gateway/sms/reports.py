"""Delivery reports: what the provider says became of a message after it took it.

Reports move a message forward only, and settle a message whose send's answer was lost
(:mod:`gateway.sms.unanswered`): the report names its number, not our message.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from gateway.channels.base import DeliveryReport, DeliveryState
from gateway.sms.delivery import SecondChance, after_final_failure, mark_opted_out
from gateway.storage.models import MessageStatus, OutboundMessage
from gateway.text.phone import mask_phone

__all__ = ["ReportTooEarly", "adopt_unanswered", "record_delivery_report"]

log = logging.getLogger(__name__)


class ReportTooEarly(Exception):
    """A delivery report whose ID is none of ours, to a number with a send still waiting
    for its answer: it may be that send's. Take it again later (a callback answers 503)."""


async def record_delivery_report(
    report: DeliveryReport,
    *,
    second_chance: SecondChance | None = None,
    answer_window: timedelta | None = None,
    now: datetime | None = None,
) -> bool:
    """Apply a provider's delivery report; False when no message has that ID.

    Reports move a message forward only: a late in-flight report never undoes a final
    state, and a failure report counts only for a message in flight (a repeated one, or
    one arriving after its second chance was scheduled, changes nothing). A delivery
    report always wins: the citizen has the message.

    A report whose ID is unknown (the send's answer, which held it, was lost) settles a
    message to its number in "unknown" state sent within ``answer_window``
    (:func:`adopt_unanswered`). One that comes while a send to its number still waits for
    its answer raises :class:`ReportTooEarly`: the provider delivered, and reported, before
    the gateway had its answer (or gave up on it), and the report, sent again, will find
    the message by its ID or "unknown". Dropped, it would leave that message to be sent
    a second time after the wait.
    """
    msg = await OutboundMessage.filter(provider_message_id=report.provider_message_id).first()
    if msg is None and answer_window is not None:
        msg = await adopt_unanswered(report, window=answer_window, now=now)
        if msg is None and await _send_in_flight(report.phone):
            raise ReportTooEarly(f"a send to {mask_phone(report.phone)} awaits its answer")
    if msg is None:
        return False
    if report.state is DeliveryState.IN_FLIGHT:
        if not msg.status.is_final:
            await OutboundMessage.filter(id=msg.id).update(provider_status=report.provider_status)
        return True
    if report.state is DeliveryState.DELIVERED:
        await (
            OutboundMessage.filter(id=msg.id)
            .exclude(status=MessageStatus.DELIVERED)
            .update(
                status=MessageStatus.DELIVERED,
                provider_status=report.provider_status,
                delivered_at=datetime.now(UTC),
            )
        )
        return True
    failed = await OutboundMessage.filter(id=msg.id, status=MessageStatus.SENT).update(
        status=MessageStatus.FAILED,
        provider_status=report.provider_status,
        last_error=report.failure_reason or report.provider_status,
    )
    if failed:
        if report.opted_out:
            await mark_opted_out([msg.recipient])
        await after_final_failure(msg.id, second_chance)
    return True


async def _send_in_flight(phone: str | None) -> bool:
    """Whether a message to ``phone`` is being sent (claimed, its answer not recorded)."""
    if phone is None:
        return False
    return await OutboundMessage.filter(recipient=phone, status=MessageStatus.SENDING).exists()


async def adopt_unanswered(
    report: DeliveryReport, *, window: timedelta, now: datetime | None = None
) -> OutboundMessage | None:
    """The "unknown" message a report whose ID matches none of ours is for: given that ID
    and moved to "sent" (the provider had it). None when there is none.

    AT's report names the number, not our message: it goes to the oldest message to that
    number whose answer was lost within ``window``. Two such messages to one number are
    told apart by order only: AT reports in the order it took them, and the second
    report's new ID goes to the second message. Later reports find the message by the ID.
    """
    if report.phone is None:
        return None
    now = now or datetime.now(UTC)
    for _ in range(3):  # a concurrent report for the same ID may adopt first
        candidate = (
            await OutboundMessage.filter(
                recipient=report.phone, status=MessageStatus.UNKNOWN, sent_at__gte=now - window
            )
            .order_by("sent_at", "id")
            .first()
        )
        if candidate is None:
            return None
        adopted = await OutboundMessage.filter(
            id=candidate.id, status=MessageStatus.UNKNOWN
        ).update(
            status=MessageStatus.SENT,
            provider_message_id=report.provider_message_id,
            provider_status=report.provider_status,
        )
        if adopted:
            log.info(
                "message %s to %s: answer lost, settled by a delivery report",
                candidate.id,
                mask_phone(report.phone),
            )
            return await OutboundMessage.get(id=candidate.id)
        mine = await OutboundMessage.filter(provider_message_id=report.provider_message_id).first()
        if mine is not None:
            return mine
    return None

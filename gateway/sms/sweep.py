"""The sweep: messages that should be moving and are not, handed to the worker again.

What counts as stranded is :func:`stranded_messages`'s; :func:`requeue_stranded` decides
which job each one gets, so that a job ID still held in Redis never hides one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from tortoise.expressions import Q

from gateway.sms.delivery import STALE_SENDING
from gateway.sms.unanswered import retry_unanswered
from gateway.storage.models import MessageStatus, OutboundMessage

__all__ = [
    "STRANDED_GRACE",
    "STUCK_AFTER",
    "StrandedMessage",
    "TaggedDispatcher",
    "requeue_stranded",
    "resend_lost",
    "stranded_messages",
]

log = logging.getLogger(__name__)

STUCK_AFTER = timedelta(minutes=10)
"""A message still queued this long after it was written has no job that will run: its
job ID is held by a job or result of another database's message with the same ID (a
Redis that outlived its database: the database restored, or ``var/gateway.db`` deleted
while the embedded Redis kept its jobs). Far beyond any queue's wait at this worker's rate."""

STRANDED_GRACE = timedelta(seconds=30)
"""How late a queued message or a due retry may be before the sweep queues it again."""


class TaggedDispatcher(Protocol):
    """Hands messages to the worker; with ``tag``, under job IDs of their own (a message's
    plain job ID may be held by a job or a result Redis still keeps)."""

    async def dispatch(self, message_ids: Sequence[int], *, tag: str | None = None) -> None: ...

    async def started(self, message_ids: Sequence[int]) -> list[int]:
        """Those of ``message_ids`` whose job a worker has started (and may have left)."""
        ...


async def requeue_stranded(
    dispatcher: TaggedDispatcher, *, grace: timedelta = STRANDED_GRACE, lease: timedelta
) -> int:
    """Queue again every message that should be moving and is not: written but never
    queued (the process stopped between the two), a retry whose job was lost with Redis, a
    send whose worker died. The row lets one delivery send each, however many jobs there
    are. Returns how many were found."""
    stranded = await stranded_messages(grace=grace, lease=lease)
    now = datetime.now(UTC)
    queued = [m.id for m in stranded if m.status is MessageStatus.QUEUED]
    if queued:
        log.warning("re-queueing %d stranded message(s)", len(queued))
        await dispatcher.dispatch(queued)
    # A job started by a worker that died before the job claimed its message: arq holds
    # the job ID "in progress" for ten minutes (the longest job's timeout). A job of its
    # own now; were the worker alive and about to claim, one of the two finds it sent.
    left = await dispatcher.started(queued)
    if left:
        log.warning("%d queued message(s) whose job a worker started and left", len(left))
        await dispatcher.dispatch(left, tag=f"left{int(now.timestamp())}")
    # Their plain job IDs are taken (by the retry's job, the dead worker's, or a result
    # kept), or may be: job IDs of their own.
    late = [m.id for m in stranded if m.status is not MessageStatus.QUEUED]
    if late:
        log.warning("re-queueing %d message(s) past their retry or lease", len(late))
        await dispatcher.dispatch(late, tag=f"late{int(now.timestamp())}")
    stuck = [
        m.id for m in stranded if m.status is MessageStatus.QUEUED and m.since < now - STUCK_AFTER
    ]
    if stuck:
        log.warning("%d message(s) queued for over %s: new job IDs", len(stuck), STUCK_AFTER)
        await dispatcher.dispatch(stuck, tag=f"stuck{int(now.timestamp())}")
    return len(stranded)


async def resend_lost(
    dispatcher: TaggedDispatcher, *, wait: timedelta, now: datetime | None = None
) -> int:
    """Send once more the messages whose answer was lost and that no delivery report
    settled within ``wait`` (a campaign's runner resends its own); how many."""
    ids = await retry_unanswered(wait=wait, now=now)
    if ids:
        log.warning("%d message(s) with a lost answer and no report: sending once more", len(ids))
        # A job ID of their own: the first send's job result may still be kept.
        await dispatcher.dispatch(ids, tag="unanswered")
    return len(ids)


@dataclass(frozen=True, slots=True)
class StrandedMessage:
    """A message that should be moving and is not (see :func:`stranded_messages`)."""

    id: int
    status: MessageStatus
    since: datetime
    """When it should have moved: written (queued), due again (retrying), or its claim's
    lease over (sending)."""


async def stranded_messages(
    *, grace: timedelta, lease: timedelta = STALE_SENDING, limit: int = 500
) -> list[StrandedMessage]:
    """Messages no job is moving, oldest first: queued more than ``grace`` ago (a crash
    between commit and enqueue), retrying more than ``grace`` past their due time (the
    job that was to retry them lost with Redis), and sending past their ``lease`` (the
    worker died mid-send).

    A campaign's messages are not among them: the campaign's own job sends them, at its
    rate and only while the campaign is sending."""
    now = datetime.now(UTC)
    cutoff = now - grace
    rows = await (
        OutboundMessage.filter(campaign_id__isnull=True)
        .filter(
            Q(status=MessageStatus.QUEUED, created_at__lt=cutoff)
            | Q(status=MessageStatus.RETRYING, next_attempt_at__lt=cutoff)
            | Q(status=MessageStatus.SENDING, updated_at__lt=now - lease)
        )
        .order_by("id")
        .limit(limit)
        .values_list("id", "status", "created_at", "next_attempt_at", "updated_at")
    )
    stranded = []
    for message_id, status, written, due, claimed in rows:
        state = MessageStatus(status)
        when = {
            MessageStatus.QUEUED: written,
            MessageStatus.RETRYING: due,
            MessageStatus.SENDING: claimed + lease,
        }[state]
        stranded.append(StrandedMessage(int(str(message_id)), state, when))
    return stranded

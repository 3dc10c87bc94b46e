"""Messages whose answer was lost: never sent again blindly.

A send whose answer was lost (the provider may have taken it) becomes "unknown" (sent,
answer unknown). A delivery report to its number settles it
(:func:`~gateway.sms.reports.adopt_unanswered`); with none after a wait it is sent once
more (:func:`retry_unanswered`), the one place a message may reach a phone twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.expressions import F, Q

from gateway.storage.models import MessageStatus, OutboundMessage
from gateway.storage.sql import param

__all__ = [
    "UNANSWERED_RETRIES",
    "awaiting_answer",
    "next_unanswered_retry",
    "record_unanswered",
    "retry_unanswered",
]

UNANSWERED_RETRIES = 1
"""How often a message whose answer was lost is sent again when no delivery report came:
once. Lost again, it stays "unknown" for good (a report may still settle it)."""


def awaiting_answer() -> Q:
    """Messages whose answer was lost and that a report or one more try will still settle."""
    return Q(status=MessageStatus.UNKNOWN, lost_answers__lte=UNANSWERED_RETRIES)


async def retry_unanswered(
    *,
    wait: timedelta,
    now: datetime | None = None,
    campaign_id: int | None = None,
    limit: int = 500,
) -> list[int]:
    """Messages whose answer was lost over ``wait`` ago, with no delivery report since:
    moved to "retrying" for their one more try (:data:`UNANSWERED_RETRIES`); their IDs.

    With ``campaign_id``, that campaign's messages (its runner sends them, at its rate);
    without, the messages of no campaign (the caller dispatches them). This is where
    at-least-once remains: a send whose answer was lost and whose report never came (or
    comes later) may have reached the phone, and this sends it again.
    """
    now = now or datetime.now(UTC)
    due = OutboundMessage.filter(awaiting_answer(), sent_at__lt=now - wait)
    if campaign_id is None:
        due = due.filter(campaign_id__isnull=True)
    else:
        due = due.filter(campaign_id=campaign_id)
    ids = [int(str(i)) for i in await due.order_by("id").limit(limit).values_list("id", flat=True)]
    if not ids:
        return []
    conn = get_connection("default")
    marks = ", ".join(param(conn, i) for i in range(4, 4 + len(ids)))
    # Still unknown: a report that came meanwhile, or another sweep, has moved it on. Due
    # now: if its job is lost before it runs, the stranded-message sweep takes it.
    rows = await conn.execute_query_dict(
        f'UPDATE "{OutboundMessage._meta.db_table}" '
        f'SET "status" = {param(conn, 1)}, "updated_at" = {param(conn, 2)}, '
        f'"next_attempt_at" = {param(conn, 2)} '
        f'WHERE "status" = {param(conn, 3)} AND "id" IN ({marks}) RETURNING "id"',
        [MessageStatus.RETRYING.value, now, MessageStatus.UNKNOWN.value, *ids],
    )
    return sorted(int(r["id"]) for r in rows)


async def next_unanswered_retry(*, wait: timedelta, campaign_id: int) -> datetime | None:
    """When the campaign's first message awaiting its answer is due for its one more
    try; None when none awaits."""
    first = (
        await OutboundMessage.filter(awaiting_answer(), campaign_id=campaign_id)
        .order_by("sent_at")
        .limit(1)
        .values_list("sent_at", flat=True)
    )
    return first[0] + wait if first and isinstance(first[0], datetime) else None


async def record_unanswered(
    conn: BaseDBAsyncClient, message_ids: Sequence[int], *, how: str, at: datetime
) -> None:
    """Mark messages whose request's answer was lost ``how``: "unknown" (sent, answer
    unknown), ``sent_at`` the time ``at`` the request was made, no provider ID (an earlier
    send's would catch this one's reports). Not retried now: see
    :func:`~gateway.sms.unanswered.retry_unanswered`."""
    if not message_ids:
        return
    await (
        OutboundMessage.filter(id__in=list(message_ids))
        .using_db(conn)
        .update(
            status=MessageStatus.UNKNOWN,
            sent_at=at,
            provider_message_id=None,
            last_error=f"answer lost: {how}",
            lost_answers=F("lost_answers") + 1,
        )
    )

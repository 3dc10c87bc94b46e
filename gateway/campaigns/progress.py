"""A campaign's progress: its messages counted by status, and the states they count in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.expressions import Q
from tortoise.functions import Count

from gateway.campaigns.quiet_hours import in_quiet_hours
from gateway.config import Config
from gateway.ops import metrics
from gateway.storage.models import Campaign, CampaignStatus, MessageStatus, OutboundMessage

__all__ = [
    "CANCELLED_REASON",
    "CLAIMABLE",
    "DONE_CURSOR",
    "PENDING",
    "Progress",
    "fail_unsent",
    "left_to_send",
    "progress",
]

DONE_CURSOR = "done"
"""``Campaign.cursor`` once every recipient is written."""
CLAIMABLE = (MessageStatus.QUEUED, MessageStatus.RETRYING)
"""A campaign's messages not yet handed to the provider, that no runner holds."""
PENDING = (MessageStatus.QUEUED, MessageStatus.RETRYING, MessageStatus.SENDING)
"""A campaign's messages still to be sent (counted "queued")."""
CANCELLED_REASON = "campaign cancelled"
"""The ``last_error`` of the messages a cancel failed (counted "cancelled", not "failed")."""


@dataclass(frozen=True)
class Progress:
    status: str
    expected: int
    """The audience size the preview counted (when the campaign was last previewed)."""
    recipients: int
    """Messages written so far (all of them once ``written`` is True)."""
    written: bool
    queued: int
    sent: int
    delivered: int
    failed: int
    cancelled: int
    skipped: int
    unknown: int = 0
    """Handed to the provider, its answer lost: a delivery report or one more try settles it."""
    waiting_until: datetime | None = None
    """Sending, but held by quiet hours until then."""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["all_written"] = data.pop("written")
        data["waiting_until"] = self.waiting_until.isoformat() if self.waiting_until else None
        return data


async def progress(
    campaign: Campaign, *, config: Config | None = None, now: datetime | None = None
) -> Progress:
    """Counts by message status (from the outbox rows, by the index on campaign, status).

    With ``config`` and ``now``, a sending campaign held by quiet hours says until when.
    """
    await campaign.refresh_from_db()
    counts = await _status_counts(campaign.id)
    cancelled = await OutboundMessage.filter(
        campaign_id=campaign.id, status=MessageStatus.FAILED, last_error=CANCELLED_REASON
    ).count()
    return Progress(
        status=campaign.status.value,
        expected=campaign.recipients_total,
        recipients=sum(counts.values()),
        written=campaign.cursor == DONE_CURSOR,
        queued=sum(counts.get(s.value, 0) for s in PENDING),
        sent=counts.get(MessageStatus.SENT.value, 0),
        delivered=counts.get(MessageStatus.DELIVERED.value, 0),
        failed=counts.get(MessageStatus.FAILED.value, 0) - cancelled,
        cancelled=cancelled,
        skipped=campaign.skipped,
        unknown=counts.get(MessageStatus.UNKNOWN.value, 0),
        waiting_until=_held_until(campaign, config, now),
    )


async def fail_unsent(campaign_id: int, *, provider: str, held: Sequence[int] = ()) -> int:
    """What a cancel does to a campaign's messages not yet handed to the provider (and to
    ``held``: those its own runner wrote but has not sent): failed, ``campaign
    cancelled``, counted as cancelled; how many. What was sent stays sent."""
    unsent = Q(status__in=list(CLAIMABLE))
    if held:
        unsent |= Q(id__in=list(held), status=MessageStatus.SENDING)
    cancelled = await OutboundMessage.filter(unsent, campaign_id=campaign_id).update(
        status=MessageStatus.FAILED, last_error=CANCELLED_REASON
    )
    metrics.campaign_recipients(provider, "cancelled", cancelled)
    return cancelled


async def left_to_send() -> dict[int, int]:
    """Each sending campaign's recipients not yet handed to the provider, by campaign ID:
    its messages still to be sent, and while its audience is still being written, the
    recipients its preview counted that have no message yet."""
    left: dict[int, int] = {}
    sending = await Campaign.filter(status=CampaignStatus.SENDING).values_list(
        "id", "recipients_total", "cursor"
    )
    for campaign_id, expected, cursor in sending:
        counts = await _status_counts(int(str(campaign_id)))
        n = sum(counts.get(s.value, 0) for s in PENDING)
        if cursor != DONE_CURSOR:
            n += max(0, int(str(expected)) - sum(counts.values()))
        left[int(str(campaign_id))] = n
    return left


async def _status_counts(campaign_id: int) -> dict[str, int]:
    """A campaign's messages by status: one grouped count (the index on campaign, status)."""
    rows = (
        await OutboundMessage.filter(campaign_id=campaign_id)
        .annotate(n=Count("id"))
        .group_by("status")
        .values("status", "n")
    )
    return {str(r["status"]): int(r["n"]) for r in rows}


def _held_until(campaign: Campaign, config: Config | None, now: datetime | None) -> datetime | None:
    """When quiet hours hold a sending campaign: their end, in the service's time zone."""
    if config is None or now is None or campaign.status is not CampaignStatus.SENDING:
        return None
    end = in_quiet_hours(config, now)
    return end.astimezone(ZoneInfo(config.service.timezone)) if end is not None else None

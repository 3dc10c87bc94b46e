"""Quiet hours: when no campaign sends (``bulk.quiet_hours``, in the service's time zone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.config import Config

__all__ = ["in_quiet_hours"]


def in_quiet_hours(config: Config, now: datetime) -> datetime | None:
    """When quiet hours hold at ``now``, the moment they end (aware); else None."""
    quiet = config.bulk.quiet_hours
    if quiet is None or quiet.start == quiet.end:
        return None
    tz = ZoneInfo(config.service.timezone)
    local = now.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        inside = quiet.start <= t < quiet.end
    else:
        inside = t >= quiet.start or t < quiet.end
    if not inside:
        return None
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(UTC)

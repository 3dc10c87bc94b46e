"""Keeping under Exotel's rate (200 SMS API requests a minute per account), in requests and
in segments, and honouring a 429's ``Retry-After``.

Two token buckets, each holding five seconds' worth, so that no minute carries more than
``per_minute * 13 / 12`` of either (195 requests at the default 180). A request takes its
tokens at once and waits until the buckets are out of debt; a ``Retry-After`` holds every
request until it has passed. A wait longer than ``max_wait`` is not waited: the send is not
made (:class:`Busy`), and the gateway tries it again later, as for any transient failure,
so that no job sits out a long pause holding its message.

The buckets are this process's: the gateway sends from one worker process (the server's
embedded one, or ``python -m gateway worker``); with several, divide the rates among them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["Busy", "Pacer", "retry_after_seconds"]


class Busy(Exception):
    """The next turn is further away than a send may wait."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"Exotel's rate: the next turn is in {wait:.1f} s")
        self.wait = wait


class _Bucket:
    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 12.0)
        self.tokens = self.capacity
        self.at: float | None = None

    def wait_for(self, wanted: float, now: float) -> float:
        """Seconds until ``wanted`` tokens could be taken (refilling to ``now`` first)."""
        if self.at is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        short = wanted - self.tokens
        return 0.0 if short <= 0 else short / self.rate

    def take(self, wanted: float) -> None:
        self.tokens -= wanted


class Pacer:
    """Turns to send, at most ``requests_per_minute`` and ``segments_per_minute``."""

    def __init__(
        self,
        *,
        requests_per_minute: float,
        segments_per_minute: float,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.requests = _Bucket(requests_per_minute)
        self.segments = _Bucket(segments_per_minute)
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep
        self.held_until = 0.0

    async def turn(self, segments: int) -> None:
        """Wait for the turn of one request carrying ``segments``; raises :class:`Busy`
        (taking nothing) when it is more than ``max_wait`` away."""
        now = self.clock()
        wait = max(
            self.held_until - now,
            self.requests.wait_for(1, now),
            self.segments.wait_for(segments, now),
        )
        if wait > self.max_wait:
            raise Busy(wait)
        # Taken before waiting, in the same step as the check: the next caller queues
        # behind this one.
        self.requests.take(1)
        self.segments.take(segments)
        if wait > 0:
            await self.sleep(wait)

    def hold(self, seconds: float) -> None:
        """No request for ``seconds`` from now (a 429's ``Retry-After``)."""
        self.held_until = max(self.held_until, self.clock() + seconds)


def retry_after_seconds(value: str | None, *, default: float) -> float:
    """A ``Retry-After`` header's seconds (a number or an HTTP date), ``default`` when
    absent or unreadable; never negative."""
    if not value:
        return default
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())

"""The bulk rate limiter against the real Redis, on a clock the test moves (passed to the
script), with the waits the script answers: nothing here sleeps or times anything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.campaigns.runner import RateLimiter


class Seconds:
    """The limiter's clock, moved by hand."""

    def __init__(self, t: float = 1_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


def limiter(redis: Any, clock: Seconds, per_second: float) -> RateLimiter:
    return RateLimiter(redis, provider="africastalking", per_second=per_second, clock=clock)


async def sends(bucket: RateLimiter, clock: Seconds, asks: list[tuple[float, int]]) -> list[float]:
    """Each (time, segments) asked in order; when each may be sent."""
    out = []
    for at, segments in asks:
        clock.t = at
        out.append(at + await bucket.reserve(segments))
    return out


def most_in_any(window: float, sent: list[tuple[float, int]]) -> int:
    """The most segments sent in any ``window`` seconds (windows starting at a send)."""
    return max(sum(n for t, n in sent if start <= t < start + window) for start, _ in sent)


async def test_no_burst_above_capacity_at_a_window_edge(redis: Redis) -> None:
    clock = Seconds()
    bucket = limiter(redis, clock, 10)
    # The whole capacity just before a second turns and again just after: a fixed
    # one-second window let both through (20 in 2 ms); the second waits for the refill.
    clock.t = 1_000.999
    assert await bucket.reserve(10) == 0
    clock.t = 1_001.001
    assert await bucket.reserve(10) == pytest.approx(0.998, abs=1e-5)


async def test_a_steady_sender_never_exceeds_the_rate_beyond_the_capacity(redis: Redis) -> None:
    clock = Seconds()
    bucket = limiter(redis, clock, 10)
    # Asking for 3 segments every 0.1 s (30 a second) for 10 s.
    asks = [(1_000 + i / 10, 3) for i in range(100)]
    times = await sends(bucket, clock, asks)
    sent = [(t, 3) for t in times]
    assert most_in_any(1.0, sent) <= 10 + 10 * 1.0
    assert most_in_any(5.0, sent) <= 10 + 10 * 5.0
    # 300 segments at 10 a second, the first 10 at once: the last leaves at 29 s.
    assert times[-1] - 1_000 == pytest.approx(29.0, abs=1e-5)


async def test_a_fractional_rate_is_honoured(redis: Redis) -> None:
    clock = Seconds()
    bucket = limiter(redis, clock, 0.5)  # a segment every two seconds, not one a second
    times = await sends(bucket, clock, [(1_000, 1)] * 5)
    assert [t - 1_000 for t in times] == pytest.approx([0, 2, 4, 6, 8], abs=1e-5)
    # Idle for a minute: the bucket holds its capacity (one segment), no more.
    later = await sends(bucket, clock, [(1_068, 1), (1_068, 1)])
    assert [t - 1_068 for t in later] == pytest.approx([0, 2], abs=1e-5)


async def test_a_request_larger_than_the_capacity_does_not_pass_free(redis: Redis) -> None:
    clock = Seconds()
    bucket = limiter(redis, clock, 2)
    # A 5-segment SMS on a bucket of 2: it waits for the 3 beyond, 1.5 s, and whoever asks
    # next waits for those as well as their own.
    times = await sends(bucket, clock, [(1_000, 5), (1_000, 1)])
    assert [t - 1_000 for t in times] == pytest.approx([1.5, 2.0], abs=1e-5)


async def test_concurrent_callers_of_two_workers_share_one_budget(
    redis: Redis, redis_url: str
) -> None:
    other: Redis = Redis.from_url(redis_url)  # a second worker's own connection
    try:
        clock = Seconds()
        workers = [limiter(redis, clock, 20), limiter(other, clock, 20)]
        waits = await asyncio.gather(*(workers[i % 2].reserve(3) for i in range(50)))
    finally:
        await other.aclose()
    # Every request counted once, whichever worker and in whatever order: the k-th of
    # them (3k segments taken) waits until 3k - 20 have accrued at 20 a second.
    expected = [max(0.0, (3 * k - 20) / 20) for k in range(1, 51)]
    assert sorted(waits) == pytest.approx(expected, abs=1e-5)


async def test_the_servers_clock_is_used_without_one_given(redis: Redis) -> None:
    bucket = RateLimiter(redis, provider="africastalking", per_second=1)
    assert await bucket.reserve(1) == 0
    # Just emptied: 100 more are 100 s away, less the moment between the two calls.
    assert 90 < await bucket.reserve(100) <= 100
    # Kept until the bucket would be full again, then gone.
    assert 90_000 < await redis.pttl("sampark:bulk-rate:africastalking") <= 102_000

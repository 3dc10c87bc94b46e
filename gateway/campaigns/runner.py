"""Sending campaigns, the worker side (:class:`CampaignRunner`): recipients written in
batches by walking the audience with a keyset cursor (``Campaign.cursor``), each batch sent
by the one delivery path (:func:`gateway.sms.delivery.send_request`) at a rate counted in
segments a second per provider (:class:`RateLimiter`), outside quiet hours; resumable."""

from __future__ import annotations

import asyncio
import logging
import time as _time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from gateway.campaigns.audience import audience_batch
from gateway.campaigns.progress import DONE_CURSOR, PENDING, fail_unsent
from gateway.campaigns.quiet_hours import in_quiet_hours
from gateway.campaigns.service import Campaigns, RunScheduler
from gateway.channels.base import OutgoingSms, Provider
from gateway.ops import metrics
from gateway.sms.delivery import ClaimedMessage, claim_messages, send_request
from gateway.sms.outbox import NEW_MESSAGE_COLUMNS, new_message_row
from gateway.sms.retry import backoff
from gateway.sms.templates import RenderedSms
from gateway.sms.unanswered import next_unanswered_retry, retry_unanswered
from gateway.storage.models import Campaign, CampaignStatus, MessageStatus, OutboundMessage
from gateway.storage.sql import insert_returning

__all__ = ["CampaignLock", "CampaignRunner", "RateLimiter", "resume_sending"]

log = logging.getLogger(__name__)

_Pending = tuple[int, str, str, int, str | None]
"""A message to send: (id, recipient, text, segments, DLT template ID)."""


_PENDING_COLUMNS = ("id", "recipient", "text", "segments", "dlt_template_id")
"""A :data:`_Pending`'s columns of the message's row."""


def _pending(
    message_id: object, recipient: object, text: object, segments: object, dlt: object
) -> _Pending:
    """A :data:`_Pending` from the row's values (as the database driver gives them)."""
    return (
        int(str(message_id)),
        str(recipient),
        str(text),
        int(str(segments)),
        None if dlt is None else str(dlt),
    )


_TAKEN = (MessageStatus.SENT, MessageStatus.DELIVERED)


async def resume_sending(scheduler: RunScheduler) -> int:
    """Queue every campaign marked sending (after a restart, or a job lost with a worker);
    how many."""
    ids = await Campaign.filter(status=CampaignStatus.SENDING).values_list("id", flat=True)
    for campaign_id in ids:
        await scheduler.schedule(int(str(campaign_id)))
    return len(ids)


_TOKEN_BUCKET = """
local rate, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local wanted, now = tonumber(ARGV[3]), tonumber(ARGV[4])
if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(held[1]) or capacity, tonumber(held[2]) or now
if now > at then
    tokens = math.min(capacity, tokens + (now - at) * rate)
    at = now
end
tokens = tokens - wanted
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
           'at', string.format('%.6f', at))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
if tokens >= 0 then return 0 end
return math.ceil(-tokens / rate * 1e6)
"""
"""A token bucket, one atomic step: refill for the time since the last request, take the
tokens wanted (the bucket may go into debt), answer the microseconds until the debt is
paid. Key: the bucket (a hash, gone once it would be full again); args: rate a second,
capacity, tokens wanted, now in seconds (empty: the Redis server's clock)."""


class RateLimiter:
    """Segments a second per provider, shared through Redis by every campaign and worker.

    A token bucket (:data:`_TOKEN_BUCKET`) filling at ``per_second`` up to ``capacity``,
    one second's worth (at least one segment). A request takes its segments at once and
    waits until the bucket is out of debt, so any ``t`` seconds carry at most ``capacity +
    per_second * t`` segments, a fractional rate holds (0.5: a segment every two seconds)
    and a request larger than the capacity waits for what it takes beyond it. Requests
    are served in the order they ask, whichever worker they come from. The time is the
    Redis server's, the same for every worker; ``clock`` (seconds) replaces it in tests.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        provider: str,
        per_second: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.key = f"sampark:bulk-rate:{provider}"
        self.per_second = per_second
        self.capacity = max(1.0, per_second)
        self.clock = clock
        self._take = redis.register_script(_TOKEN_BUCKET)

    async def reserve(self, segments: int) -> float:
        """Take ``segments`` from the bucket; the seconds to wait before sending them."""
        now = "" if self.clock is None else repr(self.clock())
        micros = await self._take(
            keys=[self.key], args=[repr(self.per_second), repr(self.capacity), segments, now]
        )
        return int(micros) / 1e6

    async def acquire(self, segments: int) -> None:
        """Wait until ``segments`` may be sent."""
        wait = await self.reserve(segments)
        if wait > 0:
            await asyncio.sleep(wait)


_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
"""Extend the lock (key) by ARGV[2] ms if it is still the one taken with token ARGV[1]: 1,
else 0 (it expired, and perhaps another runner holds it now)."""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
"""Delete the lock (key) if it is still the one taken with token ARGV[1]."""


class CampaignLock:
    """One runner's hold on a campaign: a Redis key with its own token and a short expiry,
    renewed by :meth:`keep` (every third of it) for as long as the runner lives.

    A worker killed mid-campaign stops renewing, so the campaign is free again within
    ``seconds`` rather than after a long fixed expiry. A live runner keeps it: the renewal
    runs on its own task, beside whatever the runner waits for. The runner asks
    :meth:`held` before each provider request: true only while the last renewal it saw
    succeed still has more than a third of the expiry to run, so an event loop stalled
    past the renewal, or a Redis that stopped answering, stops the runner before another
    could have taken the campaign. (Messages are held in the database too: a second
    runner could not send what this one holds; the lock keeps two from sharing the work.)
    """

    def __init__(self, redis: Redis, key: str, *, seconds: float) -> None:
        self.redis = redis
        self.key = key
        self.seconds = seconds
        self.token = uuid.uuid4().hex
        self._until = 0.0
        self._lost = False
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def take(self) -> bool:
        """Take the lock if no one holds it."""
        asked = _time.monotonic()
        if not await self.redis.set(self.key, self.token, nx=True, px=self._ms):
            return False
        self._until = asked + self.seconds
        return True

    @property
    def _ms(self) -> int:
        return int(self.seconds * 1000)

    def held(self) -> bool:
        """True while this runner certainly still holds the lock (with a third of its
        expiry to spare)."""
        return not self._lost and _time.monotonic() < self._until - self.seconds / 3

    async def renew(self) -> bool:
        """Extend the lock once; False when it was no longer this runner's."""
        asked = _time.monotonic()
        if int(await self._renew(keys=[self.key], args=[self.token, self._ms])) != 1:
            self._lost = True
            return False
        self._until = asked + self.seconds
        return True

    async def keep(self) -> None:
        """Renew every third of the expiry until cancelled or the lock is lost; a Redis
        error is retried at the next turn (:meth:`held` turns false meanwhile)."""
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                if not await self.renew():
                    log.warning("campaign lock %s lost: this runner stops", self.key)
                    return
            except (RedisError, OSError) as e:
                log.warning("campaign lock %s not renewed: %s", self.key, e)

    async def release(self) -> None:
        """Free the lock, if it is still this runner's."""
        await self._release(keys=[self.key], args=[self.token])


class CampaignRunner:
    """The worker side: writes a campaign's recipients and sends them, resumably."""

    JOB_BUDGET = 45.0
    """Seconds one job works before handing over to the next (arq jobs time out)."""
    UNANSWERED_EVERY = 5.0
    """Seconds between two looks for a campaign's lost answers due for their one more try."""

    def __init__(
        self,
        *,
        campaigns: Campaigns,
        provider: Provider,
        session: aiohttp.ClientSession,
        redis: Redis,
    ) -> None:
        """``campaigns``: the staff side's, whose configuration, texts
        (:meth:`~gateway.campaigns.service.Campaigns.render_all`), scheduler and clock the
        runner shares."""
        config = campaigns.config
        self.campaigns = campaigns
        self.config = config
        self.scheduler = campaigns.scheduler
        self.clock = campaigns.clock
        self.provider = provider
        self.session = session
        self.redis = redis
        self.limiter = RateLimiter(
            redis, provider=provider.name, per_second=config.bulk.segments_per_second
        )
        self._answer_wait = timedelta(minutes=config.worker.unknown_answer_retry_minutes)
        self._lease = timedelta(seconds=config.worker.send_lease_seconds)
        self._unanswered_looked: dict[int, float] = {}
        """When each campaign's lost answers were last looked for (monotonic seconds)."""

    def _lock_key(self, campaign_id: int) -> str:
        return f"sampark:campaign-lock:{campaign_id}"

    def lock(self, campaign_id: int) -> CampaignLock:
        """The campaign's lock (not yet taken), held for ``bulk.lock_seconds``."""
        return CampaignLock(
            self.redis, self._lock_key(campaign_id), seconds=self.config.bulk.lock_seconds
        )

    async def run(self, campaign_id: int) -> str:
        """Work on the campaign for a while; queues its own continuation. One runner per
        campaign at a time (:class:`CampaignLock`); a second job for it returns ``busy``."""
        lock = self.lock(campaign_id)
        if not await lock.take():
            return "busy"
        keeping = asyncio.ensure_future(lock.keep())
        then: tuple[bool, datetime | None] | None = None
        try:
            outcome, then = await self._run_locked(campaign_id, lock)
            return outcome
        finally:
            keeping.cancel()
            await asyncio.gather(keeping, return_exceptions=True)
            await lock.release()
            if then is not None:
                await self.scheduler.schedule(campaign_id, at=then[1])

    async def _run_locked(
        self, campaign_id: int, lock: CampaignLock
    ) -> tuple[str, tuple[bool, datetime | None] | None]:
        fresh: list[_Pending] = []
        try:
            return await self._work(campaign_id, fresh, lock)
        finally:
            # Written and held for sending, but the runner stops first (paused, cancelled,
            # quiet hours, its time is up): back to the queue, as if never claimed.
            if fresh:
                await OutboundMessage.filter(
                    id__in=[p[0] for p in fresh], status=MessageStatus.SENDING
                ).update(status=MessageStatus.QUEUED, attempts=F("attempts") - 1)

    async def _work(
        self, campaign_id: int, fresh: list[_Pending], lock: CampaignLock
    ) -> tuple[str, tuple[bool, datetime | None] | None]:
        """The runner's loop; ``fresh`` holds the messages written but not yet sent."""
        deadline = _time.monotonic() + self.JOB_BUDGET
        failures = 0
        while True:
            if not lock.held():
                # Another runner may have it now (or will: the resume job queues it).
                log.warning("campaign %s: lock not held, this runner stops", campaign_id)
                return "lock lost", None
            campaign = await Campaign.get_or_none(id=campaign_id)
            if campaign is None or campaign.status is not CampaignStatus.SENDING:
                if campaign is not None and campaign.status is CampaignStatus.CANCELLED:
                    # A batch written while the cancel was being recorded, and this
                    # runner's own written but unsent one.
                    await fail_unsent(
                        campaign_id, provider=self.provider.name, held=[p[0] for p in fresh]
                    )
                    fresh.clear()
                return (campaign.status.value if campaign else "missing"), None
            if campaign.started_at is not None and campaign.started_at > datetime.now(UTC):
                # Started for a later time (a job queued early, or by a worker's restart).
                return "scheduled", (True, campaign.started_at)
            quiet_end = in_quiet_hours(self.config, self.clock())
            if quiet_end is not None:
                log.info("campaign %s: quiet hours, resuming at %s", campaign_id, quiet_end)
                return "quiet", (True, quiet_end)
            # The next round's batches are written while the provider takes this round's.
            writing = (
                asyncio.ensure_future(
                    self._write_batch(campaign, batches=self.config.bulk.requests_in_flight)
                )
                if campaign.cursor != DONE_CURSOR
                else None
            )
            try:
                sent, transient = await self._send_round(campaign, fresh, lock)
            finally:
                if writing is not None:
                    fresh += await writing
            failures = failures + 1 if transient else 0
            if failures:
                delay = backoff(
                    failures,
                    base=self.config.worker.retry_base_seconds,
                    maximum=self.config.worker.retry_max_seconds,
                )
                if delay > 10:
                    return "retrying", (True, datetime.now(UTC) + timedelta(seconds=delay))
                await asyncio.sleep(delay)
            elif not sent and campaign.cursor == DONE_CURSOR:
                pending = await OutboundMessage.filter(
                    campaign_id=campaign_id, status__in=list(PENDING)
                ).count()
                soon = datetime.now(UTC) + timedelta(seconds=15)
                if pending:
                    # Only messages another (dead) worker left "sending": take them when stale.
                    return "waiting", (True, soon)
                answer_due = await next_unanswered_retry(
                    wait=self._answer_wait, campaign_id=campaign_id
                )
                if answer_due is not None:
                    # Answers lost: their reports may settle them any moment (look again
                    # soon, to be done then), else their one more try is due then; the
                    # next run looks for them at once.
                    self._unanswered_looked.pop(campaign_id, None)
                    return "waiting", (True, min(soon, answer_due))
                await Campaign.filter(id=campaign_id, status=CampaignStatus.SENDING).update(
                    status=CampaignStatus.DONE, finished_at=datetime.now(UTC)
                )
                log.info("campaign %s: every recipient handed to the provider", campaign_id)
                return "done", None
            if _time.monotonic() > deadline:
                return "continues", (True, None)

    async def _write_batch(self, campaign: Campaign, *, batches: int = 1) -> list[_Pending]:
        """Write the next ``batches`` batches of recipients and move the cursor, in one
        transaction.

        The messages are written already held by this runner ("sending", first attempt):
        it sends them next, with no claim of their own. Returns them."""
        size = self.config.bulk.batch_size * batches
        after = int(campaign.cursor) if campaign.cursor else 0
        rendered = self.campaigns.render_all(campaign.template, campaign.variables)
        default = self.config.service.default_language
        people = await audience_batch(campaign, after=after, size=size, default_language=default)
        if not people:
            await Campaign.filter(id=campaign.id).update(cursor=DONE_CURSOR)
            campaign.cursor = DONE_CURSOR
            return []
        messages: list[tuple[Any, ...]] = []
        # What each written row is sent with, kept rather than read back: the texts are
        # most of a batch's bytes.
        sms_of: dict[str, RenderedSms] = {}
        skipped = 0
        now = datetime.now(UTC)
        for person in people:
            if person.opted_out and not campaign.essential:
                skipped += 1
                continue
            language = self.config.sms_language(
                person.language, latin_only=person.latin_only, script=person.script
            )
            sms = sms_of[person.phone] = rendered.get(language) or rendered[default]
            messages.append(
                new_message_row(
                    sms,
                    recipient=person.phone,
                    provider=self.provider.name,
                    idempotency_key=f"campaign:{campaign.id}:{person.phone}",
                    at=now,
                    campaign_id=campaign.id,
                    held=True,
                )
            )
        cursor = str(people[-1].key)
        async with in_transaction() as conn:
            # A citizen seen before (another complaint, or a batch redone) is skipped by
            # the unique key: one message per number.
            written = await insert_returning(
                conn,
                OutboundMessage._meta.db_table,
                NEW_MESSAGE_COLUMNS,
                messages,
                returning=("id", "recipient"),
                skip_conflicts_on="idempotency_key",
            )
            await (
                Campaign.filter(id=campaign.id)
                .using_db(conn)
                .update(cursor=cursor, skipped=F("skipped") + skipped)
            )
        campaign.cursor = cursor
        metrics.campaign_recipients(self.provider.name, "written", len(written))
        metrics.campaign_recipients(self.provider.name, "opted_out", skipped)
        pending: list[_Pending] = []
        for r in written:
            phone = str(r["recipient"])
            sms = sms_of[phone]
            pending.append((int(r["id"]), phone, sms.text, sms.segments, sms.dlt_template_id))
        return pending

    async def _send_round(
        self, campaign: Campaign, fresh: list[_Pending], lock: CampaignLock
    ) -> tuple[int, bool]:
        """Send ``fresh`` (taken from the list as they go to the provider) on up to
        ``bulk.requests_in_flight`` lanes at once, a batch each; the first lane then takes
        the next of the messages waiting. (Messages accepted, any transient failure.)"""
        size = self.config.bulk.batch_size
        first = fresh[: size * self.config.bulk.requests_in_flight]
        batches = [first[i : i + size] for i in range(0, len(first), size)]
        lanes = [
            self._send_batch(campaign, batch, fresh, lock, first_lane=i == 0)
            for i, batch in enumerate(batches or [[]])
        ]
        # Every lane is awaited to its end before an error goes up: a lane left running
        # would send for a runner that has stopped.
        outcomes = await asyncio.gather(*lanes, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        done = [o for o in outcomes if not isinstance(o, BaseException)]
        return sum(a for a, _ in done), any(t for _, t in done)

    async def _send_batch(
        self,
        campaign: Campaign,
        batch: list[_Pending],
        fresh: list[_Pending],
        lock: CampaignLock,
        *,
        first_lane: bool,
    ) -> tuple[int, bool]:
        """Send ``batch`` (of ``fresh``, taken from it as they go to the provider), then on
        the first lane the next of the messages waiting, while ``lock`` is held; (messages
        accepted, any transient failure)."""
        held = {p[0] for p in batch}
        rows: list[_Pending] = list(batch)
        if first_lane:
            rows += await self._waiting(campaign.id, fresh, self.config.bulk.batch_size - len(rows))
        # One request per text (and its DLT template: one per language of the template).
        by_text: dict[tuple[str, str | None], list[tuple[int, str, int]]] = {}
        for mid, recipient, text, segments, dlt_template_id in rows:
            by_text.setdefault((text, dlt_template_id), []).append((mid, recipient, segments))
        accepted = 0
        transient = False
        first = True
        for (text, dlt_template_id), group in by_text.items():
            segments = group[0][2]
            per_request = max(1, int(self.limiter.capacity) // max(1, segments))
            for i in range(0, len(group), per_request):
                # The first request's status is the one the loop has just read; each
                # later one reads it again (a pause or cancel stops the next request).
                if not first:
                    status = await Campaign.filter(id=campaign.id).values_list("status", flat=True)
                    if status and str(status[0]) != CampaignStatus.SENDING.value:
                        return accepted, False
                first = False
                chunk = group[i : i + per_request]
                await self.limiter.acquire(segments * len(chunk))
                if not lock.held():
                    return accepted, False
                ids = {mid for mid, _, _ in chunk}
                fresh[:] = [p for p in fresh if p[0] not in ids]
                # Shielded: a worker stopped mid-request still records what the provider took.
                sms = OutgoingSms(
                    text=text,
                    recipients=(),
                    dlt_template_id=dlt_template_id,
                    dlt_entity_id=self.config.sms.dlt_entity_id,
                )
                a, t = await asyncio.shield(self._send_one_request(sms, chunk, held))
                accepted += a
                transient = transient or t
        return accepted, transient

    async def _waiting(self, campaign_id: int, fresh: list[_Pending], room: int) -> list[_Pending]:
        """Up to ``room`` of the campaign's messages waiting to be sent besides ``fresh``:
        retried and stale ones, then queued ones (each query a range of the (campaign_id,
        status) index: one OR over all the statuses would walk every message already
        sent, batch after batch). Lost answers due for their one more try join them."""
        now = datetime.now(UTC)
        # A lost answer's retry is due minutes after it (worker.unknown_answer_retry_
        # minutes): looking every few seconds, not at every batch, spares a query a batch.
        looked = self._unanswered_looked.get(campaign_id)
        if looked is None or _time.monotonic() - looked >= self.UNANSWERED_EVERY:
            await retry_unanswered(wait=self._answer_wait, now=now, campaign_id=campaign_id)
            self._unanswered_looked[campaign_id] = _time.monotonic()
        if room <= 0:
            return []
        mine = OutboundMessage.filter(campaign_id=campaign_id)
        rows = [
            _pending(*row)
            for row in await mine.filter(status__in=[MessageStatus.RETRYING, MessageStatus.SENDING])
            .filter(Q(status=MessageStatus.RETRYING) | Q(updated_at__lt=now - self._lease))
            .exclude(id__in=[p[0] for p in fresh])
            .order_by("id")
            .limit(room)
            .values_list(*_PENDING_COLUMNS)
        ]
        if len(rows) < room:
            rows += [
                _pending(*row)
                for row in await mine.filter(status=MessageStatus.QUEUED)
                .order_by("id")
                .limit(room - len(rows))
                .values_list(*_PENDING_COLUMNS)
            ]
        return rows

    async def _send_one_request(
        self, sms: OutgoingSms, chunk: list[tuple[int, str, int]], held: set[int]
    ) -> tuple[int, bool]:
        """Send ``sms`` (its text and DLT IDs) to the messages of ``chunk`` this runner holds
        or can claim; (messages accepted, any transient failure)."""
        # Messages this runner wrote are held already (first attempt); the others are
        # claimed in one statement: a row another worker holds (sending, not stale), or one
        # already sent, is left alone.
        mine = [
            ClaimedMessage(mid, phone, sms.text, 1, sms.dlt_template_id)
            for mid, phone, _ in chunk
            if mid in held
        ]
        others = [mid for mid, _, _ in chunk if mid not in held]
        claimed = await claim_messages(others, lease=self._lease) if others else []
        mine += [m for m in claimed if m is not None]
        results = await send_request(
            mine,
            sms,
            provider=self.provider,
            session=self.session,
            may_retry=lambda m: m.attempts < self.config.bulk.max_tries,
        )
        outcomes = Counter(r.status.value for r in results.values())
        for outcome, n in outcomes.items():
            metrics.campaign_recipients(self.provider.name, outcome, n)
        return (
            sum(r.status in _TAKEN for r in results.values()),
            any(r.transient for r in results.values()),
        )

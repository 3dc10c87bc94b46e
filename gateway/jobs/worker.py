"""The arq worker: every outbound SMS and scheduled job runs here.

Jobs are thin: each calls one domain function. The worker runs inside the server process
by default (``worker.embedded``) or alone with ``python -m gateway worker``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import Retry, cron
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from arq.worker import Function, Worker, func
from redis.exceptions import RedisError

from gateway.complaints.lifecycle import Lifecycle
from gateway.config import Config
from gateway.sms.outbox import Outbox, TransientSendFailure, retry_unanswered, stranded_messages
from gateway.storage.db import DATABASE_UNREACHABLE
from gateway.storage.models import MessageStatus

__all__ = [
    "BULK_QUEUE",
    "ArqDispatcher",
    "ArqRunScheduler",
    "backoff",
    "build_bulk_worker",
    "build_worker",
    "health_check_key",
    "running_workers",
    "send_sms_job_id",
    "stop_worker",
    "supervise",
]

log = logging.getLogger(__name__)

QUEUE = "sampark:queue"
BULK_QUEUE = "sampark:bulk"
"""Campaigns have their own queue and worker: a large campaign never delays a citizen's
acknowledgement or a lifecycle message on :data:`QUEUE`."""


def health_check_key(queue: str = QUEUE) -> str:
    return f"{queue}:health-check"


def send_sms_job_id(message_id: int) -> str:
    """One job per message: arq refuses a second job with the same ID while it exists."""
    return f"sms:{message_id}"


def backoff(job_try: int, *, base: float, maximum: float) -> float:
    """Seconds to wait before try ``job_try + 1``: base, 2x, 4x ... capped at ``maximum``."""
    return float(min(maximum, base * (2 ** max(0, job_try - 1))))


_ENQUEUE_IF_NEW = """
if redis.call('exists', KEYS[1], KEYS[2]) == 0 then
    redis.call('psetex', KEYS[1], ARGV[1], ARGV[2])
    redis.call('zadd', KEYS[3], ARGV[3], ARGV[4])
end
"""
"""arq's ``enqueue_job`` as one atomic step: a job whose ID is taken (queued, running or
its result kept) is not queued again. Keys: job, result, queue; args: expiry (ms),
serialized job, score, job ID."""


class ArqDispatcher:
    """Queues written messages for sending."""

    def __init__(self, pool: ArqRedis, *, queue: str = QUEUE) -> None:
        self.pool = pool
        self.queue = queue
        self._enqueue = pool.register_script(_ENQUEUE_IF_NEW)

    async def dispatch(self, message_ids: Sequence[int], *, tag: str | None = None) -> None:
        """One ``send_sms`` job per message (:func:`send_sms_job_id`), all sent to Redis in
        one round trip: what ``enqueue_job`` does for each, without its three round trips
        and a millisecond of client time per job (a cron run dispatches thousands).

        With ``tag``, the job IDs carry it (``sms:<id>:<tag>``): a job for a message whose
        plain ID is taken by another job or a kept result. Safe: the message's row lets one
        delivery send it, however many jobs there are."""
        if not message_ids:
            return
        now = timestamp_ms()
        async with self.pool.pipeline(transaction=False) as pipe:
            for message_id in dict.fromkeys(message_ids):
                job_id = send_sms_job_id(message_id) + (f":{tag}" if tag else "")
                job = serialize_job(
                    "send_sms", (message_id,), {}, None, now, serializer=self.pool.job_serializer
                )
                await self._enqueue(
                    keys=[job_key_prefix + job_id, result_key_prefix + job_id, self.queue],
                    args=[self.pool.expires_extra_ms, job, now, job_id],
                    client=pipe,
                )
            await pipe.execute()

    async def started(self, message_ids: Sequence[int]) -> list[int]:
        """Those of ``message_ids`` whose ``send_sms`` job a worker has started (arq's
        in-progress key, held for arq's in-progress timeout)."""
        if not message_ids:
            return []
        async with self.pool.pipeline(transaction=False) as pipe:
            for message_id in message_ids:
                pipe.exists(in_progress_key_prefix + send_sms_job_id(message_id))
            held = await pipe.execute()
        return [m for m, n in zip(message_ids, held, strict=True) if n]


class ArqSecondChance:
    """Queues the one later retry of an essential message that finally failed."""

    def __init__(self, pool: ArqRedis, *, delay: timedelta, queue: str = QUEUE) -> None:
        self.pool = pool
        self.delay = delay
        self.queue = queue

    async def schedule(self, message_id: int) -> None:
        await self.pool.enqueue_job(
            "send_sms",
            message_id,
            _job_id=f"{send_sms_job_id(message_id)}:second",
            _queue_name=self.queue,
            _defer_by=self.delay,
        )


async def send_sms(ctx: dict[str, Any], message_id: int) -> str:
    """Send one outbound message."""
    config: Config = ctx["config"]
    outbox: Outbox = ctx["outbox"]
    job_try: int = ctx.get("job_try", 1)
    delay = backoff(
        job_try, base=config.worker.retry_base_seconds, maximum=config.worker.retry_max_seconds
    )
    try:
        result = await outbox.deliver(
            message_id,
            final_attempt=job_try >= config.worker.max_tries,
            retry_in=timedelta(seconds=delay),
        )
    except TransientSendFailure:
        raise Retry(defer=delay) from None
    except DATABASE_UNREACHABLE as e:
        # The message is where the database last saw it: queued or retrying, this job's
        # next try takes it; claimed, the sweep does after the lease. A failed job instead
        # would keep its result, and with it the message's job ID, for an hour.
        log.warning("message %s: database unreachable, will retry: %r", message_id, e)
        raise Retry(defer=delay) from None
    return result.status.value


STUCK_AFTER = timedelta(minutes=10)
"""A message still queued this long after it was written has no job that will run: its
job ID is held by a job or result of another database's message with the same ID (a
Redis that outlived its database: the database restored, or ``var/gateway.db`` deleted
while the embedded Redis kept its jobs). Far beyond any queue's wait at this worker's rate."""

STRANDED_GRACE = timedelta(seconds=30)
"""How late a queued message or a due retry may be before the sweep queues it again."""


async def requeue_stranded(ctx: dict[str, Any], *, grace: timedelta = STRANDED_GRACE) -> int:
    """Queue again every message that should be moving and is not
    (:func:`~gateway.sms.outbox.stranded_messages`): written but never queued (the process
    stopped between the two), a retry whose job was lost with Redis, a send whose worker
    died. The row lets one delivery send each, however many jobs there are.

    ``grace``: how late a queued message or a due retry must be; none after an outage,
    when their jobs may all have gone with Redis (:func:`sweep_after_outage`)."""
    config: Config = ctx["config"]
    dispatcher: ArqDispatcher = ctx["dispatcher"]
    lease = timedelta(seconds=config.worker.send_lease_seconds)
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


async def sweep_after_outage(ctx: dict[str, Any]) -> int:
    """The message worker back after an outage: Redis may have restarted empty, taking
    every job queued in it, so every message that should be moving is queued again now
    (a job still there is not doubled: a queued message keeps its job ID), not once it is
    late by the sweep's grace."""
    return await requeue_stranded(ctx, grace=timedelta(0))


async def resend_unanswered(ctx: dict[str, Any], *, now: datetime | None = None) -> int:
    """Send once more the messages whose answer was lost and that no delivery report
    settled within ``worker.unknown_answer_retry_minutes`` (a campaign's runner resends
    its own)."""
    config: Config = ctx["config"]
    dispatcher: ArqDispatcher = ctx["dispatcher"]
    wait = timedelta(minutes=config.worker.unknown_answer_retry_minutes)
    ids = await retry_unanswered(wait=wait, now=now)
    if ids:
        log.warning("%d message(s) with a lost answer and no report: sending once more", len(ids))
        # A job ID of their own: the first send's job result may still be kept.
        await dispatcher.dispatch(ids, tag="unanswered")
    return len(ids)


async def escalate_overdue(ctx: dict[str, Any]) -> int:
    """Move complaints past their due date one level up."""
    lifecycle: Lifecycle = ctx["lifecycle"]
    return await lifecycle.escalate_overdue()


async def feedback_timers(ctx: dict[str, Any]) -> tuple[int, int]:
    """Remind citizens who have not answered the feedback question; close after longer."""
    lifecycle: Lifecycle = ctx["lifecycle"]
    return await lifecycle.feedback_timers()


class ArqRunScheduler:
    """Queues a campaign's sending job on the bulk queue (now, or at a time)."""

    def __init__(self, pool: ArqRedis, *, queue: str = BULK_QUEUE) -> None:
        self.pool = pool
        self.queue = queue

    async def schedule(self, campaign_id: int, *, at: datetime | None = None) -> None:
        # Several jobs for one campaign are harmless (one runs, the others find it locked);
        # a job ID per resume time keeps quiet hours from piling up jobs.
        job_id = (
            f"campaign:{campaign_id}:at:{int(at.timestamp())}"
            if at is not None
            else f"campaign:{campaign_id}:{uuid.uuid4().hex[:12]}"
        )
        await self.pool.enqueue_job(
            "run_campaign", campaign_id, _job_id=job_id, _queue_name=self.queue, _defer_until=at
        )


async def run_campaign(ctx: dict[str, Any], campaign_id: int) -> str:
    """Write and send a campaign's recipients for a while (continues in a new job)."""
    return str(await ctx["campaign_runner"].run(campaign_id))


async def resume_campaigns(ctx: dict[str, Any]) -> int:
    """Queue every campaign marked sending: after a restart, or a job lost with a worker."""
    from gateway.storage.models import Campaign, CampaignStatus

    scheduler: ArqRunScheduler = ctx["campaign_scheduler"]
    ids = await Campaign.filter(status=CampaignStatus.SENDING).values_list("id", flat=True)
    for campaign_id in ids:
        await scheduler.schedule(int(str(campaign_id)))
    return len(ids)


def build_bulk_worker(
    config: Config,
    *,
    pool: ArqRedis,
    ctx: dict[str, Any],
    burst: bool = False,
    queue: str = BULK_QUEUE,
) -> Worker:
    """The low-priority worker for campaigns; ``ctx`` must hold ``campaign_runner`` and
    ``campaign_scheduler``."""
    return Worker(
        functions=[func(run_campaign, name="run_campaign", max_tries=3, timeout=120)],
        cron_jobs=[
            cron(
                resume_campaigns,
                name="resume_campaigns",
                minute=None,
                second=30,
                run_at_startup=True,
                unique=True,
            )
        ],
        redis_pool=pool,
        queue_name=queue,
        ctx={"config": config, **ctx},
        burst=burst,
        handle_signals=False,
        poll_delay=0.2,
        health_check_interval=10,
        keep_result=0,
        max_jobs=4,
    )


def _sweep_schedule(interval: int) -> dict[str, Any]:
    if interval < 60:
        return {"second": set(range(0, 60, interval))}
    minutes = max(1, interval // 60)
    return {"minute": set(range(0, 60, minutes)), "second": 0}


def build_worker(
    config: Config,
    *,
    pool: ArqRedis,
    ctx: dict[str, Any],
    burst: bool = False,
    queue: str = QUEUE,
) -> Worker:
    """An arq worker for the gateway's jobs; ``ctx`` must hold ``outbox``, ``dispatcher``
    and ``lifecycle``."""
    functions: list[Function] = [
        func(send_sms, name="send_sms", max_tries=config.worker.max_tries, timeout=60),
    ]
    return Worker(
        functions=functions,
        cron_jobs=[
            cron(
                requeue_stranded,
                name="requeue_stranded",
                run_at_startup=True,
                unique=True,
                **_sweep_schedule(config.worker.sweep_interval_seconds),
            ),
            # Every 5 minutes: deadlines are days long; a few minutes late is on time.
            cron(
                escalate_overdue,
                name="escalate_overdue",
                minute=set(range(0, 60, 5)),
                second=10,
                unique=True,
                run_at_startup=True,
                timeout=600,
            ),
            cron(
                feedback_timers,
                name="feedback_timers",
                minute=set(range(2, 60, 5)),
                second=20,
                unique=True,
                timeout=600,
            ),
            # Every minute: the wait for a lost answer's report is tens of minutes.
            cron(resend_unanswered, name="resend_unanswered", second=40, unique=True),
        ],
        redis_pool=pool,
        queue_name=queue,
        ctx={"config": config, **ctx},
        burst=burst,
        handle_signals=False,
        poll_delay=0.1,
        health_check_interval=10,
        keep_result=3600,
        max_jobs=50,
    )


async def stop_worker(worker: Worker, task: asyncio.Task[None], *, grace: float = 10.0) -> None:
    """Stop taking jobs, let the jobs under way finish (an SMS half sent is worse than a
    second's wait), cancel any still running after ``grace``, and drop the worker's health
    record.

    The Redis pool is left open: it is the caller's, and the app's two workers share it.
    arq's ``Worker.close()`` would disconnect it under the other worker's jobs, which then
    failed to record their results, and the app went on to close the database under them.
    """
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        # Also when the stop itself runs in a cancelled task: aiohttp cancels the app's
        # main task before it runs the cleanup that stops the workers.
        pass
    except Exception:
        # The polling loop failed (Redis gone, say); the jobs under way still need the
        # database and the HTTP client, so stopping goes on and waits for them.
        log.exception("the worker stopped with an error")
    running = [t for t in worker.tasks.values() if not t.done()]
    if running:
        _, late = await asyncio.wait(running, timeout=grace)
        for job in late:
            job.cancel()
        await asyncio.gather(*late, return_exceptions=True)
    try:
        await worker.pool.delete(worker.health_check_key)
    except RedisError:
        log.warning("could not remove the worker's health record (Redis unreachable)")


RESTART_FIRST_DELAY = 0.5
RESTART_MAX_DELAY = 30.0
"""A worker whose loop died is started again after 0.5 s, then 1 s, 2 s ... at most 30 s
apart while it keeps failing (Redis still down)."""


async def supervise(
    worker: Worker,
    *,
    name: str,
    first_delay: float = RESTART_FIRST_DELAY,
    max_delay: float = RESTART_MAX_DELAY,
    recovered: Callable[[dict[str, Any]], Awaitable[object]] | None = None,
) -> None:
    """Run ``worker`` until cancelled (or, in burst mode, done), starting it again whenever
    its loop dies.

    arq's loop ends at the first Redis error (a restart, a network cut), and nothing in
    arq starts it again. The failure is logged at once, and once per outage: the
    restarts that follow are quiet until one gets through to Redis, which is logged too,
    and ``recovered(ctx)`` is run (what the jobs lost with Redis would have done). The
    jobs under way are tasks of their own and carry on meanwhile. Cancel the task
    running this, then :func:`stop_worker`, to stop."""
    outage_since: float | None = None
    restarts = 0
    delay = first_delay
    own_startup = worker.on_startup

    async def started(ctx: dict[Any, Any]) -> None:
        # arq calls this once Redis has answered: the outage, if any, is over.
        nonlocal outage_since, restarts, delay
        if outage_since is not None:
            log.warning(
                "the %s worker is running again after %.1f s (%d restart(s))",
                name,
                time.monotonic() - outage_since,
                restarts,
            )
            outage_since, restarts, delay = None, 0, first_delay
            # Its health record (gone with Redis, or expiring) now, not at the next interval.
            worker._last_health_check = 0
            if recovered is not None:
                try:
                    await recovered(ctx)
                except Exception:
                    # The database may be down too: the crons take it from there.
                    log.exception("the %s worker's recovery after the outage failed", name)
        if own_startup is not None:
            await own_startup(ctx)

    worker.on_startup = started
    while True:
        try:
            await worker.async_run()
            return
        except Exception as e:
            if outage_since is None:
                outage_since = time.monotonic()
                log.error("the %s worker stopped (%r): restarting it", name, e, exc_info=e)
            else:
                log.debug("the %s worker failed to start again: %r", name, e)
        _forget_finished_jobs(worker)
        await asyncio.sleep(delay)
        restarts += 1
        delay = min(max_delay, delay * 2)


def _forget_finished_jobs(worker: Worker) -> None:
    """Take the jobs that ended while the loop was down off the worker's books (its loop
    would raise their errors: a job whose result Redis could not take, say)."""
    for job_id, task in list(worker.tasks.items()):
        if task.done():
            del worker.tasks[job_id]
            if not task.cancelled() and task.exception() is not None:
                log.warning("job %s ended while its worker was down: %r", job_id, task.exception())


@asynccontextmanager
async def running_workers(
    config: Config, *, pool: ArqRedis, ctx: dict[str, Any]
) -> AsyncIterator[tuple[Worker, Worker]]:
    """The message worker and the campaign worker (its own queue, so that a campaign never
    holds up an acknowledgement), each under :func:`supervise`, for the ``async with``
    block: the server's embedded workers and ``python -m gateway worker`` alike. Leaving
    the block stops them, the campaign worker first (:func:`stop_worker`).

    ``ctx`` must hold what both need (:func:`build_worker`, :func:`build_bulk_worker`)."""
    worker = build_worker(config, pool=pool, ctx=ctx)
    bulk = build_bulk_worker(config, pool=pool, ctx=ctx)
    task = asyncio.create_task(
        supervise(worker, name="message", recovered=sweep_after_outage), name="arq-worker"
    )
    bulk_task = asyncio.create_task(
        supervise(bulk, name="campaign", recovered=resume_campaigns), name="arq-bulk-worker"
    )
    try:
        yield worker, bulk
    finally:
        await stop_worker(bulk, bulk_task)
        await stop_worker(worker, task)

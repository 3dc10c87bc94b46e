"""The arq workers: building them, and keeping them running.

Two workers, each on its queue (:mod:`gateway.jobs.dispatch`): one for every outbound SMS
and the scheduled jobs, one for campaigns. They run inside the server process by default
(``worker.embedded``) or alone with ``python -m gateway worker``; their jobs are in
:mod:`gateway.jobs.tasks`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

from arq import cron
from arq.connections import ArqRedis
from arq.typing import WorkerCoroutine
from arq.worker import Function, Worker, func
from redis.exceptions import RedisError

from gateway.jobs.dispatch import BULK_QUEUE, QUEUE
from gateway.jobs.tasks import (
    JobContext,
    escalate_overdue,
    feedback_timers,
    requeue_stranded,
    resend_unanswered,
    resume_campaigns,
    run_campaign,
    send_sms,
    sweep_after_outage,
)
from gateway.ops import metrics

__all__ = [
    "build_bulk_worker",
    "build_worker",
    "running_workers",
    "stop_worker",
    "supervise",
]

log = logging.getLogger(__name__)


def _job(function: Callable[..., Awaitable[object]]) -> WorkerCoroutine:
    """A job of :mod:`gateway.jobs.tasks`, for arq: arq types every job's context as a
    plain dict; the worker's is a :class:`JobContext` (built so by :func:`build_worker`)."""
    return cast(WorkerCoroutine, function)


RESUME_SECONDS = (0, 15, 30, 45)
"""The seconds of each minute at which ``resume_campaigns`` queues every sending campaign."""


def build_bulk_worker(
    ctx: JobContext, *, pool: ArqRedis, burst: bool = False, queue: str = BULK_QUEUE
) -> Worker:
    """The low-priority worker for campaigns (``run_campaign``, ``resume_campaigns``)."""
    return Worker(
        functions=[func(_job(run_campaign), name="run_campaign", max_tries=3, timeout=120)],
        cron_jobs=[
            cron(
                _job(resume_campaigns),
                name="resume_campaigns",
                minute=None,
                # Every 15 s: a campaign whose runner's worker died waits for its lock to
                # expire (bulk.lock_seconds), then for this.
                second=set(RESUME_SECONDS),
                run_at_startup=True,
                unique=True,
            )
        ],
        redis_pool=pool,
        queue_name=queue,
        ctx={**ctx},  # arq adds its own keys: each worker a copy
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
    ctx: JobContext, *, pool: ArqRedis, burst: bool = False, queue: str = QUEUE
) -> Worker:
    """The worker for every outbound SMS (``send_sms``) and the scheduled jobs: the sweep,
    escalation, feedback timers, lost answers."""
    config = ctx["config"]
    functions: list[Function] = [
        func(_job(send_sms), name="send_sms", max_tries=config.worker.max_tries, timeout=60),
    ]
    return Worker(
        functions=functions,
        cron_jobs=[
            cron(
                _job(requeue_stranded),
                name="requeue_stranded",
                run_at_startup=True,
                unique=True,
                **_sweep_schedule(config.worker.sweep_interval_seconds),
            ),
            # Every 5 minutes: deadlines are days long; a few minutes late is on time.
            cron(
                _job(escalate_overdue),
                name="escalate_overdue",
                minute=set(range(0, 60, 5)),
                second=10,
                unique=True,
                run_at_startup=True,
                timeout=600,
            ),
            cron(
                _job(feedback_timers),
                name="feedback_timers",
                minute=set(range(2, 60, 5)),
                second=20,
                unique=True,
                timeout=600,
            ),
            # Every minute: the wait for a lost answer's report is tens of minutes.
            cron(_job(resend_unanswered), name="resend_unanswered", second=40, unique=True),
        ],
        redis_pool=pool,
        queue_name=queue,
        ctx={**ctx},
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
    recovered: Callable[[JobContext], Awaitable[object]] | None = None,
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
                    await recovered(cast(JobContext, ctx))
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
            metrics.redis_error(f"{name}_worker")
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
    ctx: JobContext, *, pool: ArqRedis
) -> AsyncIterator[tuple[Worker, Worker]]:
    """The message worker and the campaign worker (its own queue, so that a campaign never
    holds up an acknowledgement), each under :func:`supervise`, for the ``async with``
    block: the server's embedded workers and ``python -m gateway worker`` alike. Leaving
    the block stops them, the campaign worker first (:func:`stop_worker`)."""
    worker = build_worker(ctx, pool=pool)
    bulk = build_bulk_worker(ctx, pool=pool)
    task = asyncio.create_task(
        supervise(worker, name="message", recovered=sweep_after_outage), name="arq-worker"
    )
    bulk_task = asyncio.create_task(
        supervise(bulk, name="campaign", recovered=resume_campaigns), name="arq-bulk-worker"
    )
    log.info("workers started (queues %s and %s)", worker.queue_name, bulk.queue_name)
    try:
        yield worker, bulk
    finally:
        await stop_worker(bulk, bulk_task)
        await stop_worker(worker, task)
        log.info("workers stopped")

"""The gateway's arq jobs, each a thin wrapper over one domain call.

A job is handed a :class:`JobContext`: what the worker was built with
(:func:`gateway.app.job_context`), and what arq adds per job (``job_try``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import NotRequired, TypedDict

from arq import Retry

from gateway.campaigns.runner import CampaignRunner, resume_sending
from gateway.campaigns.service import RunScheduler
from gateway.complaints.lifecycle import Lifecycle
from gateway.config import Config
from gateway.ops import logs, metrics
from gateway.sms.outbox import Outbox, TransientSendFailure
from gateway.sms.retry import backoff
from gateway.sms.sweep import STRANDED_GRACE, TaggedDispatcher, resend_lost
from gateway.sms.sweep import requeue_stranded as sweep_stranded
from gateway.storage.db import DATABASE_UNREACHABLE

__all__ = [
    "JobContext",
    "escalate_overdue",
    "feedback_timers",
    "requeue_stranded",
    "resend_unanswered",
    "resume_campaigns",
    "run_campaign",
    "send_sms",
    "sweep_after_outage",
]

log = logging.getLogger(__name__)


class JobContext(TypedDict):
    """What the jobs need, built once with the rest of the gateway's services."""

    config: Config
    outbox: Outbox
    dispatcher: TaggedDispatcher
    lifecycle: Lifecycle
    campaign_runner: CampaignRunner
    campaign_scheduler: RunScheduler
    job_try: NotRequired[int]
    """Set by arq for each job: 1 on its first try."""


async def send_sms(ctx: JobContext, message_id: int, *, request_id: str | None = None) -> str:
    """Send one outbound message; a transient failure is tried again after :func:`backoff`.
    ``request_id``: the request that led to it, named on the job's log lines."""
    with logs.bound(request_id=request_id):
        return await _send_sms(ctx, message_id)


async def _send_sms(ctx: JobContext, message_id: int) -> str:
    config = ctx["config"]
    job_try = ctx.get("job_try", 1)
    delay = backoff(
        job_try, base=config.worker.retry_base_seconds, maximum=config.worker.retry_max_seconds
    )
    try:
        result = await ctx["outbox"].deliver(
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
        metrics.database_error("send_sms")
        raise Retry(defer=delay) from None
    if result.detail not in NOT_SENT:
        # The template comes with the claimed message: counting costs no second read.
        metrics.sms(result.template or "unknown", ctx["outbox"].provider.name, result.status.value)
    return result.status.value


NOT_SENT = frozenset({"already handled", "missing"})
"""What :meth:`Outbox.deliver` says of a message it did not try to send this time."""


async def requeue_stranded(ctx: JobContext, *, grace: timedelta = STRANDED_GRACE) -> int:
    """Queue again every message that should be moving and is not (the sweep): queued or
    due for a retry longer than ``grace`` ago, or held past the send lease."""
    lease = timedelta(seconds=ctx["config"].worker.send_lease_seconds)
    return await sweep_stranded(ctx["dispatcher"], grace=grace, lease=lease)


async def sweep_after_outage(ctx: JobContext) -> int:
    """The message worker back after an outage: Redis may have restarted empty, taking
    every job queued in it, so every message that should be moving is queued again now
    (a job still there is not doubled: a queued message keeps its job ID), not once it is
    late by the sweep's grace."""
    return await requeue_stranded(ctx, grace=timedelta(0))


async def resend_unanswered(ctx: JobContext, *, now: datetime | None = None) -> int:
    """Send once more the messages whose answer was lost and that no delivery report
    settled within ``worker.unknown_answer_retry_minutes``."""
    wait = timedelta(minutes=ctx["config"].worker.unknown_answer_retry_minutes)
    return await resend_lost(ctx["dispatcher"], wait=wait, now=now)


async def escalate_overdue(ctx: JobContext) -> int:
    """Move complaints past their due date one level up."""
    return await ctx["lifecycle"].escalate_overdue()


async def feedback_timers(ctx: JobContext) -> tuple[int, int]:
    """Remind citizens who have not answered the feedback question; close after longer."""
    return await ctx["lifecycle"].feedback_timers()


async def run_campaign(ctx: JobContext, campaign_id: int, *, request_id: str | None = None) -> str:
    """Write and send a campaign's recipients for a while (continues in a new job, which
    carries ``request_id`` on: :class:`~gateway.jobs.dispatch.ArqRunScheduler`)."""
    with logs.bound(request_id=request_id):
        return await ctx["campaign_runner"].run(campaign_id)


async def resume_campaigns(ctx: JobContext) -> int:
    """Queue every campaign marked sending: after a restart, or a job lost with a worker."""
    return await resume_sending(ctx["campaign_scheduler"])

"""Handing work to the arq workers: the queues, the job IDs, and the dispatchers the
domain is given (its Protocols :class:`~gateway.sms.outbox.Dispatcher`,
:class:`~gateway.sms.delivery.SecondChance` and
:class:`~gateway.campaigns.service.RunScheduler`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

from gateway.ops import logs

__all__ = [
    "BULK_QUEUE",
    "QUEUE",
    "ArqDispatcher",
    "ArqRunScheduler",
    "ArqSecondChance",
    "health_check_key",
    "send_sms_job_id",
]

QUEUE = "sampark:queue"
BULK_QUEUE = "sampark:bulk"
"""Campaigns have their own queue and worker: a large campaign never delays a citizen's
acknowledgement or a lifecycle message on :data:`QUEUE`."""


def health_check_key(queue: str = QUEUE) -> str:
    """Where the worker of ``queue`` keeps its health record (what ``/healthz`` looks for)."""
    return f"{queue}:health-check"


def send_sms_job_id(message_id: int) -> str:
    """One job per message: arq refuses a second job with the same ID while it exists."""
    return f"sms:{message_id}"


def _traced() -> dict[str, Any]:
    """A job's keyword arguments carrying the request ID of the context queuing it (its
    log lines then name the request that led to it: :func:`gateway.ops.logs.bound`)."""
    request_id = logs.request_id()
    return {"request_id": request_id} if request_id is not None else {}


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
        kwargs = _traced()
        async with self.pool.pipeline(transaction=False) as pipe:
            for message_id in dict.fromkeys(message_ids):
                job_id = send_sms_job_id(message_id) + (f":{tag}" if tag else "")
                job = serialize_job(
                    "send_sms",
                    (message_id,),
                    kwargs,
                    None,
                    now,
                    serializer=self.pool.job_serializer,
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
            **_traced(),
            _job_id=f"{send_sms_job_id(message_id)}:second",
            _queue_name=self.queue,
            _defer_by=self.delay,
        )


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
            "run_campaign",
            campaign_id,
            **_traced(),
            _job_id=job_id,
            _queue_name=self.queue,
            _defer_until=at,
        )

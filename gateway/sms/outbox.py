"""Outbound SMS: written in the transaction that decides to send, delivered by the worker.

The row is the truth. A job only moves a message forward (queued -> sending -> sent ->
delivered, or failed), so a job run twice, or a message queued twice, sends one SMS.

A send whose answer was lost (the provider may have taken it) is never sent again
blindly: it becomes "unknown" (sent, answer unknown). A delivery report to its number
settles it (:func:`record_delivery_report`); with none after a wait it is sent once more
(:func:`retry_unanswered`), the one place a message may reach a phone twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiohttp
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from gateway.channels.base import (
    DeliveryReport,
    DeliveryState,
    OutgoingSms,
    Provider,
)
from gateway.sms.delivery import (
    STALE_SENDING,
    ClaimedMessage,
    DeliveryResult,
    SecondChance,
    SentRow,
    after_final_failure,
    claim_messages,
    mark_opted_out,
    record_sent,
    send_request,
)
from gateway.sms.templates import RenderedSms
from gateway.storage.group_commit import GroupWriter
from gateway.storage.models import (
    MessageStatus,
    OutboundMessage,
)
from gateway.storage.sql import insert_rows, param
from gateway.text.phone import mask_phone

__all__ = [
    "UNANSWERED_RETRIES",
    "Dispatcher",
    "MessageDraft",
    "Outbox",
    "ReportTooEarly",
    "StrandedMessage",
    "TransientSendFailure",
    "adopt_unanswered",
    "awaiting_answer",
    "next_unanswered_retry",
    "queue_messages",
    "record_delivery_report",
    "retry_unanswered",
    "stranded_messages",
]

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    """Hands written messages to the worker (arq); called after the writing transaction."""

    async def dispatch(self, message_ids: Sequence[int]) -> None: ...


class TransientSendFailure(Exception):
    """The provider may take the message later: the job should be retried."""


class ReportTooEarly(Exception):
    """A delivery report whose ID is none of ours, to a number with a send still waiting
    for its answer: it may be that send's. Take it again later (a callback answers 503)."""


@dataclass(frozen=True, slots=True)
class MessageDraft:
    """A message decided on, not yet written: what :func:`queue_messages` writes."""

    sms: RenderedSms
    recipient: str
    provider: str
    idempotency_key: str
    complaint_id: int | None = None


async def queue_messages(
    drafts: Sequence[MessageDraft], *, using_db: BaseDBAsyncClient
) -> list[int]:
    """Write messages to send, inside the caller's transaction: the IDs, one per draft.

    One batched ``INSERT`` and a ``SELECT`` of the IDs. The idempotency key makes it safe
    to repeat: a key already written (or given twice) writes nothing, and its ID is the
    message already there.
    """
    if not drafts:
        return []
    fresh: dict[str, MessageDraft] = {}
    for d in drafts:
        fresh.setdefault(d.idempotency_key, d)
    now = datetime.now(UTC)
    await insert_rows(
        using_db,
        OutboundMessage._meta.db_table,
        NEW_MESSAGE_COLUMNS,
        [
            new_message_row(
                d.sms,
                recipient=d.recipient,
                provider=d.provider,
                idempotency_key=d.idempotency_key,
                at=now,
                complaint_id=d.complaint_id,
            )
            for d in fresh.values()
        ],
        skip_conflicts_on="idempotency_key",
    )
    keys = list(fresh)
    ids: dict[str, int] = {}
    for start in range(0, len(keys), 1000):  # within any driver's limit on parameters
        some = keys[start : start + 1000]
        marks = ", ".join(param(using_db, i) for i in range(1, len(some) + 1))
        found = await using_db.execute_query_dict(
            f'SELECT "idempotency_key", "id" FROM "{OutboundMessage._meta.db_table}" '
            f'WHERE "idempotency_key" IN ({marks})',
            some,
        )
        ids.update((str(r["idempotency_key"]), int(r["id"])) for r in found)
    return [ids[d.idempotency_key] for d in drafts]


NEW_MESSAGE_COLUMNS = (
    "complaint_id",
    "campaign_id",
    "recipient",
    "template",
    "language",
    "text",
    "encoding",
    "segments",
    "dlt_template_id",
    "provider",
    "idempotency_key",
    "status",
    "attempts",
    "second_chance",
    "essential",
    "created_at",
    "updated_at",
)
"""The columns of a new message's row, as :func:`new_message_row` gives them (the rest
starts empty)."""


def new_message_row(
    sms: RenderedSms,
    *,
    recipient: str,
    provider: str,
    idempotency_key: str,
    at: datetime,
    complaint_id: int | None = None,
    campaign_id: int | None = None,
    held: bool = False,
) -> tuple[Any, ...]:
    """A new message's row for :data:`NEW_MESSAGE_COLUMNS`: queued, or ``held`` already by
    the writer, which sends it next ("sending", first attempt)."""
    return (
        complaint_id,
        campaign_id,
        recipient,
        sms.template,
        sms.language,
        sms.text,
        sms.encoding.value,
        sms.segments,
        sms.dlt_template_id,
        provider,
        idempotency_key,
        (MessageStatus.SENDING if held else MessageStatus.QUEUED).value,
        1 if held else 0,
        False,
        sms.essential,
        at,
        at,
    )


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


async def _record_sent_now(rows: Sequence[SentRow]) -> list[None]:
    async with in_transaction() as conn:
        await record_sent(conn, rows)
    return [None] * len(rows)


class Outbox:
    """Delivers queued messages through one provider and records what becomes of them.

    Each goes with its template's DLT ID and ``dlt_entity_id`` (``sms.dlt_entity_id``), for
    a provider that sends them. Claims and results of the messages being sent at once are
    written together (:class:`~gateway.storage.group_commit.GroupWriter`): one statement
    for many messages.
    """

    def __init__(
        self,
        *,
        provider: Provider,
        session: aiohttp.ClientSession,
        dlt_entity_id: str | None = None,
        second_chance: SecondChance | None = None,
        lease: timedelta = STALE_SENDING,
    ) -> None:
        """``lease``: how long a claim holds a message (``worker.send_lease_seconds``)."""
        self.provider = provider
        self.session = session
        self.dlt_entity_id = dlt_entity_id
        self.second_chance = second_chance
        self._claims: GroupWriter[int, ClaimedMessage | None] = GroupWriter(
            functools.partial(claim_messages, lease=lease)
        )
        self._results: GroupWriter[SentRow, None] = GroupWriter(_record_sent_now)

    async def deliver(
        self, message_id: int, *, final_attempt: bool, retry_in: timedelta = timedelta(0)
    ) -> DeliveryResult:
        """Send message ``message_id`` once.

        Raises :class:`TransientSendFailure` when it should be tried again, ``retry_in``
        from now (never on the ``final_attempt``, which marks it failed instead).
        """
        msg = await self._claims.submit(message_id)
        if msg is None:
            found = await OutboundMessage.filter(id=message_id).values_list("status", flat=True)
            if not found:
                log.error("message %s does not exist", message_id)
                return DeliveryResult(MessageStatus.FAILED, "missing")
            # Sent, delivered or failed already (or held by another delivery): a re-run
            # job must not send it again.
            return DeliveryResult(MessageStatus(str(found[0])), "already handled")
        sms = OutgoingSms(
            text=msg.text,
            recipients=(msg.recipient,),
            dlt_template_id=msg.dlt_template_id,
            dlt_entity_id=self.dlt_entity_id,
        )
        results = await send_request(
            [msg],
            sms,
            provider=self.provider,
            session=self.session,
            may_retry=lambda _: not final_attempt,
            retry_in=retry_in,
            second_chance=self.second_chance,
            write_sent=self._write_sent,
        )
        result = results[msg.id]
        if result.status is MessageStatus.RETRYING:
            raise TransientSendFailure(result.detail)
        return result

    async def _write_sent(self, rows: Sequence[SentRow]) -> None:
        for row in rows:
            await self._results.submit(row)


async def record_delivery_report(
    report: DeliveryReport,
    *,
    second_chance: SecondChance | None = None,
    answer_window: timedelta | None = None,
    now: datetime | None = None,
) -> bool:
    """Apply a provider's delivery report; False when no message has that ID.

    Reports move a message forward only: a late in-flight report never undoes a final
    state, and a failure report counts only for a message in flight (a repeated one, or
    one arriving after its second chance was scheduled, changes nothing). A delivery
    report always wins: the citizen has the message.

    A report whose ID is unknown (the send's answer, which held it, was lost) settles a
    message to its number in "unknown" state sent within ``answer_window``
    (:func:`adopt_unanswered`). One that comes while a send to its number still waits for
    its answer raises :class:`ReportTooEarly`: the provider delivered, and reported, before
    the gateway had its answer (or gave up on it), and the report, sent again, will find
    the message by its ID or "unknown". Dropped, it would leave that message to be sent
    a second time after the wait.
    """
    msg = await OutboundMessage.filter(provider_message_id=report.provider_message_id).first()
    if msg is None and answer_window is not None:
        msg = await adopt_unanswered(report, window=answer_window, now=now)
        if msg is None and await _send_in_flight(report.phone):
            raise ReportTooEarly(f"a send to {mask_phone(report.phone)} awaits its answer")
    if msg is None:
        return False
    if report.state is DeliveryState.IN_FLIGHT:
        if not msg.status.is_final:
            await OutboundMessage.filter(id=msg.id).update(provider_status=report.provider_status)
        return True
    if report.state is DeliveryState.DELIVERED:
        await (
            OutboundMessage.filter(id=msg.id)
            .exclude(status=MessageStatus.DELIVERED)
            .update(
                status=MessageStatus.DELIVERED,
                provider_status=report.provider_status,
                delivered_at=datetime.now(UTC),
            )
        )
        return True
    failed = await OutboundMessage.filter(id=msg.id, status=MessageStatus.SENT).update(
        status=MessageStatus.FAILED,
        provider_status=report.provider_status,
        last_error=report.failure_reason or report.provider_status,
    )
    if failed:
        if report.opted_out:
            await mark_opted_out([msg.recipient])
        await after_final_failure(msg.id, second_chance)
    return True


async def _send_in_flight(phone: str | None) -> bool:
    """Whether a message to ``phone`` is being sent (claimed, its answer not recorded)."""
    if phone is None:
        return False
    return await OutboundMessage.filter(recipient=phone, status=MessageStatus.SENDING).exists()


async def adopt_unanswered(
    report: DeliveryReport, *, window: timedelta, now: datetime | None = None
) -> OutboundMessage | None:
    """The "unknown" message a report whose ID matches none of ours is for: given that ID
    and moved to "sent" (the provider had it). None when there is none.

    AT's report names the number, not our message: it goes to the oldest message to that
    number whose answer was lost within ``window``. Two such messages to one number are
    told apart by order only: AT reports in the order it took them, and the second
    report's new ID goes to the second message. Later reports find the message by the ID.
    """
    if report.phone is None:
        return None
    now = now or datetime.now(UTC)
    for _ in range(3):  # a concurrent report for the same ID may adopt first
        candidate = (
            await OutboundMessage.filter(
                recipient=report.phone, status=MessageStatus.UNKNOWN, sent_at__gte=now - window
            )
            .order_by("sent_at", "id")
            .first()
        )
        if candidate is None:
            return None
        adopted = await OutboundMessage.filter(
            id=candidate.id, status=MessageStatus.UNKNOWN
        ).update(
            status=MessageStatus.SENT,
            provider_message_id=report.provider_message_id,
            provider_status=report.provider_status,
        )
        if adopted:
            log.info(
                "message %s to %s: answer lost, settled by a delivery report",
                candidate.id,
                mask_phone(report.phone),
            )
            return await OutboundMessage.get(id=candidate.id)
        mine = await OutboundMessage.filter(provider_message_id=report.provider_message_id).first()
        if mine is not None:
            return mine
    return None


@dataclass(frozen=True, slots=True)
class StrandedMessage:
    """A message that should be moving and is not (see :func:`stranded_messages`)."""

    id: int
    status: MessageStatus
    since: datetime
    """When it should have moved: written (queued), due again (retrying), or its claim's
    lease over (sending)."""


async def stranded_messages(
    *, grace: timedelta, lease: timedelta = STALE_SENDING, limit: int = 500
) -> list[StrandedMessage]:
    """Messages no job is moving, oldest first: queued more than ``grace`` ago (a crash
    between commit and enqueue), retrying more than ``grace`` past their due time (the
    job that was to retry them lost with Redis), and sending past their ``lease`` (the
    worker died mid-send).

    A campaign's messages are not among them: the campaign's own job sends them, at its
    rate and only while the campaign is sending."""
    now = datetime.now(UTC)
    cutoff = now - grace
    rows = await (
        OutboundMessage.filter(campaign_id__isnull=True)
        .filter(
            Q(status=MessageStatus.QUEUED, created_at__lt=cutoff)
            | Q(status=MessageStatus.RETRYING, next_attempt_at__lt=cutoff)
            | Q(status=MessageStatus.SENDING, updated_at__lt=now - lease)
        )
        .order_by("id")
        .limit(limit)
        .values_list("id", "status", "created_at", "next_attempt_at", "updated_at")
    )
    stranded = []
    for message_id, status, written, due, claimed in rows:
        state = MessageStatus(status)
        when = {
            MessageStatus.QUEUED: written,
            MessageStatus.RETRYING: due,
            MessageStatus.SENDING: claimed + lease,
        }[state]
        stranded.append(StrandedMessage(int(str(message_id)), state, when))
    return stranded

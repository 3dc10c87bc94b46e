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
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from gateway.channels.base import (
    DeliveryReport,
    DeliveryState,
    OutgoingSms,
    Provider,
    ProviderError,
    RecipientResult,
    SendOutcome,
)
from gateway.sms.templates import RenderedSms
from gateway.storage.group_commit import GroupWriter
from gateway.storage.models import (
    Citizen,
    ComplaintEvent,
    EventKind,
    MessageStatus,
    OutboundMessage,
)
from gateway.storage.sql import insert_rows, param, update_rows
from gateway.text.phone import mask_phone

__all__ = [
    "UNANSWERED_RETRIES",
    "DeliveryResult",
    "Dispatcher",
    "MessageDraft",
    "Outbox",
    "ReportTooEarly",
    "StrandedMessage",
    "TransientSendFailure",
    "adopt_unanswered",
    "awaiting_answer",
    "mark_opted_out",
    "next_unanswered_retry",
    "queue_messages",
    "record_delivery_report",
    "record_unanswered",
    "retry_unanswered",
    "stranded_messages",
]

log = logging.getLogger(__name__)

STALE_SENDING = timedelta(minutes=2)
"""The lease of a claim by default (``worker.send_lease_seconds``): a message "sending" for
longer than this was left by a worker that died mid-send (the send job's timeout is 60 s),
and is taken again (:func:`claim_messages`, and the sweep's :func:`stranded_messages`).
Independent of arq's own in-progress timeout, which follows the longest job a worker has
(ten minutes)."""


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


SentRow = tuple[str, str | None, str | None, datetime, datetime | None, None, datetime, int]
"""A message the provider took, as :func:`record_sent` writes it (see :func:`sent_row`)."""
_SENT_COLUMNS = (
    "status",
    "provider_message_id",
    "provider_status",
    "sent_at",
    "delivered_at",
    "last_error",
    "updated_at",
)


def sent_row(message_id: int, result: RecipientResult, *, at: datetime) -> SentRow:
    """The row recording that the provider took message ``message_id``."""
    delivered = result.outcome is SendOutcome.DELIVERED
    status = MessageStatus.DELIVERED if delivered else MessageStatus.SENT
    return (
        status.value,
        result.provider_message_id,
        result.provider_status,
        at,
        at if delivered else None,
        None,
        at,
        message_id,
    )


async def record_sent(conn: BaseDBAsyncClient, rows: Sequence[SentRow]) -> None:
    """Mark messages sent (or delivered) with the provider's IDs: one batched statement."""
    await update_rows(conn, OutboundMessage._meta.db_table, _SENT_COLUMNS, rows)


UNANSWERED_RETRIES = 1
"""How often a message whose answer was lost is sent again when no delivery report came:
once. Lost again, it stays "unknown" for good (a report may still settle it)."""


async def record_unanswered(
    conn: BaseDBAsyncClient, message_ids: Sequence[int], *, how: str, at: datetime
) -> None:
    """Mark messages whose request's answer was lost ``how``: "unknown" (sent, answer
    unknown), ``sent_at`` the time ``at`` the request was made, no provider ID (an earlier
    send's would catch this one's reports). Not retried now: see :func:`retry_unanswered`."""
    if not message_ids:
        return
    await (
        OutboundMessage.filter(id__in=list(message_ids))
        .using_db(conn)
        .update(
            status=MessageStatus.UNKNOWN,
            sent_at=at,
            provider_message_id=None,
            last_error=f"answer lost: {how}",
            lost_answers=F("lost_answers") + 1,
        )
    )


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


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    status: MessageStatus
    detail: str


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A message this worker now holds ("sending"): what it needs to send it."""

    id: int
    recipient: str
    text: str
    attempts: int
    """Attempts so far, this one included."""
    dlt_template_id: str | None = None


async def claim_messages(
    message_ids: Sequence[int],
    *,
    conn: BaseDBAsyncClient | None = None,
    lease: timedelta = STALE_SENDING,
) -> list[ClaimedMessage | None]:
    """Move each message to "sending" if it may be sent now; one result per ID, in order.

    Only one delivery at a time: a "sending" message is taken only when left stale (held
    longer than ``lease``). An ID given twice is claimed once (the first).
    """
    if not message_ids:
        return []
    conn = conn or get_connection("default")
    now = datetime.now(UTC)
    ids = sorted(set(message_ids))
    n = len(ids)
    marks = ", ".join(param(conn, i) for i in range(6, 6 + n))
    rows = await conn.execute_query_dict(
        f'UPDATE "{OutboundMessage._meta.db_table}" '
        f'SET "status" = {param(conn, 1)}, "attempts" = "attempts" + 1, '
        f'"updated_at" = {param(conn, 2)} '
        f'WHERE "id" IN ({marks}) AND ("status" IN ({param(conn, 3)}, {param(conn, 4)}) '
        f'OR ("status" = {param(conn, 1)} AND "updated_at" < {param(conn, 5)})) '
        'RETURNING "id", "recipient", "text", "attempts", "dlt_template_id"',
        [
            MessageStatus.SENDING.value,
            now,
            MessageStatus.QUEUED.value,
            MessageStatus.RETRYING.value,
            now - lease,
            *ids,
        ],
    )
    claimed = {
        int(r["id"]): ClaimedMessage(
            int(r["id"]),
            str(r["recipient"]),
            str(r["text"]),
            int(r["attempts"]),
            r["dlt_template_id"],
        )
        for r in rows
    }
    return [claimed.pop(i, None) for i in message_ids]


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
            reference=str(msg.id),
        )
        requested_at = datetime.now(UTC)
        try:
            results = await self.provider.send(sms, session=self.session)
        except ProviderError as e:
            return await self._failed(
                msg, str(e), transient=e.transient, final=final_attempt, retry_in=retry_in
            )
        result = next((r for r in results if r.phone == msg.recipient), None)
        if result is None:
            return await self._failed(
                msg,
                "no answer for recipient",
                transient=True,
                final=final_attempt,
                retry_in=retry_in,
            )
        if result.outcome is SendOutcome.UNKNOWN:
            # Maybe sent: never retried now (a report may come; else retry_unanswered).
            await record_unanswered(
                get_connection("default"), [msg.id], how=result.provider_status, at=requested_at
            )
            log.warning("message %s to %s: answer lost", msg.id, mask_phone(msg.recipient))
            return DeliveryResult(MessageStatus.UNKNOWN, result.provider_status)
        if result.outcome in (SendOutcome.ACCEPTED, SendOutcome.DELIVERED):
            row = sent_row(msg.id, result, at=datetime.now(UTC))
            await self._results.submit(row)
            sent = MessageStatus(row[0])
            log.info("message %s %s to %s", msg.id, sent.value, mask_phone(msg.recipient))
            return DeliveryResult(sent, result.provider_status)
        await OutboundMessage.filter(id=msg.id).update(provider_status=result.provider_status)
        return await self._failed(
            msg,
            f"{result.provider_status} ({result.status_code})",
            transient=result.outcome is SendOutcome.TRANSIENT_FAILURE,
            final=final_attempt,
            retry_in=retry_in,
            opted_out=result.opted_out,
        )

    async def _failed(
        self,
        msg: ClaimedMessage,
        reason: str,
        *,
        transient: bool,
        final: bool,
        retry_in: timedelta,
        opted_out: bool = False,
    ) -> DeliveryResult:
        if transient and not final:
            # When the retry is due: past it (and a grace), the sweep knows its job is lost.
            await OutboundMessage.filter(id=msg.id).update(
                status=MessageStatus.RETRYING,
                last_error=reason,
                next_attempt_at=datetime.now(UTC) + retry_in,
            )
            log.warning("message %s: transient failure, will retry: %s", msg.id, reason)
            raise TransientSendFailure(reason)
        await OutboundMessage.filter(id=msg.id).update(
            status=MessageStatus.FAILED, last_error=reason
        )
        log.warning("message %s to %s failed: %s", msg.id, mask_phone(msg.recipient), reason)
        if opted_out:
            # The provider says the number refused messages: stop what is optional.
            await mark_opted_out(msg.recipient)
        await after_final_failure(msg.id, self.second_chance)
        return DeliveryResult(MessageStatus.FAILED, reason)


class SecondChance(Protocol):
    """Schedules the one later retry of a failed essential message, :attr:`delay` later."""

    @property
    def delay(self) -> timedelta: ...

    async def schedule(self, message_id: int) -> None: ...


async def after_final_failure(message_id: int, second_chance: SecondChance | None) -> None:
    """An essential message about a complaint (its acknowledgement, its feedback question:
    the complaint cannot do without them) that failed gets one more try later; failing
    that, the complaint is flagged so that staff can reach the citizen another way."""
    msg = await OutboundMessage.get_or_none(id=message_id)
    if msg is None or not msg.essential or msg.complaint_id is None:  # type: ignore[attr-defined]
        return
    if not msg.second_chance and second_chance is not None:
        claimed = await OutboundMessage.filter(id=msg.id, second_chance=False).update(
            second_chance=True,
            status=MessageStatus.RETRYING,
            next_attempt_at=datetime.now(UTC) + second_chance.delay,
        )
        if claimed:
            await second_chance.schedule(msg.id)
        return
    await ComplaintEvent.create(
        complaint_id=msg.complaint_id,  # type: ignore[attr-defined]
        kind=EventKind.MESSAGE_FAILED,
        actor="system",
        remark=f"{msg.template} could not be delivered: {msg.last_error}",
    )


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
            await mark_opted_out(msg.recipient)
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


async def mark_opted_out(phone: str) -> None:
    """Remember that ``phone`` opted out, even when it has never written to us (a number
    from a campaign's CSV has no citizen record yet): the next campaign skips it."""
    if await Citizen.filter(phone=phone).update(opted_out=True):
        return
    try:
        await Citizen.create(phone=phone, opted_out=True)
    except IntegrityError:  # written meanwhile by a registration or another report
        await Citizen.filter(phone=phone).update(opted_out=True)


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

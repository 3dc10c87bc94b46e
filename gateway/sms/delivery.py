"""The one delivery path: one provider request for messages held for sending, and what
became of each recorded.

A single SMS (:class:`~gateway.sms.outbox.Outbox`) and a campaign's batch
(:class:`~gateway.campaigns.runner.CampaignRunner`) are both sent by :func:`send_request`:
a message the provider took is "sent" (or "delivered") with the provider's ID; one whose
answer was lost is "unknown", never sent again blindly (see
:mod:`gateway.sms.unanswered`); a transient failure is "retrying" while the caller allows
another try, else "failed"; a permanent one is "failed", and a recipient who refused
messages is opted out, whether or not the number has a citizen record. A failed
essential message gets its second chance (:func:`after_final_failure`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

import aiohttp
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from gateway.channels.base import OutgoingSms, Provider, ProviderError, RecipientResult, SendOutcome
from gateway.sms.unanswered import record_unanswered
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
    "SENT_COLUMNS",
    "STALE_SENDING",
    "ClaimedMessage",
    "DeliveryResult",
    "SecondChance",
    "SentRow",
    "after_final_failure",
    "claim_messages",
    "mark_opted_out",
    "record_sent",
    "send_request",
    "sent_row",
]

log = logging.getLogger(__name__)

STALE_SENDING = timedelta(minutes=2)
"""The lease of a claim by default (``worker.send_lease_seconds``): a message "sending" for
longer than this was left by a worker that died mid-send (the send job's timeout is 60 s),
and is taken again (:func:`claim_messages`, and the sweep's stranded messages).
Independent of arq's own in-progress timeout, which follows the longest job a worker has
(ten minutes)."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What became of one message of a request."""

    status: MessageStatus
    detail: str
    transient: bool = False
    """The provider struggled (a transient failure, a lost answer): the sender backs off."""
    template: str | None = None
    """The message's template, where the sender knows it (a single SMS's delivery)."""


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A message this worker now holds ("sending"): what it needs to send it."""

    id: int
    recipient: str
    text: str
    attempts: int
    """Attempts so far, this one included."""
    dlt_template_id: str | None = None
    template: str | None = None
    """The SMS template it was written from (what the metrics count it by)."""


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
        'RETURNING "id", "recipient", "text", "attempts", "dlt_template_id", "template"',
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
            r["template"],
        )
        for r in rows
    }
    return [claimed.pop(i, None) for i in message_ids]


SentRow = tuple[str, str | None, str | None, datetime, datetime | None, None, datetime, int]
"""A message the provider took, as :func:`record_sent` writes it (see :func:`sent_row`)."""
SENT_COLUMNS = (
    "status",
    "provider_message_id",
    "provider_status",
    "sent_at",
    "delivered_at",
    "last_error",
    "updated_at",
)
"""The columns :func:`record_sent` sets, in a :data:`SentRow`'s order (its ID last)."""


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
    await update_rows(conn, OutboundMessage._meta.db_table, SENT_COLUMNS, rows)


async def mark_opted_out(phones: Sequence[str], *, conn: BaseDBAsyncClient | None = None) -> None:
    """Remember that ``phones`` opted out, even those that never wrote to us (a number
    from a campaign's CSV has no citizen record yet): the next campaign skips them."""
    if not phones:
        return
    conn = conn or get_connection("default")
    now = datetime.now(UTC)
    # A citizen written meanwhile (a registration, another report) is the conflict skipped.
    await insert_rows(
        conn,
        Citizen._meta.db_table,
        ("phone", "latin_only", "opted_out", "created_at", "updated_at"),
        [(p, False, True, now, now) for p in dict.fromkeys(phones)],
        skip_conflicts_on="phone",
    )
    await (
        Citizen.filter(phone__in=list(phones)).using_db(conn).update(opted_out=True, updated_at=now)
    )


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


WriteSent = Callable[[Sequence[SentRow]], Awaitable[object]]
"""Writes the rows of messages the provider took (:func:`record_sent`, or a group
commit of them with other requests')."""


async def send_request(
    held: Sequence[ClaimedMessage],
    sms: OutgoingSms,
    *,
    provider: Provider,
    session: aiohttp.ClientSession,
    may_retry: Callable[[ClaimedMessage], bool],
    retry_in: timedelta = timedelta(0),
    second_chance: SecondChance | None = None,
    write_sent: WriteSent | None = None,
) -> dict[int, DeliveryResult]:
    """Send ``sms`` (its text and DLT IDs) to the ``held`` messages' recipients in one
    request, and record what became of each; the results by message ID.

    A transient failure is retried (``retry_in`` from now) when ``may_retry(message)``,
    else the message fails. ``write_sent`` writes the rows of the messages the provider
    took (by default in the transaction that records the rest).
    """
    if not held:
        return {}
    sms = replace(sms, recipients=tuple(m.recipient for m in held), bulk=len(held) > 1)
    requested_at = datetime.now(UTC)
    try:
        answer: Sequence[RecipientResult] | ProviderError = await provider.send(
            sms, session=session
        )
    except ProviderError as e:
        answer = e
    return await _record(
        held,
        answer,
        requested_at=requested_at,
        may_retry=may_retry,
        retry_in=retry_in,
        second_chance=second_chance,
        write_sent=write_sent,
    )


@dataclass
class _Answers:
    """A request's answer sorted by what it asks to write."""

    sent: list[SentRow]
    lost: dict[str, list[int]]
    """Messages whose answer was lost, by how."""
    retrying: list[tuple[str, datetime, datetime, int]]
    failed: list[tuple[str, datetime, int]]
    provider_statuses: list[tuple[str, int]]
    opted_out: list[str]
    results: dict[int, DeliveryResult]


def _sort(
    held: Sequence[ClaimedMessage],
    answer: Sequence[RecipientResult] | ProviderError,
    *,
    may_retry: Callable[[ClaimedMessage], bool],
    retry_at: datetime,
    now: datetime,
) -> _Answers:
    """What each held message becomes, given the request's ``answer`` (the provider's
    results, or the error that stood for all of them)."""
    out = _Answers([], {}, [], [], [], [], {})
    by_phone = {} if isinstance(answer, ProviderError) else {r.phone: r for r in answer}
    for msg in held:
        result = by_phone.get(msg.recipient)
        if isinstance(answer, ProviderError):
            reason, transient = str(answer), answer.transient
        elif result is None:
            reason, transient = "no answer for recipient", True
        elif result.outcome is SendOutcome.UNKNOWN:
            # Maybe sent: never retried now (a report may come; else retry_unanswered).
            out.lost.setdefault(result.provider_status, []).append(msg.id)
            out.results[msg.id] = DeliveryResult(
                MessageStatus.UNKNOWN, result.provider_status, transient=True
            )
            continue
        elif result.outcome in (SendOutcome.ACCEPTED, SendOutcome.DELIVERED):
            row = sent_row(msg.id, result, at=now)
            out.sent.append(row)
            out.results[msg.id] = DeliveryResult(MessageStatus(row[0]), result.provider_status)
            continue
        else:
            reason = f"{result.provider_status} ({result.status_code})"
            transient = result.outcome is SendOutcome.TRANSIENT_FAILURE
            out.provider_statuses.append((result.provider_status, msg.id))
            if result.opted_out:
                out.opted_out.append(msg.recipient)
        if transient and may_retry(msg):
            out.retrying.append((reason, retry_at, now, msg.id))
            status = MessageStatus.RETRYING
        else:
            out.failed.append((reason, now, msg.id))
            status = MessageStatus.FAILED
        out.results[msg.id] = DeliveryResult(status, reason, transient=transient)
    return out


async def _record(
    held: Sequence[ClaimedMessage],
    answer: Sequence[RecipientResult] | ProviderError,
    *,
    requested_at: datetime,
    may_retry: Callable[[ClaimedMessage], bool],
    retry_in: timedelta,
    second_chance: SecondChance | None,
    write_sent: WriteSent | None,
) -> dict[int, DeliveryResult]:
    now = datetime.now(UTC)
    # When the retry is due: past it (and a grace), the sweep knows its job is lost.
    out = _sort(held, answer, may_retry=may_retry, retry_at=now + retry_in, now=now)
    unsent = out.lost or out.retrying or out.failed
    if unsent or (out.sent and write_sent is None):
        async with in_transaction() as conn:
            for how, ids in out.lost.items():
                await record_unanswered(conn, ids, how=how, at=requested_at)
            await _record_failures(conn, out)
            if write_sent is None:
                await record_sent(conn, out.sent)
    if write_sent is not None and out.sent:
        await write_sent(out.sent)
    _log(held, out)
    if out.failed:
        # Campaigns' messages are about no complaint: one look for a request's failures.
        for message_id in await OutboundMessage.filter(
            id__in=[r[-1] for r in out.failed], essential=True, complaint_id__isnull=False
        ).values_list("id", flat=True):
            await after_final_failure(int(str(message_id)), second_chance)
    return out.results


async def _record_failures(conn: BaseDBAsyncClient, out: _Answers) -> None:
    """The failed and retrying messages, with the provider's status where it answered,
    and the recipients who opted out."""
    table = OutboundMessage._meta.db_table
    await update_rows(conn, table, ("provider_status",), out.provider_statuses)
    await update_rows(
        conn,
        table,
        ("status", "last_error", "next_attempt_at", "updated_at"),
        [(MessageStatus.RETRYING.value, *r) for r in out.retrying],
    )
    await update_rows(
        conn,
        table,
        ("status", "last_error", "updated_at"),
        [(MessageStatus.FAILED.value, *r) for r in out.failed],
    )
    await mark_opted_out(out.opted_out, conn=conn)


def _log(held: Sequence[ClaimedMessage], out: _Answers) -> None:
    # A batch the provider took whole (a campaign's usual request) has only its summary.
    whole = len(held) > 1 and len(out.sent) == len(held)
    for msg in () if whole else held:
        result = out.results[msg.id]
        if result.status is MessageStatus.UNKNOWN:
            log.warning("message %s to %s: answer lost", msg.id, mask_phone(msg.recipient))
        elif result.status is MessageStatus.RETRYING:
            log.warning("message %s: transient failure, will retry: %s", msg.id, result.detail)
        elif result.status is MessageStatus.FAILED:
            log.warning(
                "message %s to %s failed: %s", msg.id, mask_phone(msg.recipient), result.detail
            )
        elif len(held) == 1:
            log.info("message %s %s to %s", msg.id, result.status.value, mask_phone(msg.recipient))
    if len(held) > 1:
        log.info(
            "request for %d messages: %d accepted, %d answer(s) lost",
            len(held),
            len(out.sent),
            sum(len(ids) for ids in out.lost.values()),
        )

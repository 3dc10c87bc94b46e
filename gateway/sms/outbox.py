"""Outbound SMS: written in the transaction that decides to send, delivered by the worker.

The row is the truth. A job only moves a message forward (queued -> sending -> sent ->
delivered, or failed), so a job run twice, or a message queued twice, sends one SMS.
This module is the queue (:func:`queue_messages`) and the worker's side of it
(:class:`Outbox`); the send and what is recorded of it are :mod:`gateway.sms.delivery`'s
(a campaign's batches go the same way), a lost answer :mod:`gateway.sms.unanswered`'s,
the provider's later reports :mod:`gateway.sms.reports`'.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiohttp
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from gateway.channels.base import OutgoingSms, Provider
from gateway.sms.delivery import (
    STALE_SENDING,
    ClaimedMessage,
    DeliveryResult,
    SecondChance,
    SentRow,
    claim_messages,
    record_sent,
    send_request,
)
from gateway.sms.templates import RenderedSms
from gateway.storage.group_commit import GroupWriter
from gateway.storage.models import MessageStatus, OutboundMessage
from gateway.storage.sql import insert_rows, param

__all__ = [
    "NEW_MESSAGE_COLUMNS",
    "Dispatcher",
    "MessageDraft",
    "Outbox",
    "TransientSendFailure",
    "new_message_row",
    "queue_messages",
]

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    """Hands written messages to the worker (arq); called after the writing transaction."""

    async def dispatch(self, message_ids: Sequence[int]) -> None: ...


class TransientSendFailure(Exception):
    """The provider may take the message later: the job should be retried."""


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
        return replace(result, template=msg.template)

    async def _write_sent(self, rows: Sequence[SentRow]) -> None:
        for row in rows:
            await self._results.submit(row)

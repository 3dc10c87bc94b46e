"""Inbound SMS: what citizens and officers write to the service, understood and acted on.

A provider retries a callback until it gets a 200, so each message is recorded under its
provider ID first, and marked handled only once it has been acted on and answered: a
retry of a handled message does nothing, a retry of one whose handling failed acts on it.
Every message gets an answer in the sender's language (citizens) or the state's working
language (officers).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from gateway.channels.base import InboundSms
from gateway.complaints.lifecycle import (
    OPEN,
    Change,
    ConcurrentChange,
    IllegalTransition,
    InvalidTransfer,
    Lifecycle,
    RemarkMissing,
)
from gateway.complaints.scope import OutOfScope, officer_scope
from gateway.config import Config, Officer
from gateway.sms.notices import Notices
from gateway.sms.outbox import Dispatcher, queue_messages
from gateway.storage.models import (
    Citizen,
    Complaint,
    ComplaintEvent,
    ComplaintStatus,
    EventKind,
    InboundMessage,
)
from gateway.text.phone import mask_phone
from gateway.text.replies import Intent, Understood
from gateway.text.reply_words import Vocabulary
from gateway.text.tickets import InvalidTicket, TicketCodec

__all__ = ["CLAIM", "InboundInProgress", "Inbox"]

log = logging.getLogger(__name__)

CLAIM = timedelta(seconds=60)
"""How long one request holds an inbound SMS while handling it: a retry meanwhile is told
to come back later; a request that dies holding it loses it after this."""


class InboundInProgress(Exception):
    """Another request is handling this SMS right now: try again later."""


class Inbox:
    """Acts on inbound SMS."""

    def __init__(
        self,
        *,
        config: Config,
        notices: Notices,
        lifecycle: Lifecycle,
        tickets: TicketCodec,
        dispatcher: Dispatcher,
        vocabulary: Vocabulary,
    ) -> None:
        self.config = config
        self.vocabulary = vocabulary
        self.notices = notices
        self.lifecycle = lifecycle
        self.tickets = tickets
        self.dispatcher = dispatcher
        self._officers = {o.phone: o for o in config.officers}

    async def receive(self, sms: InboundSms) -> str:
        """Handle one inbound SMS; returns what it was understood as (or ``duplicate``).

        It is recorded under the provider that received it and that provider's ID for it.

        The SMS is recorded and claimed (:data:`CLAIM`), acted on, answered, and only then
        marked handled. A failure on the way raises, leaving it unhandled for the
        provider's retry, which does not repeat what the failed attempt did: its replies
        are keyed by the message, its action is found by its event's ``source_key``.
        Raises :class:`InboundInProgress` while another request holds the SMS.
        """
        claimed = await self._claim(sms)
        if claimed is None:
            return "duplicate"
        record, retried = claimed
        try:
            intent, complaint_id = await self._handle(sms, f"inbound:{record.id}", retried)
        except BaseException:
            await self._release(record)
            raise
        await InboundMessage.filter(id=record.id).update(
            intent=intent,
            complaint_id=complaint_id,
            handled_at=datetime.now(UTC),
            claimed_until=None,
        )
        log.info(
            "inbound SMS %s from %s: %s", sms.provider_message_id, mask_phone(sms.sender), intent
        )
        return intent

    async def _claim(self, sms: InboundSms) -> tuple[InboundMessage, bool] | None:
        """The SMS's record, held by this request, and whether it was received before;
        None when it has been handled already."""
        now = datetime.now(UTC)
        try:
            record = await InboundMessage.create(
                provider=sms.provider,
                provider_message_id=sms.provider_message_id,
                sender=sms.sender,
                text=sms.text,
                claimed_until=now + CLAIM,
            )
            return record, False
        except IntegrityError:
            pass
        record = await InboundMessage.get(
            provider=sms.provider, provider_message_id=sms.provider_message_id
        )
        if record.handled_at is None:
            # Conditional: of two retries arriving together, one takes it.
            taken = await InboundMessage.filter(
                Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
                id=record.id,
                handled_at__isnull=True,
            ).update(claimed_until=now + CLAIM)
            if taken:
                return record, True
            await record.refresh_from_db()
        if record.handled_at is not None:
            return None
        raise InboundInProgress(f"inbound SMS {sms.provider_message_id} is being handled")

    async def _release(self, record: InboundMessage) -> None:
        """After a failure: unhandled, and free for the next retry at once."""
        try:
            await InboundMessage.filter(id=record.id, handled_at__isnull=True).update(
                claimed_until=None
            )
        except Exception:
            log.warning(
                "inbound SMS %s: claim not released (it lapses by itself)",
                record.provider_message_id,
                exc_info=True,
            )

    async def _handle(self, sms: InboundSms, key: str, retried: bool) -> tuple[str, int | None]:
        """Act on and answer the SMS; its intent and the complaint it concerned."""
        officer = self._officers.get(sms.sender)
        citizen = await Citizen.get_or_none(phone=sms.sender)
        # A citizen's words are read as their own language reads them first.
        understood = self.vocabulary.understand(
            sms.text, language=citizen.language if citizen is not None and officer is None else None
        )
        language = (
            self.config.service.default_language
            if officer is not None or citizen is None or citizen.language is None
            else self.config.sms_language(
                citizen.language, latin_only=citizen.latin_only, script=citizen.script
            )
        )
        reply = _Reply(self, to=sms.sender, language=language, key=key)
        # The complaint an earlier attempt at this SMS acted on before failing.
        acted_on = (
            await ComplaintEvent.filter(source_key=key).values_list("complaint_id", flat=True)
            if retried
            else []
        )
        done = int(str(acted_on[0])) if acted_on else None
        complaint_id: int | None = None
        if understood.intent in (Intent.OFFICER_DONE, Intent.OFFICER_NOTE, Intent.OFFICER_TRANSFER):
            complaint_id = await self._officer(understood, officer, reply, done)
        elif understood.intent in (Intent.SOLVED, Intent.NOT_SOLVED):
            complaint_id = await self._feedback(understood, citizen, reply, done)
        elif understood.intent is Intent.STATUS:
            complaint_id = await self._status(understood, citizen, reply)
        elif understood.intent is Intent.HELP:
            await reply.send("help_reply", service_code=self.config.service.service_code)
        else:
            complaint_id = await self._not_understood(sms.text, citizen, reply, done)
        return understood.intent.value, complaint_id

    async def _complaint(self, raw_ticket: str, reply: _Reply) -> Complaint | None:
        try:
            ticket = self.tickets.parse(raw_ticket)
        except InvalidTicket:
            await reply.send("ticket_not_found", ticket=raw_ticket[:20])
            return None
        complaint = await Complaint.get_or_none(ticket=ticket)
        if complaint is None:
            await reply.send("ticket_not_found", ticket=ticket)
        return complaint

    async def _officer(
        self,
        understood: Understood,
        officer: Officer | None,
        reply: _Reply,
        acted_on: int | None,
    ) -> int | None:
        assert understood.ticket is not None
        complaint = await self._complaint(understood.ticket, reply)
        if complaint is None:
            return None
        # Acted on by an earlier attempt at this SMS, it may be with another officer since
        # (a transfer): only that attempt's answer is still owed.
        if officer is None:
            await reply.send("officer_refused", ticket=complaint.ticket or "")
            return complaint.id
        if complaint.id == acted_on:
            status = complaint.status.value
        else:
            try:
                change = await self._officer_acts(understood, complaint.id, officer, reply.key)
                status = change.status.value
            except OutOfScope:
                await reply.send("officer_refused", ticket=complaint.ticket or "")
                return complaint.id
            except (InvalidTransfer, RemarkMissing):
                # No such place, or where the complaint is already; DONE or NOTE with
                # nothing said of what was done: nothing recorded, the citizen told nothing.
                await reply.send("not_understood", service_code=self.config.service.service_code)
                return complaint.id
            except (IllegalTransition, ConcurrentChange):
                await complaint.refresh_from_db()
                status = complaint.status.value
        await reply.send(
            "officer_action_done",
            ticket=complaint.ticket or "",
            status=self.notices.status(status, reply.language),
        )
        return complaint.id

    async def _officer_acts(
        self, understood: Understood, complaint_id: int, officer: Officer, source_key: str
    ) -> Change:
        """The officer's action, within their scope (the API's rule:
        :mod:`gateway.complaints.scope`), marked with the SMS it came from (``source_key``)
        so that a retry never acts twice."""
        remark = understood.remark or ""
        actor = f"officer:{officer.code}"
        scope = officer_scope(officer, self.config)
        if understood.intent is Intent.OFFICER_TRANSFER:
            target, _, why = remark.partition(" ")
            where = self._transfer_target(target)
            if where is None:
                raise InvalidTransfer("department", "not a department or block")
            return await self.lifecycle.transfer(
                complaint_id,
                actor=actor,
                remark=why or remark,
                scope=scope,
                source_key=source_key,
                **where,
            )
        if understood.intent is Intent.OFFICER_DONE:
            return await self.lifecycle.resolve(
                complaint_id, remark, actor=actor, scope=scope, source_key=source_key
            )
        return await self.lifecycle.add_note(
            complaint_id, remark, actor=actor, scope=scope, source_key=source_key
        )

    def _transfer_target(self, word: str) -> dict[str, str] | None:
        """A department (code or English name's first word) or a block code."""
        key = word.casefold().strip(".,:;")
        for dept in self.config.departments:
            names = {dept.code, *(n.casefold().split()[0] for n in dept.name.values())}
            if key in names:
                return {"department": dept.code}
        for district in self.config.districts:
            if any(b.code == key for b in district.blocks):
                return {"block": key}
        return None

    async def _feedback(
        self,
        understood: Understood,
        citizen: Citizen | None,
        reply: _Reply,
        acted_on: int | None,
    ) -> int | None:
        if acted_on is not None:
            return acted_on  # the lifecycle's own SMS answered it
        if citizen is None:
            await reply.send("not_understood", service_code=self.config.service.service_code)
            return None
        awaiting = Complaint.filter(citizen_id=citizen.id, status=ComplaintStatus.RESOLVED)
        if understood.ticket is not None:
            try:
                awaiting = awaiting.filter(ticket=self.tickets.parse(understood.ticket))
            except InvalidTicket:
                await reply.send("ticket_not_found", ticket=understood.ticket[:20])
                return None
        # Without a ticket, the answer is to the prompt sent last.
        complaint = await awaiting.order_by("-resolved_at").first()
        if complaint is None:
            await reply.send("not_understood", service_code=self.config.service.service_code)
            return None
        try:
            await self.lifecycle.feedback(
                complaint.id, satisfied=understood.intent is Intent.SOLVED, source_key=reply.key
            )
        except (IllegalTransition, ConcurrentChange):
            pass  # answered twice, or closed meanwhile: the first outcome stands
        return complaint.id

    async def _status(
        self, understood: Understood, citizen: Citizen | None, reply: _Reply
    ) -> int | None:
        if understood.ticket is not None:
            complaint = await self._complaint(understood.ticket, reply)
        elif citizen is not None:
            complaint = await Complaint.filter(citizen_id=citizen.id).order_by("-id").first()
        else:
            complaint = None
        if complaint is None:
            if understood.ticket is None:
                await reply.send("not_understood", service_code=self.config.service.service_code)
            return None
        lang = reply.language
        await reply.send(
            "status_reply",
            ticket=complaint.ticket or "",
            status=self.notices.status(complaint.status.value, lang),
            department=self.notices.department(complaint.department, lang),
            due_date=self.notices.date(lang, complaint.due_at),
        )
        return complaint.id

    async def _not_understood(
        self, text: str, citizen: Citizen | None, reply: _Reply, acted_on: int | None
    ) -> int | None:
        await reply.send("not_understood", service_code=self.config.service.service_code)
        if acted_on is not None or citizen is None or not text.strip():
            return acted_on
        # Kept on the record when it clearly belongs to one complaint: the citizen's only
        # one that is still open or awaiting feedback.
        live = await Complaint.filter(
            citizen_id=citizen.id, status__in=(*OPEN, ComplaintStatus.RESOLVED)
        ).limit(2)
        if len(live) != 1:
            return None
        await ComplaintEvent.create(
            complaint_id=live[0].id,
            kind=EventKind.CITIZEN_MESSAGE,
            actor="citizen",
            from_status=live[0].status.value,
            to_status=live[0].status.value,
            remark=text[:1000],
            source_key=reply.key,
        )
        return live[0].id


class _Reply:
    """The answer to one inbound SMS (at most one of each kind, however often retried)."""

    def __init__(self, inbox: Inbox, *, to: str, language: str, key: str) -> None:
        self.inbox = inbox
        self.to = to
        self.language = language
        self.key = key

    async def send(self, template: str, **values: str) -> None:
        # Replies that say what the citizen may send name it in the reply's language.
        words = self.inbox.vocabulary.words_to_send(self.language)
        needed = self.inbox.notices.templates[template].variables
        draft = self.inbox.notices.draft(
            template,
            to=self.to,
            language=self.language,
            values={**{k: v for k, v in words.items() if k in needed}, **values},
            key=f"{self.key}:{template}",
            complaint_id=None,
        )
        assert draft is not None  # not opted out: a reply always goes
        async with in_transaction() as conn:
            ids = await queue_messages([draft], using_db=conn)
        await self.inbox.dispatcher.dispatch(ids)

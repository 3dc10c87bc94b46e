"""The shape every provider has, and the payloads that cross between providers and the gateway.

A provider (a "transport" in vumi's words) turns its callbacks into the plain dataclasses
below and hands them to :class:`Callbacks`; it sends SMS given an :class:`OutgoingSms`.
It knows nothing of complaints, menus or the database: what it must know of the gateway
(the region numbers are read in, how long an identifier may be) it is given at
construction (:class:`ProviderContext`, :class:`CallbackLimits`).

Its own words stay inside it: a status code or string is mapped by the provider to a
:class:`DeliveryState` or :class:`SendOutcome`, and to ``opted_out`` when it means that the
recipient refused messages; the gateway acts on those alone.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Protocol

import aiohttp
from aiohttp import web

from gateway.errors import FieldError
from gateway.text.phone import mask_phone

__all__ = [
    "CALLBACKS",
    "CallbackLimits",
    "Callbacks",
    "DeliveryReport",
    "DeliveryState",
    "InboundSms",
    "MissedCall",
    "OutgoingSms",
    "PayloadError",
    "Provider",
    "ProviderContext",
    "ProviderError",
    "RecipientResult",
    "RetryLater",
    "SendOutcome",
    "UssdHop",
    "UssdReply",
    "UssdSessionEnd",
    "describe_results",
]


class PayloadError(FieldError):
    """A callback payload is missing a field or has a malformed one (answered with a 400)."""


class RetryLater(Exception):
    """The application cannot take a callback now (answered with a 503, so that the
    provider sends it again)."""


@dataclass(frozen=True, slots=True)
class UssdHop:
    """One request of a USSD session, as the network sent it."""

    session_id: str
    service_code: str
    phone: str
    """E.164 with the leading ``+``."""
    network_code: str
    text: str
    """Everything typed in the session so far, inputs joined by ``*`` (empty on the first hop);
    only the newest input when ``latest_only``."""
    provider: str = field(kw_only=True)
    """The name of the provider whose callback brought it."""
    latest_only: bool = field(kw_only=True, default=False)
    """The network sends only the newest input (IMImobile), never the whole path: ``text``
    is that input, and an input equal to the last one is a new input, not a retry."""


@dataclass(frozen=True, slots=True)
class UssdReply:
    text: str
    end: bool
    """True closes the session on the phone; False waits for the citizen's input."""


@dataclass(frozen=True, slots=True)
class UssdSessionEnd:
    """The network's notice that a session ended, with what it knows of how."""

    session_id: str
    status: str
    phone: str | None = None
    service_code: str | None = None
    network_code: str | None = None
    duration_ms: int | None = None
    hops: int | None = None
    last_input: str | None = None
    last_response: str | None = None
    error_message: str | None = None
    cost: str | None = None
    provider: str = field(kw_only=True)
    """The name of the provider whose callback brought it."""


class DeliveryState(enum.StrEnum):
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    provider_message_id: str
    state: DeliveryState
    provider_status: str
    """The provider's own word for the status (``Success``, ``AbsentSubscriber`` ...)."""
    failure_reason: str | None = None
    phone: str | None = None
    network_code: str | None = None
    retry_count: int | None = None
    opted_out: bool = False
    """The recipient refused messages (the provider says so in its own words, e.g. a
    failure reason): what is optional is no longer sent to the number."""
    provider: str = field(kw_only=True)
    """The name of the provider whose callback brought it."""


@dataclass(frozen=True, slots=True)
class InboundSms:
    provider_message_id: str
    sender: str
    recipient: str
    text: str
    received_at: datetime | None = None
    link_id: str | None = None
    network_code: str | None = None
    provider: str = field(kw_only=True)
    """The name of the provider that received it: with ``provider_message_id``, what makes
    a retried callback a no-op."""


@dataclass(frozen=True, slots=True)
class MissedCall:
    """A call to the helpline's number that was not answered (a "missed call", given on
    purpose: the caller wants to be called or texted back)."""

    call_id: str
    caller: str
    """E.164 with the leading ``+``."""
    called: str | None
    """The number called, as the provider wrote it (the helpline's)."""
    status: str | None = None
    provider: str = field(kw_only=True)
    """The name of the provider that saw it: with ``call_id``, what makes a retried
    callback a no-op."""


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One text to one or more recipients (providers may send these in one request)."""

    text: str
    recipients: tuple[str, ...]
    bulk: bool = False
    """A large batch: the provider may queue it on its side (AT's ``enqueue=1``)."""
    dlt_template_id: str | None = None
    """The text's template as registered on India's DLT platform (from its SMS template),
    for a provider whose API takes it; the sender ID is the provider's own setting."""
    dlt_entity_id: str | None = None
    """The sender's principal entity on DLT (``sms.dlt_entity_id``), likewise."""
    reference: str | None = None
    """Our own name for the message (the outbox's message ID), for a provider that echoes
    one back in its delivery reports (Exotel's ``CustomField``)."""


class SendOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    """Taken by the provider; a delivery report will follow."""
    DELIVERED = "delivered"
    """Known delivered already (the simulator)."""
    PERMANENT_FAILURE = "permanent_failure"
    """Will never succeed as it is (invalid number, opted out, bad sender ID)."""
    TRANSIENT_FAILURE = "transient_failure"
    """Not taken, and may be if tried again later."""
    UNKNOWN = "unknown"
    """Maybe taken: the request reached the provider but its answer was lost (a timeout or
    a reset after the request was written, or a 2xx answer that cannot be read). Sending
    again may send twice. ``provider_status`` says how the answer was lost."""


@dataclass(frozen=True, slots=True)
class RecipientResult:
    phone: str
    outcome: SendOutcome
    provider_status: str
    provider_message_id: str | None = None
    status_code: int | None = None
    cost: str | None = None
    opted_out: bool = False
    """The recipient refused messages (the provider's own status says so): what is optional
    is no longer sent to the number."""


def describe_results(results: Sequence[RecipientResult]) -> str:
    """A send's results for its log line: each (masked) number and outcome for a few, the
    count per outcome for a batch (a campaign's 200 numbers a line cost a few per cent of
    its sending time, and the delivery layer logs every failure by message already)."""
    if len(results) <= 3:
        return ", ".join(f"{mask_phone(r.phone)}={r.outcome.value}" for r in results)
    counts = Counter(r.outcome.value for r in results)
    return ", ".join(f"{outcome}={n}" for outcome, n in sorted(counts.items()))


@dataclass(frozen=True, slots=True)
class CallbackLimits:
    """How long what a callback names may be for the gateway to keep it: a provider refuses
    an identifier longer than its limit (it could name nothing of ours) and drops an
    informational field that does not fit. Built by the wiring from the database's columns
    (:mod:`gateway.storage.limits`), so that a provider knows nothing of the database."""

    ussd_session_id: int
    ussd_service_code: int
    ussd_network_code: int
    ussd_end_status: int
    ussd_cost: int
    ussd_hops: tuple[int, int]
    """The smallest and largest hop count kept."""
    ussd_duration_ms: tuple[int, int]
    outbound_message_id: int
    """A delivery report's message ID (looked up among the messages sent)."""
    inbound_message_id: int


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """What the gateway gives each provider it builds, besides the provider's own settings."""

    region: str
    """The ISO 3166 region a number without a country code is read in (``service.country``)."""
    data_dir: Path
    """Where a provider may keep files of its own (the simulator's messages)."""
    limits: CallbackLimits
    callback_url: Callable[[str], str | None] = field(kw_only=True, default=lambda path: None)
    """The public URL, with its secret, of one of the provider's callback paths
    (``/sms/exotel/delivery``), for a provider that names it in each request; None when
    the gateway does not know it (the secrets not read yet)."""


class ProviderError(Exception):
    """A request that was not taken as a whole: refused before it was written (no
    connection, DNS), or answered 4xx, 5xx or 429. Nothing was sent, so a ``transient``
    one may be sent again. A request that may have been taken raises nothing: its
    recipients get :attr:`SendOutcome.UNKNOWN`."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


class Callbacks(Protocol):
    """What a provider's inbound routes hand their parsed payloads to (the application side)."""

    async def ussd_hop(self, hop: UssdHop) -> UssdReply: ...

    async def ussd_session_ended(self, end: UssdSessionEnd) -> None: ...

    async def delivery_report(self, report: DeliveryReport) -> None:
        """Apply a delivery report; raises :class:`RetryLater` when it cannot be placed
        yet, for the route to answer so that the provider sends it again."""
        ...

    async def inbound_sms(self, sms: InboundSms) -> None:
        """Act on an incoming SMS; raises (:class:`RetryLater` or any error) when it was not
        handled, for the route to answer so that the provider sends it again."""
        ...

    async def missed_call(self, call: MissedCall) -> None:
        """Act on a missed call (the caller is texted how to use the service)."""
        ...


CALLBACKS = web.AppKey("callbacks", Callbacks)
"""Where a provider's route handlers find the application side."""


class Provider(Protocol):
    """An SMS/USSD provider: its inbound routes and its way of sending."""

    name: ClassVar[str]

    def routes(self) -> list[web.AbstractRouteDef]:
        """The provider's callback routes; handlers reach the application through
        ``request.app[CALLBACKS]``."""
        ...

    async def send(
        self, sms: OutgoingSms, *, session: aiohttp.ClientSession
    ) -> list[RecipientResult]:
        """Send one text to its recipients; one result per recipient, in any order.

        Raises :class:`ProviderError` when the request as a whole was not taken; a request
        whose answer was lost after it was written gives :attr:`SendOutcome.UNKNOWN`
        results (the provider, not its caller, tells the two apart).
        """
        ...

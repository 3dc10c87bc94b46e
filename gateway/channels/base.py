"""The shape every provider has, and the payloads that cross between providers and the gateway.

A provider (a "transport" in vumi's words) turns its callbacks into the plain dataclasses
below and hands them to :class:`Callbacks`; it sends SMS given an :class:`OutgoingSms`.
It knows nothing of complaints, menus or the database.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol

import aiohttp
from aiohttp import web

from gateway.errors import FieldError

__all__ = [
    "CALLBACKS",
    "Callbacks",
    "DeliveryReport",
    "DeliveryState",
    "InboundSms",
    "OutgoingSms",
    "PayloadError",
    "Provider",
    "ProviderError",
    "RecipientResult",
    "RetryLater",
    "SendOutcome",
    "UssdHop",
    "UssdReply",
    "UssdSessionEnd",
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
    """Everything typed in the session so far, inputs joined by ``*`` (empty on the first hop)."""


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


@dataclass(frozen=True, slots=True)
class InboundSms:
    provider_message_id: str
    sender: str
    recipient: str
    text: str
    received_at: datetime | None = None
    link_id: str | None = None
    network_code: str | None = None


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One text to one or more recipients (providers may send these in one request)."""

    text: str
    recipients: tuple[str, ...]
    sender_id: str | None = None
    bulk: bool = False
    """A large batch: the provider may queue it on its side (AT's ``enqueue=1``)."""


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

    async def delivery_report(self, report: DeliveryReport) -> None: ...

    async def inbound_sms(self, sms: InboundSms) -> None:
        """Act on an incoming SMS; raises (:class:`RetryLater` or any error) when it was not
        handled, for the route to answer so that the provider sends it again."""
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

"""Exotel's status words and HTTP answers, and what each means to the gateway.

The one place Exotel's vocabulary is read: a delivery report's ``Status``, a send answer's
per-message ``Status``, and the HTTP status of a refused request. What leaves this module
is neutral: a :class:`DeliveryState`, a :class:`SendOutcome`, whether the number opted
out, and whether a refused request may be tried again. Exotel's pages disagree on the
detailed status codes, so none is relied on: they are kept as the provider's words only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from gateway.channels.base import DeliveryState, SendOutcome

__all__ = [
    "DELIVERY_STATES",
    "OPTED_OUT_STATUSES",
    "SEND_OUTCOMES",
    "delivery_state",
    "opted_out",
    "send_outcome",
    "transient_http_status",
]

DELIVERY_STATES: Final[Mapping[str, DeliveryState]] = {
    "queued": DeliveryState.IN_FLIGHT,
    "sending": DeliveryState.IN_FLIGHT,
    "submitted": DeliveryState.IN_FLIGHT,
    "sent": DeliveryState.DELIVERED,  # the callback's final success
    "delivered": DeliveryState.DELIVERED,  # newer pages' word for it
    "failed": DeliveryState.FAILED,
    "failed_dnd": DeliveryState.FAILED,
    "expired": DeliveryState.FAILED,
    "undelivered": DeliveryState.FAILED,
}
"""A delivery report's ``Status`` (lower-cased) -> our state. Any other is refused (400)."""

OPTED_OUT_STATUSES: Final = frozenset({"failed_dnd"})
"""The number is on India's Do-Not-Disturb registry (or refused the sender): what is
optional is no longer sent to it, as for Africa's Talking's ``UserInBlacklist``."""

SEND_OUTCOMES: Final[Mapping[str, SendOutcome]] = {
    "queued": SendOutcome.ACCEPTED,
    "sending": SendOutcome.ACCEPTED,
    "submitted": SendOutcome.ACCEPTED,
    "sent": SendOutcome.ACCEPTED,
    "delivered": SendOutcome.ACCEPTED,
    "failed": SendOutcome.PERMANENT_FAILURE,
    "failed_dnd": SendOutcome.PERMANENT_FAILURE,
}
"""A send answer's per-message ``Status`` -> our outcome; any other is taken as accepted
(a delivery report follows, with a word we know)."""


def delivery_state(status: str) -> DeliveryState | None:
    """Our state for a delivery report's ``Status``, or None for a word we do not know."""
    return DELIVERY_STATES.get(status.strip().lower())


def send_outcome(status: str) -> SendOutcome:
    return SEND_OUTCOMES.get(status.strip().lower(), SendOutcome.ACCEPTED)


def opted_out(status: str) -> bool:
    return status.strip().lower() in OPTED_OUT_STATUSES


def transient_http_status(status: int) -> bool:
    """Whether a request Exotel refused with HTTP ``status`` may be tried again later.

    400 (invalid parameters) and the other 4xx (bad credentials, unknown account) will not
    succeed as sent; 403 is Exotel's "insufficient balance" (tried again once the account is
    topped up), 429 too many requests (after its ``Retry-After``), 5xx (503 when platform
    limits are hit) are transient.
    """
    return status in (403, 429) or status >= 500

"""Africa's Talking's status words and codes, and what each means to the gateway.

The one place AT's vocabulary is read: a delivery report's ``status`` and
``failureReason``, a send answer's per-recipient ``statusCode`` and the refusal of a
request as a whole. What leaves this module is neutral: a :class:`DeliveryState`, a
:class:`SendOutcome`, and whether the recipient opted out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from gateway.channels.base import DeliveryState, SendOutcome

__all__ = [
    "DELIVERY_STATES",
    "OPTED_OUT_STATUS_CODES",
    "OPTED_OUT_WORDS",
    "PERMANENT_REQUEST_MESSAGES",
    "RECIPIENT_STATUS_OUTCOMES",
    "outcome_for_status_code",
    "recipient_opted_out",
    "report_opted_out",
]

DELIVERY_STATES: Final[Mapping[str, DeliveryState]] = {
    "Success": DeliveryState.DELIVERED,
    "Sent": DeliveryState.IN_FLIGHT,
    "Submitted": DeliveryState.IN_FLIGHT,
    "Buffered": DeliveryState.IN_FLIGHT,
    "Rejected": DeliveryState.FAILED,
    "Failed": DeliveryState.FAILED,
    "Expired": DeliveryState.FAILED,
    "AbsentSubscriber": DeliveryState.FAILED,
}
"""A delivery report's ``status`` -> our state. Any other status is refused (400)."""

OPTED_OUT_WORDS: Final = frozenset({"userinblacklist"})
"""The status word, lower-cased (AT writes both ``UserInBlacklist`` and ``UserInBlackList``),
meaning the number refused messages from the sender: a failed report's ``failureReason``,
or a recipient's ``status`` in a send answer."""

RECIPIENT_STATUS_OUTCOMES: Final[Mapping[int, SendOutcome]] = {
    100: SendOutcome.ACCEPTED,  # Processed
    101: SendOutcome.ACCEPTED,  # Sent ("Success" in the answer)
    102: SendOutcome.ACCEPTED,  # Queued
    401: SendOutcome.PERMANENT_FAILURE,  # RiskHold
    402: SendOutcome.PERMANENT_FAILURE,  # InvalidSenderId
    403: SendOutcome.PERMANENT_FAILURE,  # InvalidPhoneNumber
    404: SendOutcome.PERMANENT_FAILURE,  # UnsupportedNumberType
    405: SendOutcome.PERMANENT_FAILURE,  # InsufficientBalance
    406: SendOutcome.PERMANENT_FAILURE,  # UserInBlacklist (opted out)
    407: SendOutcome.PERMANENT_FAILURE,  # CouldNotRoute
    409: SendOutcome.PERMANENT_FAILURE,  # DoNotDisturbRejection
    500: SendOutcome.TRANSIENT_FAILURE,  # InternalServerError
    501: SendOutcome.TRANSIENT_FAILURE,  # GatewayError
    502: SendOutcome.TRANSIENT_FAILURE,  # RejectedByGateway
}
"""A send answer's per-recipient ``statusCode`` -> our outcome."""

OPTED_OUT_STATUS_CODES: Final = frozenset({406})
"""Per-recipient ``statusCode`` meaning the number refused messages (``UserInBlacklist``)."""

PERMANENT_REQUEST_MESSAGES: Final = frozenset({"InvalidSenderId"})
"""What AT has been seen to put in ``SMSMessageData.Message``, with no ``Recipients`` at
all, when it refuses the request as a whole for a reason retrying will not fix."""


def outcome_for_status_code(code: int) -> SendOutcome:
    """Map a per-recipient ``statusCode``; unknown codes >= 500 are transient, others permanent."""
    known = RECIPIENT_STATUS_OUTCOMES.get(code)
    if known is not None:
        return known
    return SendOutcome.TRANSIENT_FAILURE if code >= 500 else SendOutcome.PERMANENT_FAILURE


def recipient_opted_out(code: int | None, status: str) -> bool:
    """Whether a send answer's recipient entry says the number opted out (by its
    ``statusCode``, or by its ``status`` when the code is missing)."""
    return code in OPTED_OUT_STATUS_CODES or status.strip().lower() in OPTED_OUT_WORDS


def report_opted_out(state: DeliveryState, failure_reason: str | None) -> bool:
    """Whether a delivery report says the number opted out: a failure whose reason says so."""
    reason = (failure_reason or "").strip().lower()
    return state is DeliveryState.FAILED and reason in OPTED_OUT_WORDS

"""Africa's Talking's callback payloads read into :mod:`gateway.channels.base`'s types, and
the USSD reply written in AT's format: pure functions, no I/O.

What the parsers hand on fits where the gateway keeps it (the :class:`CallbackLimits` they
are given, read by the wiring from the database's columns). An identifier (``sessionId``,
``serviceCode``, a message ``id``) longer than its limit or holding a control character is
refused: it could never name a session or message of ours, and refusing the first hop shows
the caller a network error before they have typed anything. Free text (what was typed, an
SMS, an error message) has its NULs taken out: the citizen cannot be asked to send it again.
An informational field (``networkCode``, ``cost``, counts) that does not fit is dropped, not
refused: AT retries a refused notice, and a session's end is worth recording without its
cost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from gateway.channels.africastalking.settings import NAME
from gateway.channels.africastalking.statuses import DELIVERY_STATES, report_opted_out
from gateway.channels.base import (
    CallbackLimits,
    DeliveryReport,
    InboundSms,
    PayloadError,
    UssdHop,
    UssdReply,
    UssdSessionEnd,
)
from gateway.channels.fields import (
    free_text,
    identifier,
    informational,
    lenient_phone,
    optional,
    required,
    required_phone,
)
from gateway.text.phone import DEFAULT_REGION
from gateway.text.storable import storable

__all__ = [
    "MAX_INBOUND_TEXT_LENGTH",
    "MAX_USSD_TEXT_LENGTH",
    "format_ussd_reply",
    "parse_delivery_report",
    "parse_inbound_sms",
    "parse_ussd_hop",
    "parse_ussd_session_end",
]

log = logging.getLogger(__name__)

MAX_USSD_TEXT_LENGTH: Final = 1000
MAX_INBOUND_TEXT_LENGTH: Final = 2000


def _optional_int(
    fields: Mapping[str, str], name: str, bounds: tuple[int, int] | None = None
) -> int | None:
    """A count: None when absent, not a whole number, negative, or past ``bounds`` (the
    range kept, for a count that is kept)."""
    value = optional(fields, name)
    if value is None:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        try:  # AT has sent counts as "3.0" on some products.
            as_float = float(value)
        except ValueError:
            return None
        if not as_float.is_integer():  # also inf and nan
            return None
        number = int(as_float)
    if number < 0 or (bounds is not None and not bounds[0] <= number <= bounds[1]):
        log.warning("africastalking: ignoring %s out of range (%d characters)", name, len(value))
        return None
    return number


def _check_length(name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise PayloadError(name, f"longer than {limit} characters ({len(value)})")


def _parse_date(raw: str | None) -> datetime | None:
    """AT's ``date`` (``2026-11-23 10:15:02`` or ISO 8601) as an aware datetime.

    A date without an offset is taken as UTC. Anything unparseable is None.
    """
    if raw is None:
        return None
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_ussd_hop(
    fields: Mapping[str, str], *, limits: CallbackLimits, region: str = DEFAULT_REGION
) -> UssdHop:
    """Parse one USSD hop: fields ``sessionId``, ``serviceCode``, ``phoneNumber``, ``text``.

    ``text`` may be absent or empty on the first hop (it becomes ``""``); ``networkCode`` is
    optional (dropped when unusable). The phone number is normalised to E.164 (any valid
    number: the network vouches for the caller; one without a country code is read as
    ``region``'s).

    Raises :class:`PayloadError` for a missing or malformed required field: a session ID or
    service code that does not fit its limit or holds a control character is refused on
    the first hop, so a session that got past it can always be recorded and submit.
    """
    session_id = identifier(fields, "sessionId", limits.ussd_session_id)
    service_code = identifier(fields, "serviceCode", limits.ussd_service_code)
    phone = required_phone(fields, "phoneNumber", region)
    text = fields.get("text") or ""
    _check_length("text", text, MAX_USSD_TEXT_LENGTH)
    return UssdHop(
        session_id=session_id,
        service_code=service_code,
        phone=phone,
        network_code=informational(fields, "networkCode", limits.ussd_network_code) or "",
        text=storable(text),
        provider=NAME,
    )


def parse_ussd_session_end(
    fields: Mapping[str, str], *, limits: CallbackLimits, region: str = DEFAULT_REGION
) -> UssdSessionEnd:
    """Parse AT's end-of-session notification; only ``sessionId`` and ``status`` are required.

    Its field set varies, so unknown fields are ignored and missing ones become None;
    ``durationInMillis`` and ``hopsCount`` become ints when they parse and fit, else None;
    a malformed ``phoneNumber`` and a ``serviceCode``, ``networkCode`` or ``cost`` that does
    not fit its limit become None rather than a rejection; ``status`` is cut to its
    limit. Only a missing or unusable ``sessionId`` or a missing ``status`` is refused.
    """
    session_id = identifier(fields, "sessionId", limits.ussd_session_id)
    status = storable(required(fields, "status"))[: limits.ussd_end_status]
    if not status.strip():
        raise PayloadError("status", "empty")
    return UssdSessionEnd(
        session_id=session_id,
        status=status,
        phone=lenient_phone(fields, "phoneNumber", region),
        service_code=informational(fields, "serviceCode", limits.ussd_service_code),
        network_code=informational(fields, "networkCode", limits.ussd_network_code),
        duration_ms=_optional_int(fields, "durationInMillis", limits.ussd_duration_ms),
        hops=_optional_int(fields, "hopsCount", limits.ussd_hops),
        last_input=free_text(fields, "input"),
        last_response=free_text(fields, "lastAppResponse"),
        error_message=free_text(fields, "errorMessage"),
        cost=informational(fields, "cost", limits.ussd_cost),
        provider=NAME,
    )


def parse_delivery_report(
    fields: Mapping[str, str], *, limits: CallbackLimits, region: str = DEFAULT_REGION
) -> DeliveryReport:
    """Parse an SMS delivery report (``id``, ``status`` required; ``failureReason``,
    ``phoneNumber``, ``networkCode``, ``retryCount`` optional). A failure whose reason says
    the number refused messages is ``opted_out`` (:mod:`.statuses`).

    Raises :class:`PayloadError` for a missing field, an ``id`` that could not be one of
    our messages' (longer than its limit, a control character) or a status not in
    :data:`~.statuses.DELIVERY_STATES`.
    """
    message_id = identifier(fields, "id", limits.outbound_message_id)
    status = required(fields, "status").strip()
    state = DELIVERY_STATES.get(status)
    if state is None:
        raise PayloadError("status", f"unknown delivery status {status[:40]!r}")
    failure_reason = free_text(fields, "failureReason")
    return DeliveryReport(
        provider_message_id=message_id,
        state=state,
        provider_status=status,
        failure_reason=failure_reason,
        phone=lenient_phone(fields, "phoneNumber", region),
        network_code=informational(fields, "networkCode", limits.ussd_network_code),
        retry_count=_optional_int(fields, "retryCount"),
        opted_out=report_opted_out(state, failure_reason),
        provider=NAME,
    )


def parse_inbound_sms(
    fields: Mapping[str, str], *, limits: CallbackLimits, region: str = DEFAULT_REGION
) -> InboundSms:
    """Parse an incoming SMS (``from``, ``to``, ``text``, ``id`` required; ``date``,
    ``linkId``, ``networkCode`` optional).

    ``text`` must be present but may be empty; its NULs are taken out. The sender is
    normalised to E.164; ``to`` (usually a short code) is kept as sent. An unparseable
    ``date`` becomes None. An ``id`` longer than its limit or holding a control character
    is refused: it is what makes a retried callback a no-op.
    """
    sender = required_phone(fields, "from", region)
    recipient = required(fields, "to").strip()
    text = required(fields, "text", allow_empty=True)
    _check_length("text", text, MAX_INBOUND_TEXT_LENGTH)
    message_id = identifier(fields, "id", limits.inbound_message_id)
    return InboundSms(
        provider_message_id=message_id,
        sender=sender,
        recipient=recipient,
        text=storable(text),
        received_at=_parse_date(optional(fields, "date")),
        link_id=optional(fields, "linkId"),
        network_code=informational(fields, "networkCode", limits.ussd_network_code),
        provider=NAME,
    )


def format_ussd_reply(reply: UssdReply) -> str:
    """The body AT expects: ``CON <text>`` to wait for input, ``END <text>`` to close."""
    return ("END " if reply.end else "CON ") + reply.text

"""Exotel's callback payloads and send answers read into neutral types: pure, no I/O.

A delivery report's ``SmsSid`` longer than the gateway keeps, or holding a control
character, is refused (it could name no message of ours); its ``To`` comes 0-prefixed
(``09812345678``) and is read in the service's region. Informational fields that do not fit
are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from gateway.channels.base import CallbackLimits, DeliveryReport, MissedCall, PayloadError
from gateway.channels.exotel.settings import NAME
from gateway.channels.exotel.statuses import delivery_state, opted_out
from gateway.channels.fields import (
    identifier,
    informational,
    lenient_phone,
    required,
    required_phone,
)

__all__ = ["AnsweredMessage", "parse_delivery_report", "parse_missed_call", "parse_send_answer"]

MAX_CALL_ID_LENGTH: Final = 100
MAX_NUMBER_LENGTH: Final = 20

MAX_STATUS_LENGTH: Final = 64


def parse_delivery_report(
    fields: Mapping[str, str], *, limits: CallbackLimits, region: str
) -> DeliveryReport:
    """A ``StatusCallback`` form: ``SmsSid``, ``To``, ``Status``, ``DetailedStatus``,
    ``DetailedStatusCode``, ``SmsUnits``, ``DateSent``, ``CustomField``."""
    sid = identifier(fields, "SmsSid", limits.outbound_message_id)
    status = required(fields, "Status").strip()
    state = delivery_state(status)
    if state is None:
        raise PayloadError("Status", f"unknown status {status[:MAX_STATUS_LENGTH]!r}")
    detailed = informational(fields, "DetailedStatus", MAX_STATUS_LENGTH)
    code = informational(fields, "DetailedStatusCode", MAX_STATUS_LENGTH)
    reason = " ".join(part for part in (detailed, f"({code})" if code else None) if part)
    return DeliveryReport(
        provider_message_id=sid,
        state=state,
        provider_status=status.lower(),
        failure_reason=reason or None,
        phone=lenient_phone(fields, "To", region),
        opted_out=opted_out(status),
        provider=NAME,
    )


def parse_missed_call(fields: Mapping[str, str], *, region: str) -> MissedCall:
    """The Passthru applet's query: ``CallSid``, ``CallFrom`` (0-prefixed), ``CallTo``,
    ``CallStatus``, ``Direction``, ``Created``, ``CallType``, ``digits`` ..."""
    return MissedCall(
        call_id=identifier(fields, "CallSid", MAX_CALL_ID_LENGTH),
        caller=required_phone(fields, "CallFrom", region),
        called=informational(fields, "CallTo", MAX_NUMBER_LENGTH),
        status=informational(fields, "CallStatus", MAX_STATUS_LENGTH),
        provider=NAME,
    )


@dataclass(frozen=True, slots=True)
class AnsweredMessage:
    """One ``SMSMessage`` of a send answer."""

    sid: str | None
    to: str
    status: str
    detailed_status: str | None
    detailed_status_code: int | None


def parse_send_answer(body: str) -> list[AnsweredMessage]:
    """The messages of a 2xx answer to ``Sms/send.json``: ``{"SMSMessage": {...}}`` for one
    number, and for several either ``{"SMSMessage": [...]}`` or a list of
    ``{"SMSMessage": {...}}`` (Exotel's pages show both). Raises ValueError when the body is
    none of these."""
    data = json.loads(body)
    entries: list[Any]
    if isinstance(data, list):
        entries = [item.get("SMSMessage") if isinstance(item, dict) else None for item in data]
    elif isinstance(data, dict) and "SMSMessage" in data:
        inner = data["SMSMessage"]
        entries = inner if isinstance(inner, list) else [inner]
    else:
        raise ValueError("no SMSMessage")
    messages = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("an SMSMessage that is not an object")
        messages.append(
            AnsweredMessage(
                sid=_text(entry.get("Sid")),
                to=_text(entry.get("To")) or "",
                status=_text(entry.get("Status")) or "",
                detailed_status=_text(entry.get("DetailedStatus")),
                detailed_status_code=_int(entry.get("DetailedStatusCode")),
            )
        )
    return messages


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None

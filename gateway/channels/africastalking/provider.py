"""Africa's Talking: USSD and SMS callbacks in, SMS out, in one module.

Everything Africa's Talking (AT) specific lives here, in the manner of courier's
one-handler-per-channel modules: the callback routes, the pure parsers that turn AT's
form payloads into :mod:`gateway.channels.base` dataclasses, the status tables, and
:meth:`AfricasTalking.send`, which speaks AT's SMS API over aiohttp exactly as the official
(synchronous) ``africastalking`` SDK does.

Callback routes (all ``POST``, ``application/x-www-form-urlencoded``):

* ``/ussd/africastalking`` – a USSD hop; answered ``200 text/plain`` ``CON ...``/``END ...``.
* ``/ussd/africastalking/events`` – the end-of-session notification.
* ``/sms/africastalking/delivery`` – an SMS delivery report.
* ``/sms/africastalking/inbound`` – an incoming SMS.

A payload that is not form-encoded, or lacks or garbles a required field, is answered
``400 text/plain`` naming the field; bad input never becomes a 500. An incoming SMS the
application could not handle is answered ``503`` (AT sends it again). Phone numbers are
masked in logs and message texts are never logged.

What the parsers hand on fits where the gateway keeps it (:mod:`gateway.storage.limits`, read from
the models). An identifier (``sessionId``, ``serviceCode``, a message ``id``) longer than
its column or holding a control character is refused with a 400: it could never name a
session or message of ours, and refusing the first hop shows the caller a network error
before they have typed anything. Free text (what was typed, an SMS, an error message) has
its NULs taken out: the citizen cannot be asked to send it again. An informational field
(``networkCode``, ``cost``, counts) that does not fit is dropped, not refused: AT retries a
refused notice, and a session's end is worth recording without its cost.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from gateway.channels.base import (
    CALLBACKS,
    DeliveryReport,
    DeliveryState,
    InboundSms,
    OutgoingSms,
    PayloadError,
    ProviderError,
    RecipientResult,
    RetryLater,
    SendOutcome,
    UssdHop,
    UssdReply,
    UssdSessionEnd,
)
from gateway.storage import limits
from gateway.storage.limits import is_identifier, storable
from gateway.text.phone import DEFAULT_REGION, InvalidPhoneNumber, mask_phone, normalize_phone

__all__ = [
    "DELIVERY_STATES",
    "RECIPIENT_STATUS_OUTCOMES",
    "AfricasTalking",
    "format_ussd_reply",
    "outcome_for_status_code",
    "parse_delivery_report",
    "parse_inbound_sms",
    "parse_ussd_hop",
    "parse_ussd_session_end",
]

log = logging.getLogger(__name__)

USSD_PATH: Final = "/ussd/africastalking"
USSD_EVENTS_PATH: Final = "/ussd/africastalking/events"
DELIVERY_PATH: Final = "/sms/africastalking/delivery"
INBOUND_PATH: Final = "/sms/africastalking/inbound"

MAX_USSD_TEXT_LENGTH: Final = 1000
MAX_INBOUND_TEXT_LENGTH: Final = 2000
MAX_ERROR_TEXT_LENGTH: Final = 200

_FORM_CONTENT_TYPES: Final = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

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
"""AT's delivery-report ``status`` -> our state. Any other status is a :class:`PayloadError`."""

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
"""AT's per-recipient ``statusCode`` in a send answer -> our outcome."""

# Statuses AT has been seen to put in SMSMessageData.Message, with no Recipients at all,
# when the request as a whole is refused for a reason retrying will not fix.
_PERMANENT_REQUEST_MESSAGES: Final = frozenset({"InvalidSenderId"})


def outcome_for_status_code(code: int) -> SendOutcome:
    """Map a per-recipient ``statusCode``; unknown codes >= 500 are transient, others permanent."""
    known = RECIPIENT_STATUS_OUTCOMES.get(code)
    if known is not None:
        return known
    return SendOutcome.TRANSIENT_FAILURE if code >= 500 else SendOutcome.PERMANENT_FAILURE


# --------------------------------------------------------------------------- parsing


def _required(fields: Mapping[str, str], name: str, *, allow_empty: bool = False) -> str:
    value = fields.get(name)
    if value is None:
        raise PayloadError(name, "missing")
    if not allow_empty and not value.strip():
        raise PayloadError(name, "empty")
    return value


def _optional(fields: Mapping[str, str], name: str) -> str | None:
    """A field's value, or None when absent or blank."""
    value = fields.get(name)
    if value is None or not value.strip():
        return None
    return value


def _optional_int(
    fields: Mapping[str, str], name: str, bounds: tuple[int, int] | None = None
) -> int | None:
    """A count: None when absent, not a whole number, negative, or past ``bounds`` (the
    column's range, for a count that is stored)."""
    value = _optional(fields, name)
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


def _identifier(fields: Mapping[str, str], name: str, limit: int) -> str:
    """A required identifier, refused unless it fits its column and is printable."""
    value = _required(fields, name)
    if len(value) > limit:
        raise PayloadError(name, f"longer than {limit} characters ({len(value)})")
    if not is_identifier(value, limit):
        raise PayloadError(name, "contains a character that is not printable")
    return value


def _informational(fields: Mapping[str, str], name: str, limit: int) -> str | None:
    """An optional field we only record: None when absent, or when it does not fit its
    column or is not printable (dropped, never refused)."""
    value = _optional(fields, name)
    if value is None or is_identifier(value, limit):
        return value
    log.warning("africastalking: ignoring unusable %s (%d characters)", name, len(value))
    return None


def _free_text(fields: Mapping[str, str], name: str) -> str | None:
    """Optional free text, without the characters no column takes."""
    value = _optional(fields, name)
    return None if value is None else storable(value)


def _required_phone(fields: Mapping[str, str], name: str, region: str) -> str:
    raw = _required(fields, name)
    try:
        return normalize_phone(raw, region=region)
    except InvalidPhoneNumber as exc:
        raise PayloadError(name, str(exc)) from None


def _lenient_phone(fields: Mapping[str, str], name: str, region: str) -> str | None:
    """An informational phone number: E.164 when it is one, else None (never a 400)."""
    raw = _optional(fields, name)
    if raw is None:
        return None
    try:
        return normalize_phone(raw, region=region)
    except InvalidPhoneNumber:
        log.warning("africastalking: ignoring malformed %s %s", name, mask_phone(raw))
        return None


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


def parse_ussd_hop(fields: Mapping[str, str], *, region: str = DEFAULT_REGION) -> UssdHop:
    """Parse one USSD hop: fields ``sessionId``, ``serviceCode``, ``phoneNumber``, ``text``.

    ``text`` may be absent or empty on the first hop (it becomes ``""``); ``networkCode`` is
    optional (dropped when unusable). The phone number is normalised to E.164 (any valid
    number: the network vouches for the caller; one without a country code is read as
    ``region``'s).

    Raises :class:`PayloadError` for a missing or malformed required field: a session ID or
    service code that does not fit its column or holds a control character is refused on
    the first hop, so a session that got past it can always be recorded and submit.
    """
    session_id = _identifier(fields, "sessionId", limits.USSD_SESSION_ID)
    service_code = _identifier(fields, "serviceCode", limits.USSD_SERVICE_CODE)
    phone = _required_phone(fields, "phoneNumber", region)
    text = fields.get("text") or ""
    _check_length("text", text, MAX_USSD_TEXT_LENGTH)
    return UssdHop(
        session_id=session_id,
        service_code=service_code,
        phone=phone,
        network_code=_informational(fields, "networkCode", limits.USSD_NETWORK_CODE) or "",
        text=storable(text),
    )


def parse_ussd_session_end(
    fields: Mapping[str, str], *, region: str = DEFAULT_REGION
) -> UssdSessionEnd:
    """Parse AT's end-of-session notification; only ``sessionId`` and ``status`` are required.

    Its field set varies, so unknown fields are ignored and missing ones become None;
    ``durationInMillis`` and ``hopsCount`` become ints when they parse and fit, else None;
    a malformed ``phoneNumber`` and a ``serviceCode``, ``networkCode`` or ``cost`` that does
    not fit its column become None rather than a rejection; ``status`` is cut to its
    column. Only a missing or unusable ``sessionId`` or a missing ``status`` is refused.
    """
    session_id = _identifier(fields, "sessionId", limits.USSD_SESSION_ID)
    status = storable(_required(fields, "status"))[: limits.USSD_END_STATUS]
    if not status.strip():
        raise PayloadError("status", "empty")
    return UssdSessionEnd(
        session_id=session_id,
        status=status,
        phone=_lenient_phone(fields, "phoneNumber", region),
        service_code=_informational(fields, "serviceCode", limits.USSD_SERVICE_CODE),
        network_code=_informational(fields, "networkCode", limits.USSD_NETWORK_CODE),
        duration_ms=_optional_int(fields, "durationInMillis", limits.USSD_DURATION_MS),
        hops=_optional_int(fields, "hopsCount", limits.USSD_HOPS),
        last_input=_free_text(fields, "input"),
        last_response=_free_text(fields, "lastAppResponse"),
        error_message=_free_text(fields, "errorMessage"),
        cost=_informational(fields, "cost", limits.USSD_COST),
    )


def parse_delivery_report(
    fields: Mapping[str, str], *, region: str = DEFAULT_REGION
) -> DeliveryReport:
    """Parse an SMS delivery report (``id``, ``status`` required; ``failureReason``,
    ``phoneNumber``, ``networkCode``, ``retryCount`` optional).

    Raises :class:`PayloadError` for a missing field, an ``id`` that could not be one of
    our messages' (longer than the column, a control character) or a status not in
    :data:`DELIVERY_STATES`.
    """
    message_id = _identifier(fields, "id", limits.OUTBOUND_MESSAGE_ID)
    status = _required(fields, "status").strip()
    state = DELIVERY_STATES.get(status)
    if state is None:
        raise PayloadError("status", f"unknown delivery status {status[:40]!r}")
    return DeliveryReport(
        provider_message_id=message_id,
        state=state,
        provider_status=status,
        failure_reason=_free_text(fields, "failureReason"),
        phone=_lenient_phone(fields, "phoneNumber", region),
        network_code=_informational(fields, "networkCode", limits.USSD_NETWORK_CODE),
        retry_count=_optional_int(fields, "retryCount"),
    )


def parse_inbound_sms(fields: Mapping[str, str], *, region: str = DEFAULT_REGION) -> InboundSms:
    """Parse an incoming SMS (``from``, ``to``, ``text``, ``id`` required; ``date``,
    ``linkId``, ``networkCode`` optional).

    ``text`` must be present but may be empty; its NULs are taken out. The sender is
    normalised to E.164; ``to`` (usually a short code) is kept as sent. An unparseable
    ``date`` becomes None. An ``id`` longer than its column or holding a control character
    is refused: it is what makes a retried callback a no-op.
    """
    sender = _required_phone(fields, "from", region)
    recipient = _required(fields, "to").strip()
    text = _required(fields, "text", allow_empty=True)
    _check_length("text", text, MAX_INBOUND_TEXT_LENGTH)
    message_id = _identifier(fields, "id", limits.INBOUND_MESSAGE_ID)
    return InboundSms(
        provider_message_id=message_id,
        sender=sender,
        recipient=recipient,
        text=storable(text),
        received_at=_parse_date(_optional(fields, "date")),
        link_id=_optional(fields, "linkId"),
        network_code=_informational(fields, "networkCode", limits.USSD_NETWORK_CODE),
    )


def format_ussd_reply(reply: UssdReply) -> str:
    """The body AT expects: ``CON <text>`` to wait for input, ``END <text>`` to close."""
    return ("END " if reply.end else "CON ") + reply.text


# --------------------------------------------------------------------------- routes


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/plain")


def _bad_request(request: web.Request, problem: str) -> web.Response:
    log.warning("africastalking: 400 for %s: %s", request.path, problem)
    return _text(problem, status=400)


async def _read_form(request: web.Request) -> dict[str, str]:
    """The request's form fields; raises PayloadError when the body is not a form."""
    if request.content_type not in _FORM_CONTENT_TYPES:
        raise PayloadError(
            "body", f"expected application/x-www-form-urlencoded, got {request.content_type!r}"
        )
    try:
        form = await request.post()
    except (ValueError, LookupError) as exc:  # bad encoding, unknown charset
        raise PayloadError("body", f"unreadable form: {type(exc).__name__}") from None
    fields: dict[str, str] = {}
    for key, value in form.items():
        if not isinstance(value, str):
            raise PayloadError(key, "a file upload, expected a text field")
        fields.setdefault(key, value)  # the first of repeated fields wins
    return fields


async def _ussd_hop(request: web.Request, *, region: str) -> web.Response:
    try:
        hop = parse_ussd_hop(await _read_form(request), region=region)
    except PayloadError as exc:
        return _bad_request(request, str(exc))
    log.debug(
        "africastalking: ussd hop session=%s phone=%s service=%s inputs=%d",
        hop.session_id,
        mask_phone(hop.phone),
        hop.service_code,
        hop.text.count("*") + 1 if hop.text else 0,
    )
    reply = await request.app[CALLBACKS].ussd_hop(hop)
    return _text(format_ussd_reply(reply))


async def _ussd_session_ended(request: web.Request, *, region: str) -> web.Response:
    try:
        end = parse_ussd_session_end(await _read_form(request), region=region)
    except PayloadError as exc:
        return _bad_request(request, str(exc))
    log.info(
        "africastalking: ussd session ended session=%s status=%s phone=%s hops=%s",
        end.session_id,
        end.status,
        mask_phone(end.phone),
        end.hops,
    )
    await request.app[CALLBACKS].ussd_session_ended(end)
    return _text("OK")


async def _delivery_report(request: web.Request, *, region: str) -> web.Response:
    try:
        report = parse_delivery_report(await _read_form(request), region=region)
    except PayloadError as exc:
        return _bad_request(request, str(exc))
    log.info(
        "africastalking: delivery report id=%s status=%s reason=%s phone=%s",
        report.provider_message_id,
        report.provider_status,
        report.failure_reason,
        mask_phone(report.phone),
    )
    try:
        await request.app[CALLBACKS].delivery_report(report)
    except RetryLater as exc:
        log.info("africastalking: delivery report id=%s: %s; 503", report.provider_message_id, exc)
        return _retry_later()
    return _text("OK")


async def _inbound_sms(request: web.Request, *, region: str) -> web.Response:
    try:
        sms = parse_inbound_sms(await _read_form(request), region=region)
    except PayloadError as exc:
        return _bad_request(request, str(exc))
    log.info(
        "africastalking: inbound sms id=%s from=%s to=%s chars=%d",
        sms.provider_message_id,
        mask_phone(sms.sender),
        sms.recipient,
        len(sms.text),
    )
    try:
        await request.app[CALLBACKS].inbound_sms(sms)
    except RetryLater as exc:
        log.info("africastalking: inbound sms id=%s: %s; 503", sms.provider_message_id, exc)
        return _retry_later()
    except Exception:
        log.exception(
            "africastalking: inbound sms id=%s not handled; 503 for AT to send it again",
            sms.provider_message_id,
        )
        return _retry_later()
    return _text("OK")


def _retry_later() -> web.Response:
    response = _text("not handled, send again", status=503)
    response.headers["Retry-After"] = "5"
    return response


# --------------------------------------------------------------------------- sending


def _trim(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_ERROR_TEXT_LENGTH else text[:MAX_ERROR_TEXT_LENGTH] + "…"


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _as_opt_str(value: object) -> str | None:
    """A string field of AT's answer; AT writes a missing message id as ``"None"``."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", "None") else text


_NOT_WRITTEN: Final = (
    aiohttp.ClientConnectorError,  # refused, DNS, TLS: no connection was made
    aiohttp.ConnectionTimeoutError,  # no connection within the timeout
    aiohttp.InvalidURL,
)
"""Errors raised before the request could be written: nothing reached AT."""


def _answer_lost(by_number: Mapping[str, str], how: str) -> list[RecipientResult]:
    """Every recipient of a request that may have been taken, its answer lost ``how``."""
    log.warning("africastalking: answer to a send to %d recipient(s) lost: %s", len(by_number), how)
    return [
        RecipientResult(phone=raw, outcome=SendOutcome.UNKNOWN, provider_status=how)
        for raw in by_number.values()
    ]


def _recipients_of(body: str) -> tuple[str, list[Any]]:
    """``(Message, Recipients)`` from a 2xx answer; raises ValueError when it is not AT's shape."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    message_data = data.get("SMSMessageData")
    if not isinstance(message_data, dict):
        raise ValueError("no SMSMessageData object")
    recipients = message_data.get("Recipients")
    if not isinstance(recipients, list):
        raise ValueError("no SMSMessageData.Recipients list")
    return str(message_data.get("Message") or ""), recipients


class AfricasTalking:
    """The Africa's Talking provider: USSD/SMS callback routes and SMS sending.

    ``base_url`` is the resolved API base without a trailing slash
    (``https://api.africastalking.com``, the sandbox, or a fake in tests).
    ``region`` (``service.country``) is the country a number without a country code is
    read in.
    """

    name: ClassVar[str] = "africastalking"

    def __init__(
        self,
        *,
        username: str,
        api_key: str,
        base_url: str,
        sender_id: str | None,
        timeout: float,
        region: str,
    ) -> None:
        self.username = username
        self.region = region
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.sender_id = sender_id
        self.timeout = timeout

    def __repr__(self) -> str:  # never show the API key
        return f"AfricasTalking(username={self.username!r}, base_url={self.base_url!r})"

    @property
    def messaging_url(self) -> str:
        """Where :meth:`send` posts: ``{base_url}/version1/messaging``."""
        return f"{self.base_url}/version1/messaging"

    def routes(self) -> list[web.AbstractRouteDef]:
        """The four callback routes; handlers find the application at ``request.app[CALLBACKS]``."""
        return [
            web.post(path, functools.partial(handler, region=self.region))
            for path, handler in (
                (USSD_PATH, _ussd_hop),
                (USSD_EVENTS_PATH, _ussd_session_ended),
                (DELIVERY_PATH, _delivery_report),
                (INBOUND_PATH, _inbound_sms),
            )
        ]

    def _form(self, sms: OutgoingSms, to: list[str]) -> dict[str, str]:
        # Same fields, in the same order, as africastalking.SMS.send (SDK 2.0.3).
        form = {
            "username": self.username,
            "to": ",".join(to),
            "message": sms.text,
            "bulkSMSMode": "1",
        }
        sender_id = sms.sender_id or self.sender_id
        if sender_id:
            form["from"] = sender_id
        if sms.bulk:
            form["enqueue"] = "1"
        return form

    async def send(
        self, sms: OutgoingSms, *, session: aiohttp.ClientSession
    ) -> list[RecipientResult]:
        """Send ``sms`` in one request; one :class:`RecipientResult` per distinct recipient.

        Results carry the recipient as the caller wrote it. A recipient that is not a phone
        number is not sent and gets a permanent failure; a recipient missing from AT's
        answer gets a transient one.

        AT has no idempotency key, so a request whose answer was lost after it was written
        (a timeout, the connection reset or closed, a 2xx body that is not AT's JSON) may
        have been taken: every recipient gets :attr:`SendOutcome.UNKNOWN`, never a retry.

        Raises :class:`ProviderError` when nothing was sent: transient when the connection
        was never made (refused, DNS, connect timeout) and for HTTP 5xx and 429; permanent
        for other non-2xx answers (bad API key, bad request).
        """
        results: list[RecipientResult] = []
        by_number: dict[str, str] = {}  # E.164 -> the caller's spelling
        for raw in sms.recipients:
            try:
                number = normalize_phone(raw, region=self.region)
            except InvalidPhoneNumber:
                log.warning("africastalking: not sending to malformed number %s", mask_phone(raw))
                results.append(
                    RecipientResult(
                        phone=raw,
                        outcome=SendOutcome.PERMANENT_FAILURE,
                        provider_status="InvalidPhoneNumber",
                    )
                )
                continue
            by_number.setdefault(number, raw)
        if not by_number:
            return results

        # Encoded here, as aiohttp's FormData would (urlencode, UTF-8): FormData builds a
        # multipart writer and a boundary for every request, a fifth of a send's CPU.
        payload = urlencode(self._form(sms, list(by_number))).encode()
        headers = {
            "apiKey": self._api_key,
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        try:
            async with session.post(
                self.messaging_url,
                data=payload,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as response:
                status = response.status
                body = (await response.read()).decode("utf-8", errors="replace")
        except _NOT_WRITTEN as exc:
            raise ProviderError(
                f"Africa's Talking unreachable: {type(exc).__name__}: {exc}", transient=True
            ) from None
        except TimeoutError:
            return results + _answer_lost(
                by_number, f"Africa's Talking did not answer within {self.timeout:g} s"
            )
        except aiohttp.ClientError as exc:
            # Reset, closed or cut short after the request was (maybe) written.
            return results + _answer_lost(by_number, f"{type(exc).__name__}: {exc}")

        if not 200 <= status < 300:
            transient = status >= 500 or status == 429
            log.warning(
                "africastalking: send of %d recipient(s) failed: HTTP %d", len(by_number), status
            )
            raise ProviderError(
                f"Africa's Talking answered HTTP {status}: {_trim(body)}",
                transient=transient,
                status=status,
            )
        try:
            message, answered = _recipients_of(body)
        except ValueError as exc:
            return results + _answer_lost(
                by_number, f"HTTP {status} with an unreadable body ({exc}): {_trim(body)}"
            )

        if not answered and message.strip() in _PERMANENT_REQUEST_MESSAGES:
            log.warning("africastalking: send refused as a whole: %s", message)
            results.extend(
                RecipientResult(
                    phone=raw, outcome=SendOutcome.PERMANENT_FAILURE, provider_status=message
                )
                for raw in by_number.values()
            )
            return results

        seen: dict[str, RecipientResult] = {}
        for entry in answered:
            result = self._recipient_result(entry, by_number)
            if result is not None:
                seen.setdefault(result.phone, result)
        for raw in by_number.values():
            result = seen.get(raw)
            if result is None:
                log.warning("africastalking: %s missing from the answer", mask_phone(raw))
                result = RecipientResult(
                    phone=raw,
                    outcome=SendOutcome.TRANSIENT_FAILURE,
                    provider_status="MissingFromAnswer",
                )
            results.append(result)
        log.info(
            "africastalking: sent to %d recipient(s): %s",
            len(by_number),
            ", ".join(f"{mask_phone(r.phone)}={r.outcome.value}" for r in results),
        )
        return results

    def _recipient_result(
        self, entry: object, by_number: Mapping[str, str]
    ) -> RecipientResult | None:
        """One ``Recipients`` entry as a result for a number we sent to, or None."""
        if not isinstance(entry, dict):
            return None
        number = str(entry.get("number") or "")
        if number not in by_number:  # AT answers in E.164, as sent: parse only otherwise
            try:
                number = normalize_phone(number, region=self.region)
            except InvalidPhoneNumber:
                return None
        raw = by_number.get(number)
        if raw is None:
            log.warning("africastalking: answer names unsent number %s", mask_phone(number))
            return None
        code = _as_int(entry.get("statusCode"))
        provider_status = str(entry.get("status") or "")
        outcome = (
            outcome_for_status_code(code) if code is not None else SendOutcome.TRANSIENT_FAILURE
        )
        return RecipientResult(
            phone=raw,
            outcome=outcome,
            provider_status=provider_status,
            provider_message_id=_as_opt_str(entry.get("messageId")),
            status_code=code,
            cost=_as_opt_str(entry.get("cost")),
        )

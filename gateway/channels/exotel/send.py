"""Sending SMS through Exotel's SMS API (``POST /v1/Accounts/<sid>/Sms/send.json``), over
aiohttp: HTTP Basic auth (API key : token), a form with ``From`` (the DLT header), ``To``
(comma-separated for one text to many numbers), ``Body``, ``EncodingType``, ``SmsType``,
``DltEntityId``, ``DltTemplateId`` (the template's ID in that language),
``StatusCallback`` (our delivery URL, with its secret) and ``CustomField`` (our message ID).

A refused request raises :class:`ProviderError`, transient or not by its HTTP status
(:func:`~.statuses.transient_http_status`); a 429 is tried again after its ``Retry-After``
when that is within ``max_wait_seconds``, and holds every other send as long.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import urlencode

import aiohttp

from gateway.channels.base import (
    OutgoingSms,
    ProviderError,
    RecipientResult,
    SendOutcome,
    describe_results,
)
from gateway.channels.exotel.pacing import Busy, Pacer, retry_after_seconds
from gateway.channels.exotel.parse import AnsweredMessage, parse_send_answer
from gateway.channels.exotel.settings import ExotelSettings
from gateway.channels.exotel.statuses import opted_out, send_outcome, transient_http_status
from gateway.text.encoding import Encoding, measure_sms
from gateway.text.phone import InvalidPhoneNumber, as_sent, mask_phone, normalize_phone

__all__ = ["DELIVERY_PATH", "SmsApi"]

log = logging.getLogger(__name__)

DELIVERY_PATH: Final = "/sms/exotel/delivery"
"""Our delivery-report route (its public URL, with the secret, is each SMS's
``StatusCallback``)."""

MAX_TRIES: Final = 3
"""Requests for one send when Exotel answers 429 (each after its ``Retry-After``)."""

DEFAULT_RETRY_AFTER: Final = 5.0
BALANCE_BACKOFF: Final = 60.0
"""After a 403 (insufficient balance), every send is held this long: each is tried again
later by the worker, without a request Exotel would refuse the same way."""
MAX_ERROR_TEXT_LENGTH: Final = 200

_NOT_WRITTEN: Final = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    aiohttp.InvalidURL,
)
"""Errors raised before the request could be written: nothing reached Exotel."""


class SmsApi:
    """Exotel's ``Sms/send.json`` for one account. ``region`` is the country a number
    without a country code is read in; ``callback_url`` gives the public, signed URL of a
    callback path (None while unknown: then no ``StatusCallback`` is sent)."""

    def __init__(
        self,
        settings: ExotelSettings,
        *,
        region: str,
        callback_url: Callable[[str], str | None],
        pacer: Pacer | None = None,
    ) -> None:
        self.sid = settings.sid
        self.sender = settings.sender
        self.timeout = settings.timeout_seconds
        self.url = f"{settings.resolved_base_url}/v1/Accounts/{settings.sid}/Sms/send.json"
        self.region = region
        self.callback_url = callback_url
        self.pacer = pacer or Pacer(
            requests_per_minute=settings.requests_per_minute,
            segments_per_minute=settings.segments_per_minute,
            max_wait=settings.max_wait_seconds,
        )
        self._headers = {
            "Authorization": aiohttp.encode_basic_auth(settings.api_key, settings.api_token),
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }

    def __repr__(self) -> str:  # never show the credentials
        return f"SmsApi(sid={self.sid!r}, url={self.url!r})"

    def form(self, sms: OutgoingSms, to: list[str]) -> dict[str, str]:
        """The request's fields for ``sms`` to the E.164 numbers ``to``."""
        encoding = measure_sms(sms.text).encoding
        form = {
            "From": self.sender,
            "To": ",".join(to),
            "Body": sms.text,
            "EncodingType": "unicode" if encoding is Encoding.UCS2 else "plain",
            # Lifecycle SMS and notices a citizen expects; never promotional.
            "SmsType": "transactional",
        }
        if sms.dlt_entity_id:
            form["DltEntityId"] = sms.dlt_entity_id
        if sms.dlt_template_id:
            form["DltTemplateId"] = sms.dlt_template_id
        status_callback = self.callback_url(DELIVERY_PATH)
        if status_callback:
            form["StatusCallback"] = status_callback
        if sms.reference:
            form["CustomField"] = sms.reference
        return form

    async def send(
        self, sms: OutgoingSms, *, session: aiohttp.ClientSession
    ) -> list[RecipientResult]:
        """Send ``sms`` in one request; one result per distinct recipient, as the caller
        spelled it. A recipient that is not a phone number gets a permanent failure; one
        missing from the answer a transient one; a request whose answer was lost
        :attr:`SendOutcome.UNKNOWN` (Exotel has no idempotency key)."""
        results, by_number = self._numbers(sms.recipients)
        if not by_number:
            return results
        segments = measure_sms(sms.text).segments * len(by_number)
        payload = urlencode(self.form(sms, list(by_number))).encode()
        for attempt in range(1, MAX_TRIES + 1):
            try:
                await self.pacer.turn(segments)
            except Busy as exc:
                raise ProviderError(str(exc), transient=True, status=429) from None
            try:
                status, body, retry_after = await self._post(payload, session)
            except TimeoutError:
                return results + _answer_lost(by_number, f"no answer within {self.timeout:g} s")
            except aiohttp.ClientError as exc:
                return results + _answer_lost(by_number, f"{type(exc).__name__}: {exc}")
            if status == 403:
                self.pacer.hold(BALANCE_BACKOFF)
                log.warning("exotel: HTTP 403 (balance?), every send held %.0f s", BALANCE_BACKOFF)
            if status in (429, 503):
                wait = retry_after_seconds(retry_after, default=DEFAULT_RETRY_AFTER)
                self.pacer.hold(wait)
                log.warning("exotel: HTTP %d, every send held %.1f s", status, wait)
                if status == 429 and attempt < MAX_TRIES:
                    continue
            break
        if not 200 <= status < 300:
            log.warning("exotel: send to %d recipient(s) failed: HTTP %d", len(by_number), status)
            raise ProviderError(
                f"Exotel answered HTTP {status}: {_trim(body)}",
                transient=transient_http_status(status),
                status=status,
            )
        try:
            answered = parse_send_answer(body)
        except ValueError as exc:
            return results + _answer_lost(by_number, f"HTTP {status}, unreadable answer ({exc})")
        results += self._results(answered, by_number)
        log.info("exotel: sent to %d recipient(s): %s", len(by_number), describe_results(results))
        return results

    def _numbers(self, recipients: tuple[str, ...]) -> tuple[list[RecipientResult], dict[str, str]]:
        results: list[RecipientResult] = []
        by_number: dict[str, str] = {}
        for raw in recipients:
            try:
                number = as_sent(raw, region=self.region)
            except InvalidPhoneNumber:
                log.warning("exotel: not sending to malformed number %s", mask_phone(raw))
                results.append(
                    RecipientResult(raw, SendOutcome.PERMANENT_FAILURE, "InvalidPhoneNumber")
                )
                continue
            by_number.setdefault(number, raw)
        return results, by_number

    async def _post(
        self, payload: bytes, session: aiohttp.ClientSession
    ) -> tuple[int, str, str | None]:
        """The answer's status, body and ``Retry-After``; raises ProviderError when nothing
        was written."""
        try:
            async with session.post(
                self.url,
                data=payload,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as response:
                body = (await response.read()).decode("utf-8", errors="replace")
                return response.status, body, response.headers.get("Retry-After")
        except _NOT_WRITTEN as exc:
            raise ProviderError(
                f"Exotel unreachable: {type(exc).__name__}: {exc}", transient=True
            ) from None

    def _results(
        self, answered: list[AnsweredMessage], by_number: Mapping[str, str]
    ) -> list[RecipientResult]:
        seen: dict[str, RecipientResult] = {}
        for message in answered:
            raw = self._recipient(message.to, by_number, alone=len(answered) == 1)
            if raw is None:
                continue
            seen.setdefault(
                raw,
                RecipientResult(
                    phone=raw,
                    outcome=send_outcome(message.status),
                    provider_status=message.detailed_status or message.status,
                    provider_message_id=message.sid,
                    status_code=message.detailed_status_code,
                    opted_out=opted_out(message.status),
                ),
            )
        results = []
        for raw in by_number.values():
            result = seen.get(raw)
            if result is None:
                log.warning("exotel: %s missing from the answer", mask_phone(raw))
                result = RecipientResult(raw, SendOutcome.TRANSIENT_FAILURE, "MissingFromAnswer")
            results.append(result)
        return results

    def _recipient(self, to: str, by_number: Mapping[str, str], *, alone: bool) -> str | None:
        """The caller's spelling of the number an answered message names (Exotel may write
        it 0-prefixed); the only recipient when the only message names none."""
        try:
            return by_number.get(normalize_phone(to, region=self.region))
        except InvalidPhoneNumber:
            if alone and len(by_number) == 1:
                return next(iter(by_number.values()))
            return None


def _trim(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_ERROR_TEXT_LENGTH else text[:MAX_ERROR_TEXT_LENGTH] + "…"


def _answer_lost(by_number: Mapping[str, str], how: str) -> list[RecipientResult]:
    log.warning("exotel: answer to a send to %d recipient(s) lost: %s", len(by_number), how)
    return [RecipientResult(raw, SendOutcome.UNKNOWN, how) for raw in by_number.values()]

"""Sending SMS through Africa's Talking's SMS API, over aiohttp, exactly as the official
(synchronous) ``africastalking`` SDK does: same fields, same order, same encoding.

AT's API has no field for India's DLT template or entity IDs (AT matches the text to the
templates registered for the account's sender ID), so :class:`OutgoingSms`'s DLT fields are
not sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp

from gateway.channels.africastalking.settings import AfricasTalkingSettings
from gateway.channels.africastalking.statuses import (
    PERMANENT_REQUEST_MESSAGES,
    outcome_for_status_code,
    recipient_opted_out,
)
from gateway.channels.base import (
    OutgoingSms,
    ProviderError,
    RecipientResult,
    SendOutcome,
    describe_results,
)
from gateway.text.phone import InvalidPhoneNumber, as_sent, mask_phone, normalize_phone

__all__ = ["MessagingApi"]

log = logging.getLogger(__name__)

MAX_ERROR_TEXT_LENGTH: Final = 200

_NOT_WRITTEN: Final = (
    aiohttp.ClientConnectorError,  # refused, DNS, TLS: no connection was made
    aiohttp.ConnectionTimeoutError,  # no connection within the timeout
    aiohttp.InvalidURL,
)
"""Errors raised before the request could be written: nothing reached AT."""


class MessagingApi:
    """AT's ``/version1/messaging`` for one account: ``settings`` name it, its sender ID
    and timeout; ``region`` is the country a number without a country code is read in."""

    def __init__(self, settings: AfricasTalkingSettings, *, region: str) -> None:
        self.username = settings.username
        self.sender_id = settings.sender_id
        self.timeout = settings.timeout_seconds
        self.base_url = settings.resolved_base_url
        self.region = region
        self._api_key = settings.api_key

    def __repr__(self) -> str:  # never show the API key
        return f"MessagingApi(username={self.username!r}, base_url={self.base_url!r})"

    @property
    def url(self) -> str:
        """Where :meth:`send` posts: ``{base_url}/version1/messaging``."""
        return f"{self.base_url}/version1/messaging"

    def _form(self, sms: OutgoingSms, to: list[str]) -> dict[str, str]:
        # Same fields, in the same order, as africastalking.SMS.send (SDK 2.0.3).
        form = {
            "username": self.username,
            "to": ",".join(to),
            "message": sms.text,
            "bulkSMSMode": "1",
        }
        if self.sender_id:
            form["from"] = self.sender_id
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
        results, by_number = self._numbers(sms.recipients)
        if not by_number:
            return results
        try:
            status, body = await self._post(sms, by_number, session)
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
        results += self._results(message, answered, by_number)
        log.info(
            "africastalking: sent to %d recipient(s): %s", len(by_number), describe_results(results)
        )
        return results

    def _numbers(self, recipients: tuple[str, ...]) -> tuple[list[RecipientResult], dict[str, str]]:
        """Failures for recipients that are not phone numbers, and the rest by their E.164
        form (-> the caller's spelling)."""
        results: list[RecipientResult] = []
        by_number: dict[str, str] = {}
        for raw in recipients:
            try:
                number = as_sent(raw, region=self.region)
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
        return results, by_number

    async def _post(
        self, sms: OutgoingSms, by_number: Mapping[str, str], session: aiohttp.ClientSession
    ) -> tuple[int, str]:
        """The answer's status and body; raises ProviderError when nothing was written."""
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
                self.url,
                data=payload,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as response:
                body = (await response.read()).decode("utf-8", errors="replace")
                return response.status, body
        except _NOT_WRITTEN as exc:
            raise ProviderError(
                f"Africa's Talking unreachable: {type(exc).__name__}: {exc}", transient=True
            ) from None

    def _results(
        self, message: str, answered: list[Any], by_number: Mapping[str, str]
    ) -> list[RecipientResult]:
        """One result per number sent to, from AT's ``Recipients`` (or its ``Message``)."""
        if not answered and message.strip() in PERMANENT_REQUEST_MESSAGES:
            log.warning("africastalking: send refused as a whole: %s", message)
            return [
                RecipientResult(
                    phone=raw, outcome=SendOutcome.PERMANENT_FAILURE, provider_status=message
                )
                for raw in by_number.values()
            ]
        seen: dict[str, RecipientResult] = {}
        for entry in answered:
            result = self._recipient_result(entry, by_number)
            if result is not None:
                seen.setdefault(result.phone, result)
        results = []
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
            opted_out=recipient_opted_out(code, provider_status),
        )


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

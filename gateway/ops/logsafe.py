"""Secrets out of logs and error pages.

:class:`RedactSecrets` rewrites a log record's message, traceback and stack so that no
``Authorization`` (or ``apiKey``) value, bearer token, or staff token (by its shape) is
left: a token's public prefix stays, to tell tokens apart. :func:`install` applies it to
every record as the record is made, so that every handler sees only redacted records: the
gateway's, aiohttp's (which logs a malformed request's raw header line), and handlers
added later, such as a test's.

aiohttp answers a request it cannot parse (a control character in a header, a header
past 8 KiB) itself, before any middleware: it logs the raw line at ERROR with its
traceback, and echoes it in the 400 body, the caller's token with it. :func:`install`
also replaces that answer with a plain 400 that quotes nothing, logged as a warning
naming only the kind of error. aiohttp offers no hook for it (aio-libs/aiohttp#3287),
so its ``RequestHandler.handle_error`` is wrapped, for these errors only.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from gateway.text.phone import mask_phone

__all__ = ["BAD_REQUEST_BODY", "RedactSecrets", "install", "mask_numbers", "redact"]

log = logging.getLogger(__name__)

REDACTED: Final = "[redacted]"
BAD_REQUEST_BODY: Final = "400 Bad Request: a malformed request line or header\n"
"""What a request aiohttp could not parse is answered (it quotes nothing of the request)."""

_SECRETS: Final = (
    # A header and its value, as written in a request or a dict's repr: up to the end of
    # the line or the closing quote.
    (
        re.compile(
            r"""(?i)\b((?:proxy-)?authorization|x-api-key|api[-_]?key)(['"]?\s*[:=]\s*['"]?)"""
            r"""[^\r\n'"]*"""
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"""(?i)\b(bearer)(\s+)[^\s'"]+"""), rf"\1\2{REDACTED}"),
    # A staff token wherever it is (gateway.staff.accounts.issue_token's shape), prefix kept, and
    # an Africa's Talking API key.
    (re.compile(r"(spk_[0-9a-f]{8}_)[A-Za-z0-9_-]+"), rf"\1{REDACTED}"),
    (re.compile(r"(atsk_)[A-Za-z0-9_-]+"), rf"\1{REDACTED}"),
)
_MARK: Final = "_sampark_redacted"
_NUMBER: Final = re.compile(r"(?:%2B|\+)?\d{5,}")


def mask_numbers(text: str) -> str:
    """``text`` with each run of five digits or more (a phone number, a ticket) masked as
    :func:`~gateway.text.phone.mask_phone` masks a number: its last four digits kept."""
    return _NUMBER.sub(lambda m: mask_phone(m.group().replace("%2B", "+")), text)


def redact(text: str) -> str:
    """``text`` without secrets, and with any lone surrogate escaped (no log file takes
    one: a header's bytes that were not UTF-8 arrive so)."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class RedactSecrets(logging.Filter):
    """Rewrites each record it sees without secrets (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _MARK, False):
            return True
        setattr(record, _MARK, True)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: the handler reports it as logging does
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            clean = redact(record.exc_text)
            if clean != record.exc_text:
                # The exception itself holds the secret: formatters print exc_text alone.
                record.exc_text, record.exc_info = clean, None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_installed = False


def install() -> None:
    """Redact every log record as it is made, and answer unparseable requests with
    :data:`BAD_REQUEST_BODY`. Idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()
    secrets = RedactSecrets()

    def redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        secrets.filter(record)
        return record

    logging.setLogRecordFactory(redacted_record)
    RequestHandler.handle_error = _quiet_handle_error(RequestHandler.handle_error)  # type: ignore[method-assign]


def _quiet_handle_error(original: Any) -> Any:
    def handle_error(
        self: RequestHandler,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status != 400 or not isinstance(exc, HttpProcessingError):
            return original(self, request, status, exc, message)  # type: ignore[no-any-return]
        # The message quotes the offending line; its first clause names the error.
        kind = str(exc.message).split(":", 1)[0].splitlines()[0][:80] if exc.message else ""
        level = logging.DEBUG if isinstance(exc, BadHttpMethod) else logging.WARNING
        log.log(level, "bad HTTP request from %s: %s (%s)", request.remote, kind,
                type(exc).__name__)  # fmt: skip
        if request.writer.output_size > 0:
            raise ConnectionError("response already started, cannot answer the bad request")
        response = web.Response(status=400, text=BAD_REQUEST_BODY, content_type="text/plain")
        response.force_close()
        return response

    return handle_error

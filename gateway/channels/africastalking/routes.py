"""Africa's Talking's callback routes (all ``POST``, ``application/x-www-form-urlencoded``):

* ``/ussd/africastalking`` – a USSD hop; answered ``200 text/plain`` ``CON ...``/``END ...``.
* ``/ussd/africastalking/events`` – the end-of-session notification.
* ``/sms/africastalking/delivery`` – an SMS delivery report.
* ``/sms/africastalking/inbound`` – an incoming SMS.

A payload that is not form-encoded, or lacks or garbles a required field, is answered
``400 text/plain`` naming the field; bad input never becomes a 500. An incoming SMS the
application could not handle is answered ``503`` (AT sends it again). Phone numbers are
masked in logs and message texts are never logged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from gateway.channels.africastalking.parse import (
    format_ussd_reply,
    parse_delivery_report,
    parse_inbound_sms,
    parse_ussd_hop,
    parse_ussd_session_end,
)
from gateway.channels.base import CALLBACKS, CallbackLimits, PayloadError, RetryLater
from gateway.channels.fields import read_form
from gateway.text.phone import mask_phone

__all__ = ["DELIVERY_PATH", "INBOUND_PATH", "USSD_EVENTS_PATH", "USSD_PATH", "routes"]

log = logging.getLogger(__name__)

USSD_PATH: Final = "/ussd/africastalking"
USSD_EVENTS_PATH: Final = "/ussd/africastalking/events"
DELIVERY_PATH: Final = "/sms/africastalking/delivery"
INBOUND_PATH: Final = "/sms/africastalking/inbound"


_Handler = Callable[..., Awaitable[web.Response]]


def routes(*, region: str, limits: CallbackLimits) -> list[web.AbstractRouteDef]:
    """The four callback routes; handlers find the application at ``request.app[CALLBACKS]``."""
    handlers: tuple[tuple[str, _Handler], ...] = (
        (USSD_PATH, _ussd_hop),
        (USSD_EVENTS_PATH, _ussd_session_ended),
        (DELIVERY_PATH, _delivery_report),
        (INBOUND_PATH, _inbound_sms),
    )
    return [
        web.post(path, functools.partial(handler, region=region, limits=limits))
        for path, handler in handlers
    ]


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/plain")


def _bad_request(request: web.Request, problem: str) -> web.Response:
    log.warning("africastalking: 400 for %s: %s", request.path, problem)
    return _text(problem, status=400)


async def _ussd_hop(request: web.Request, *, region: str, limits: CallbackLimits) -> web.Response:
    try:
        hop = parse_ussd_hop(await read_form(request), limits=limits, region=region)
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


async def _ussd_session_ended(
    request: web.Request, *, region: str, limits: CallbackLimits
) -> web.Response:
    try:
        end = parse_ussd_session_end(await read_form(request), limits=limits, region=region)
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


async def _delivery_report(
    request: web.Request, *, region: str, limits: CallbackLimits
) -> web.Response:
    try:
        report = parse_delivery_report(await read_form(request), limits=limits, region=region)
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


async def _inbound_sms(
    request: web.Request, *, region: str, limits: CallbackLimits
) -> web.Response:
    try:
        sms = parse_inbound_sms(await read_form(request), limits=limits, region=region)
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

"""Exotel's callback routes:

* ``POST /sms/exotel/delivery`` – an SMS's ``StatusCallback`` (a form); answered ``200``,
  or ``503`` when the report cannot be placed yet (Exotel tries again, up to twice).
* ``GET /calls/exotel/missed`` – the Passthru applet of the helpline number's call flow:
  a missed call; answered ``200`` quickly (the flow waits for it).

A payload that lacks or garbles a required field is answered ``400 text/plain`` naming it.
Numbers are masked in logs.
"""

from __future__ import annotations

import functools
import logging
from typing import Final

from aiohttp import web

from gateway.channels.base import CALLBACKS, CallbackLimits, PayloadError, RetryLater
from gateway.channels.exotel.parse import parse_delivery_report, parse_missed_call
from gateway.channels.exotel.send import DELIVERY_PATH
from gateway.channels.fields import read_form, read_query
from gateway.text.phone import mask_phone

__all__ = ["DELIVERY_PATH", "MISSED_CALL_PATH", "routes"]

log = logging.getLogger(__name__)

MISSED_CALL_PATH: Final = "/calls/exotel/missed"


def routes(*, region: str, limits: CallbackLimits) -> list[web.AbstractRouteDef]:
    """The callback routes; handlers find the application at ``request.app[CALLBACKS]``."""
    return [
        web.post(DELIVERY_PATH, functools.partial(_delivery_report, region=region, limits=limits)),
        web.get(MISSED_CALL_PATH, functools.partial(_missed_call, region=region), allow_head=False),
    ]


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/plain")


async def _delivery_report(
    request: web.Request, *, region: str, limits: CallbackLimits
) -> web.Response:
    try:
        report = parse_delivery_report(await read_form(request), limits=limits, region=region)
    except PayloadError as exc:
        log.warning("exotel: 400 for %s: %s", request.path, exc)
        return _text(str(exc), status=400)
    log.info(
        "exotel: delivery report sid=%s status=%s reason=%s phone=%s",
        report.provider_message_id,
        report.provider_status,
        report.failure_reason,
        mask_phone(report.phone),
    )
    try:
        await request.app[CALLBACKS].delivery_report(report)
    except RetryLater as exc:
        log.info("exotel: delivery report sid=%s: %s; 503", report.provider_message_id, exc)
        response = _text("not handled, send again", status=503)
        response.headers["Retry-After"] = "5"
        return response
    return _text("OK")


async def _missed_call(request: web.Request, *, region: str) -> web.Response:
    try:
        call = parse_missed_call(read_query(request), region=region)
    except PayloadError as exc:
        log.warning("exotel: 400 for %s: %s", request.path, exc)
        return _text(str(exc), status=400)
    log.info("exotel: missed call sid=%s from=%s", call.call_id, mask_phone(call.caller))
    try:
        await request.app[CALLBACKS].missed_call(call)
    except Exception:
        # Passthru does not call again: the call is lost either way, and a non-200 would
        # send the caller down the flow's other branch.
        log.exception("exotel: missed call sid=%s not handled", call.call_id)
    return _text("OK")

"""IMImobile's callback route: ``/ussd/imimobile`` (``GET`` with a query string, or ``POST``
with a form: the fields are the same).

The answer is ``200 text/plain``, the screen as the body, with ``X-USSD-SESSION: 1`` to wait
for the caller's input or ``0`` to end the session. A hang-up is answered ``200`` with an
empty body and ``X-USSD-SESSION: 0``. A request lacking or garbling a field is answered
``400`` naming it. Numbers are masked in logs, inputs never logged.
"""

from __future__ import annotations

import functools
import logging
from typing import Final

from aiohttp import web

from gateway.channels.base import CALLBACKS, CallbackLimits, PayloadError, UssdSessionEnd
from gateway.channels.fields import read_form, read_query
from gateway.channels.imimobile.parse import parse_request
from gateway.text.phone import mask_phone

__all__ = ["SESSION_HEADER", "USSD_PATH", "routes"]

log = logging.getLogger(__name__)

USSD_PATH: Final = "/ussd/imimobile"
SESSION_HEADER: Final = "X-USSD-SESSION"


def routes(*, region: str, limits: CallbackLimits) -> list[web.AbstractRouteDef]:
    """The USSD route, for GET and POST."""
    handler = functools.partial(_ussd, region=region, limits=limits)
    return [web.get(USSD_PATH, handler, allow_head=False), web.post(USSD_PATH, handler)]


def _answer(text: str, *, end: bool, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/plain")
    response.headers[SESSION_HEADER] = "0" if end else "1"
    return response


async def _ussd(request: web.Request, *, region: str, limits: CallbackLimits) -> web.Response:
    try:
        fields = read_query(request)
        if request.method == "POST":
            fields.update(await read_form(request))
        parsed = parse_request(fields, limits=limits, region=region)
    except PayloadError as exc:
        log.warning("imimobile: 400 for %s: %s", request.path, exc)
        return _answer(str(exc), end=True, status=400)
    callbacks = request.app[CALLBACKS]
    if isinstance(parsed, UssdSessionEnd):
        log.info(
            "imimobile: caller hung up session=%s phone=%s",
            parsed.session_id,
            mask_phone(parsed.phone),
        )
        await callbacks.ussd_session_ended(parsed)
        return _answer("", end=True)
    log.debug(
        "imimobile: ussd hop session=%s phone=%s service=%s",
        parsed.session_id,
        mask_phone(parsed.phone),
        parsed.service_code,
    )
    reply = await callbacks.ussd_hop(parsed)
    return _answer(reply.text, end=reply.end)

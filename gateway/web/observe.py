"""What every HTTP request leaves for operators: its request ID (``X-Request-ID``, taken
from the request or made up, answered back, and carried into the log lines and the jobs
the request leads to), one access-log line with numbers masked, and its count in the
metrics (a provider's callback refused with a 4xx counted as such)."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import AbstractResource

from gateway.ops import logsafe, metrics

__all__ = ["CALLBACK_ROUTES", "REQUEST_ID_HEADER", "observe", "request_id_of"]

REQUEST_ID_HEADER = "X-Request-ID"
CALLBACK_ROUTES = web.AppKey("callback_routes", dict[AbstractResource, str])
"""The providers' callback routes, each with the name of its provider."""

_ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
access_log = structlog.stdlib.get_logger("gateway.access")


def request_id_of(request: web.Request) -> str:
    """The caller's ``X-Request-ID`` when it is a plain token of 64 characters or fewer
    (it goes into log lines), else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _ACCEPTED_ID.match(given) else uuid.uuid4().hex


def _kind(request: web.Request, provider: str | None) -> str:
    if provider is not None:
        return "callback"
    path = request.path
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/healthz"):
        return "health"
    return "metrics" if path == "/metrics" else "other"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_of(request)
    started = time.perf_counter()
    status = 500
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        try:
            response = await handler(request)
            status = response.status
            response.headers[REQUEST_ID_HEADER] = request_id
            return response
        except web.HTTPException as e:
            status = e.status
            e.headers[REQUEST_ID_HEADER] = request_id
            raise
        finally:
            _account(request, status, time.perf_counter() - started)


def _account(request: web.Request, status: int, seconds: float) -> None:
    resource = request.match_info.route.resource
    routes = request.app.get(CALLBACK_ROUTES, {})
    provider = routes.get(resource) if resource is not None else None
    kind = _kind(request, provider)
    metrics.http_request(kind, status)
    if provider is not None and 400 <= status < 500:
        metrics.callback_refused(provider, status)
    if kind in ("health", "metrics") and status < 400:
        return  # polled every few seconds: their lines would drown the rest
    # A route's pattern hides what its placeholders matched; an unmatched path is logged
    # with its numbers masked (a phone number, a ticket in a probe).
    path = resource.canonical if resource is not None else logsafe.mask_numbers(request.path)
    access_log.info(
        "request",
        method=request.method,
        path=path,
        status=status,
        ms=round(seconds * 1000, 1),
        peer=request.remote,
    )

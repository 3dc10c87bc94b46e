"""The staff API under ``/api/v1``: a sub-application with bearer-token authentication.

Each resource is one module (``me``, ``complaints``, ``campaigns``, ``review``) holding a
``routes`` table whose handlers are declared with :func:`gateway.web.api.openapi.operation`.
Services are reached through the parent application's keys (``request.config_dict``).
"""

from __future__ import annotations

from aiohttp import web

from gateway.web.api import campaigns, complaints, me, review
from gateway.web.api.common import api_middleware
from gateway.web.api.openapi import document

__all__ = ["API_PREFIX", "create_api"]

API_PREFIX = "/api/v1"

RESOURCES = (me.routes, complaints.routes, campaigns.routes, review.routes)


def create_api() -> web.Application:
    """The ``/api/v1`` sub-application (mount it with ``app.add_subapp(API_PREFIX, ...)``)."""
    api = web.Application(middlewares=[api_middleware], client_max_size=8 * 1024 * 1024)
    for routes in RESOURCES:
        api.router.add_routes(routes)
    api.router.add_get("/openapi.json", openapi_json)
    return api


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI document (no token needed)."""
    return web.json_response(document(title="Sampark staff API", version="1"))

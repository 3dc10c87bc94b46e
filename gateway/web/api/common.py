"""What every staff API handler shares: who is asking, their scope, JSON errors, bodies.

Errors are JSON ``{"error": {"code": ..., "message": ..., "field": ...}}``. A complaint
(or campaign) outside what the caller may read answers 404 exactly like one that does not
exist, so that ticket numbers cannot be probed; a role that may never do an action gets 403
(``forbidden``), and so does an action on a complaint the caller may read but not act on
(``out_of_scope``). A :class:`~gateway.errors.FieldError` raised anywhere below a handler
(the domain refusing a value, or the body or query failing its model) answers 400
(``invalid``) naming the field, here and nowhere else.

A body must be UTF-8 JSON nested at most :data:`MAX_JSON_DEPTH` deep, and no string in a
body or the query may hold a NUL or a lone surrogate (no column takes them): a 400 names
the field. Free text is refused rather than cleaned here, unlike a provider's callback: a
staff member's client can be told, and fixed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.complaints.scope import Scope, scope_of
from gateway.errors import FieldError
from gateway.staff.accounts import staff_for_token
from gateway.storage.limits import unstorable
from gateway.storage.models import StaffMember
from gateway.web.keys import CONFIG

__all__ = [
    "PUBLIC_PATHS",
    "ApiError",
    "api_middleware",
    "error_response",
    "parse_body",
    "parse_query",
    "request_body",
    "request_query",
    "request_scope",
    "request_staff",
]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC_PATHS = frozenset({"/api/v1/openapi.json"})
"""Paths answered without a token."""

MAX_JSON_DEPTH = 16
"""How deeply a body's arrays and objects may nest (the deepest body we take is 4)."""

_STAFF = web.RequestKey("staff", StaffMember)
_SCOPE = web.RequestKey("scope", Scope)
_BODY = web.RequestKey("body", BaseModel)
_QUERY = web.RequestKey("query", BaseModel)


class ApiError(Exception):
    """An answer other than success, for machines: status, a stable code, a message."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    @classmethod
    def not_found(cls, what: str = "complaint") -> ApiError:
        return cls(404, "not_found", f"no such {what}")


def error_response(
    status: int, code: str, message: str, *, field: str | None = None
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return web.json_response({"error": error}, status=status)


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate the bearer token and turn every failure into a JSON error."""
    try:
        if request.path not in PUBLIC_PATHS:
            await _authenticate(request)
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.code, e.message, field=e.field)
    except FieldError as e:
        return error_response(400, "invalid", str(e), field=e.field)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            e.status, "http_error"
        )
        return error_response(e.status, code, e.reason)
    except Exception:
        log.exception("staff API %s %s failed", request.method, request.path)
        return error_response(500, "internal", "the server could not complete the request")


async def _authenticate(request: web.Request) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <token>'")
    staff = await staff_for_token(token.strip())
    if staff is None:
        raise ApiError(401, "unauthorized", "the token is unknown, revoked or its account inactive")
    request[_STAFF] = staff
    request[_SCOPE] = scope_of(staff, request.config_dict[CONFIG])


def request_staff(request: web.Request) -> StaffMember:
    """The authenticated staff member making ``request``."""
    return request[_STAFF]


def request_scope(request: web.Request) -> Scope:
    """The scope of the staff member making ``request``."""
    return request[_SCOPE]


def request_body(request: web.Request, model: type[M]) -> M:
    """The body of ``request``, parsed as its operation declares (``body=model``)."""
    return _parsed(request, _BODY, model)


def request_query(request: web.Request, model: type[M]) -> M:
    """The query of ``request``, parsed as its operation declares (``query=model``)."""
    return _parsed(request, _QUERY, model)


def _parsed(request: web.Request, key: web.RequestKey[BaseModel], model: type[M]) -> M:
    parsed = request.get(key)
    if not isinstance(parsed, model):  # the handler asks for what its operation did not declare
        raise TypeError(f"{request.method} {request.path}: nothing parsed as {model.__name__}")
    return parsed


def _validated(model: type[M], raw: dict[str, Any]) -> M:
    """``raw`` as ``model``; a :class:`FieldError` naming the first field that is wrong."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        raise FieldError(".".join(str(p) for p in err["loc"]) or "body", err["msg"]) from None


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The JSON body as ``model``, kept for :func:`request_body`; 400 naming the field that
    is wrong."""
    body = await request.read()  # at most the application's client_max_size: else 413
    try:
        # JSON between systems is UTF-8 (RFC 8259), whatever charset the header names.
        raw = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8 or JSON, too deep, too many digits
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    _check_json(raw)
    parsed: BaseModel = _validated(model, raw)
    request[_BODY] = parsed
    return request_body(request, model)


def _check_json(raw: dict[str, Any]) -> None:
    """400 for nesting past :data:`MAX_JSON_DEPTH`, or a string no column takes."""
    stack: list[tuple[str, Any, int]] = [("", raw, 1)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ApiError(
                    400, "invalid_json", f"the body nests deeper than {MAX_JSON_DEPTH} levels"
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and unstorable(key):
                    _unstorable(name)
                stack.append((name, item, depth + 1))
        elif isinstance(value, str) and unstorable(value):
            _unstorable(path)


def _unstorable(field: str) -> NoReturn:
    field = repr(field)[1:-1]  # the name itself may hold what is refused
    raise FieldError(field, "contains a NUL or an invalid character")


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string as ``model``, kept for :func:`request_query`; 400 naming the
    parameter that is wrong."""
    query = dict(request.query)
    for name, value in query.items():
        if unstorable(name) or unstorable(value):
            _unstorable(name)
    parsed: BaseModel = _validated(model, query)
    request[_QUERY] = parsed
    return request_query(request, model)

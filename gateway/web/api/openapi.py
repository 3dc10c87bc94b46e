"""The staff API's operations as they are declared, and the OpenAPI document built from them.

Each handler is declared with :func:`operation`: its route, summary, roles, query
parameters and body and response models (pydantic). The declaration is also what runs
before the handler: a caller without one of the roles gets 403, and the query and the body
are parsed as their models (400 naming the field), the handler reading them with
:func:`~gateway.web.api.common.request_query` and
:func:`~gateway.web.api.common.request_body`. The document at ``/api/v1/openapi.json`` is
therefore always the API that runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from gateway.storage.models import StaffRole
from gateway.web.api.common import ApiError, Handler, parse_body, parse_query, request_staff

__all__ = ["OPERATIONS", "Operation", "declared", "document", "operation"]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    """Relative to ``/api/v1``, with ``{name}`` path parameters."""
    summary: str
    roles: tuple[StaffRole, ...]
    """Who may call it (403 for any other role); empty: every staff member."""
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    content_types: tuple[str, ...] = ("application/json",)
    extra_responses: dict[int, str] = field(default_factory=dict)
    status: int | None = None
    """The success status, when not the default (201 for a POST with a body, else 200)."""
    body_media_type: str | None = None
    """A request body that is not a JSON model (e.g. ``text/csv``), read by the handler."""


OPERATIONS: list[Operation] = []


def operation(
    routes: web.RouteTableDef,
    method: str,
    path: str,
    *,
    summary: str,
    roles: tuple[StaffRole, ...] = (),
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    content_types: tuple[str, ...] = ("application/json",),
    extra_responses: dict[int, str] | None = None,
    status: int | None = None,
    body_media_type: str | None = None,
) -> Callable[[Handler], Handler]:
    """Declare a staff API handler: its route in ``routes``, run behind the checks the
    declaration makes (:func:`declared`), and its entry in the document."""

    def register(handler: Handler) -> Handler:
        op = Operation(
            method=method.upper(),
            path=path,
            summary=summary,
            roles=roles,
            query=query,
            body=body,
            response=response,
            content_types=content_types,
            extra_responses=dict(extra_responses or {}),
            status=status,
            body_media_type=body_media_type,
        )
        OPERATIONS.append(op)
        checked = declared(op, handler)
        routes.route(op.method, path)(checked)
        return checked

    return register


def declared(op: Operation, handler: Handler) -> Handler:
    """``handler`` behind what ``op`` declares: the role, then the query, then the body."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        staff = request_staff(request)
        if op.roles and StaffRole(staff.role) not in op.roles:
            allowed = ", ".join(r.value for r in op.roles)
            raise ApiError(403, "forbidden", f"this needs one of the roles: {allowed}")
        if op.query is not None:
            parse_query(request, op.query)
        if op.body is not None:
            await parse_body(request, op.body)
        return await handler(request)

    return checked


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
            "required": ["code", "message"],
        }
    },
}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def document(*, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for every declared operation."""
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for op in sorted(OPERATIONS, key=lambda o: (o.path, o.method)):
        entry: dict[str, Any] = {"summary": op.summary, "responses": {}}
        if op.roles:
            entry["description"] = "Roles: " + ", ".join(r.value for r in op.roles)
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(op.path)
        ]
        if op.query is not None:
            qs = op.query.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(qs.pop("$defs", {}))
            required = set(qs.get("required", []))
            for name, prop in qs.get("properties", {}).items():
                params.append(
                    {"name": name, "in": "query", "required": name in required, "schema": prop}
                )
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(op.body, components)}},
            }
        elif op.body_media_type is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {op.body_media_type: {"schema": {"type": "string"}}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if op.response is not None:
            ok["content"] = {"application/json": {"schema": _schema(op.response, components)}}
        elif op.content_types != ("application/json",):
            ok["content"] = {ct: {} for ct in op.content_types}
        default = 201 if op.method == "POST" and op.body else 200
        entry["responses"][str(op.status or default)] = ok
        for status, text in {
            400: "Invalid request (names the field)",
            401: "No valid token",
            403: "The role may not do this",
            404: "Not found, or outside the caller's scope",
            **op.extra_responses,
        }.items():
            # Another success (e.g. 200 beside 201) answers the same body as the first.
            content = error if status >= 300 else ok.get("content")
            entry["responses"][str(status)] = {"description": text}
            if content:
                entry["responses"][str(status)]["content"] = content
        paths.setdefault("/api/v1" + op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]

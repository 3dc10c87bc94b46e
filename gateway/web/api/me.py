"""``/me``: who the token belongs to, and their scope."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from gateway.web.api.common import request_scope, request_staff
from gateway.web.api.openapi import operation

__all__ = ["routes"]

routes = web.RouteTableDef()


class MeOut(BaseModel):
    username: str
    name: str
    role: str
    scope: dict[str, str | int | bool | None]


@operation(routes, "GET", "/me", summary="The caller's account and scope", response=MeOut)
async def me(request: web.Request) -> web.Response:
    staff = request_staff(request)
    out = MeOut(
        username=staff.username,
        name=staff.name,
        role=str(staff.role),
        scope=request_scope(request).as_json(),
    )
    return web.json_response(out.model_dump())

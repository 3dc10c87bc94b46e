"""Signing in and out, the one-time set-password page, and the language switch.

Failed sign-ins are counted in Redis per account and per address for
``console.failure_window_minutes``; past ``console.failures_per_account`` or
``failures_per_address`` every sign-in from there, right or wrong, is refused until the
window ends (the answer does not say whether the password was right). Sign-ins, refused
sign-ins and sign-outs are audit records.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from aiohttp_session import get_session

from gateway.errors import FieldError
from gateway.staff.audit import actor_of, audit
from gateway.staff.passwords import check_sign_in, staff_for_link, use_password_link
from gateway.storage.models import StaffMember
from gateway.web.console.pages import CONSOLE_TEXT, render
from gateway.web.console.session import (
    flash,
    sign_in_session,
    sign_out_session,
    signed_in_staff,
)
from gateway.web.console.text import C_
from gateway.web.keys import CLOCK, CONFIG, REDIS

__all__ = ["routes"]

routes = web.RouteTableDef()


def _address(request: web.Request) -> str:
    return request.remote or "unknown"


def _keys(username: str, address: str) -> tuple[str, str]:
    return (
        f"sampark:console:failed:account:{username.lower()[:40]}",
        f"sampark:console:failed:address:{address}",
    )


async def _throttled(request: web.Request, username: str) -> bool:
    settings = request.config_dict[CONFIG].console
    account, address = _keys(username, _address(request))
    counts = await request.config_dict[REDIS].mget([account, address])
    by_account, by_address = (int(c) if c is not None else 0 for c in counts)
    return (
        by_account >= settings.failures_per_account or by_address >= settings.failures_per_address
    )


async def _count_failure(request: web.Request, username: str) -> None:
    window = request.config_dict[CONFIG].console.failure_window_minutes * 60
    redis = request.config_dict[REDIS]
    for key in _keys(username, _address(request)):
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=window, nx=True)  # the window starts at the first failure
            pipe.incr(key)
            await pipe.execute()


@routes.get("/signin")
async def signin_page(request: web.Request) -> web.StreamResponse:
    return await render(request, "signin.html", error=None, username="")


@routes.post("/signin")
async def signin(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    lang = request.config_dict[CONSOLE_TEXT]
    session = await get_session(request)
    chosen = lang.choose(session.get("lang"))

    def say(message: str) -> str:
        return lang.gettext(chosen, message)

    if await _throttled(request, username):
        await audit("console", "console.signin_throttled", target=f"staff:{username[:40]}")
        return await render(
            request,
            "signin.html",
            status=429,
            username=username,
            error=say(C_("Too many failed sign-ins. Wait 15 minutes and try again.")),
        )
    staff = await check_sign_in(username, password) if username and password else None
    if staff is None:
        await _count_failure(request, username)
        await audit(
            "console",
            "console.signin_failed",
            target=f"staff:{username[:40]}",
            detail={"address": _address(request)},
        )
        return await render(
            request,
            "signin.html",
            status=401,
            username=username,
            error=say(C_("Wrong username or password.")),
        )
    await sign_in_session(request, staff)
    await audit(actor_of(staff), "console.signin", detail={"address": _address(request)})
    raise web.HTTPSeeOther("/console/")


@routes.post("/signout")
async def signout(request: web.Request) -> web.StreamResponse:
    staff = signed_in_staff(request)
    await sign_out_session(request)
    if staff is not None:
        await audit(actor_of(staff), "console.signout")
    raise web.HTTPSeeOther("/console/signin")


@routes.post("/language")
async def switch_language(request: web.Request) -> web.StreamResponse:
    """The language switch: remembered in the session, and on the account when signed in."""
    form = await request.post()
    text = request.config_dict[CONSOLE_TEXT]
    lang = text.choose(str(form.get("lang", "")))
    session = await get_session(request)
    session["lang"] = lang
    staff_id = session.get("staff")
    if isinstance(staff_id, int):
        await StaffMember.filter(id=staff_id).update(console_language=lang)
    back = str(form.get("next", "/console/"))
    # Only a path of the console: never a redirect to another site.
    target = urlsplit(back)
    if target.scheme or target.netloc or not target.path.startswith("/console/"):
        back = "/console/"
    raise web.HTTPSeeOther(back)


@routes.get("/password/{secret}")
async def password_page(request: web.Request) -> web.StreamResponse:
    staff = await staff_for_link(request.match_info["secret"], now=request.config_dict[CLOCK]())
    if staff is None:
        return await render(request, "password.html", status=404, staff_for_link=None, error=None)
    return await render(request, "password.html", staff_for_link=staff, error=None)


@routes.post("/password/{secret}")
async def password_set(request: web.Request) -> web.StreamResponse:
    secret = request.match_info["secret"]
    now = request.config_dict[CLOCK]()
    staff = await staff_for_link(secret, now=now)
    if staff is None:
        return await render(request, "password.html", status=404, staff_for_link=None, error=None)
    form = await request.post()
    password = str(form.get("password", ""))
    if password != str(form.get("again", "")):
        return await render(
            request, "password.html", status=400, staff_for_link=staff, error="again"
        )
    try:
        await use_password_link(secret, password, now=now)
    except FieldError as e:
        return await render(
            request, "password.html", status=400, staff_for_link=staff, error=e.problem
        )
    await flash(request, C_("Password set. Sign in with it."))
    raise web.HTTPSeeOther("/console/signin")

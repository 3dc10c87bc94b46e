"""Who is signed in to the console: sessions in Redis, the idle timeout, CSRF, headers.

A session lives in Redis under a random key that the browser holds in an ``HttpOnly``,
``SameSite=Lax`` cookie (``Secure`` with ``console.secure_cookies``); it expires after
``console.idle_minutes`` without a request (Redis's TTL, renewed by every request), and
signing out deletes it, so a copied cookie stops working at once. Signing in starts a new
session (no fixation). Every form carries the session's CSRF token: a POST without it, or
with another, answers 403 before any handler runs.

Every answer carries a strict Content-Security-Policy: the console's own scripts, styles
and images only, no inline script, no frames.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp_session import AbstractStorage, Session, get_session, new_session

from gateway.complaints.scope import Scope, scope_of
from gateway.config import Config
from gateway.storage.limits import unstorable
from gateway.storage.models import StaffMember
from gateway.web.keys import CONFIG, REDIS

__all__ = [
    "CSP",
    "RedisSessions",
    "console_middleware",
    "current_scope",
    "current_staff",
    "flash",
    "sign_in_session",
    "sign_out_session",
    "signed_in_staff",
]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COOKIE = "sampark_console"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
PUBLIC = ("/console/signin", "/console/static/", "/console/password/", "/console/language")
"""Paths answered without a signed-in staff member."""

_STAFF = web.RequestKey("console_staff", StaffMember)
_SCOPE = web.RequestKey("console_scope", Scope)


class RedisSessions(AbstractStorage):
    """aiohttp-session's storage on the gateway's own Redis (read from the application at
    each request: the pool is opened after the routes are made)."""

    def __init__(self, config: Config) -> None:
        super().__init__(
            cookie_name=COOKIE,
            path="/console",
            max_age=config.console.idle_minutes * 60,
            secure=config.console.secure_cookies,
            httponly=True,
            samesite="Lax",
        )

    @staticmethod
    def _key(identity: str) -> str:
        return f"sampark:console:session:{identity}"

    async def load_session(self, request: web.Request) -> Session:
        cookie = self.load_cookie(request)
        if not cookie or not str(cookie).isalnum() or len(str(cookie)) > 64:
            return Session(None, data=None, new=True, max_age=self.max_age)
        raw = await request.config_dict[REDIS].get(self._key(str(cookie)))
        if raw is None:
            return Session(None, data=None, new=True, max_age=self.max_age)
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        return Session(str(cookie), data=data, new=False, max_age=self.max_age)

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        redis = request.config_dict[REDIS]
        if session.empty:
            if session.identity is not None:
                await redis.delete(self._key(str(session.identity)))
            self.save_cookie(response, "", max_age=session.max_age)
            return
        identity = str(session.identity) if session.identity else secrets.token_hex(32)
        self.save_cookie(response, identity, max_age=session.max_age)
        data = json.dumps(self._get_session_data(session))
        await redis.set(self._key(identity), data, ex=session.max_age)

    async def forget(self, request: web.Request, identity: str) -> None:
        await request.config_dict[REDIS].delete(self._key(identity))


def current_staff(request: web.Request) -> StaffMember:
    """The signed-in staff member (every non-public page has one)."""
    return request[_STAFF]


def signed_in_staff(request: web.Request) -> StaffMember | None:
    """The signed-in staff member, or None on a public page."""
    return request.get(_STAFF)


def current_scope(request: web.Request) -> Scope:
    """Their scope, by :func:`gateway.complaints.scope.scope_of`, as the API computes it."""
    return request[_SCOPE]


def csrf_token(session: Session) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


async def sign_in_session(request: web.Request, staff: StaffMember) -> Session:
    """A new session for ``staff`` (the old one, signed in or not, is dropped)."""
    old = await get_session(request)
    lang = old.get("lang")
    if old.identity is not None:
        await _storage(request).forget(request, str(old.identity))
    session = await new_session(request)
    session["staff"] = staff.id
    session["seen"] = int(time.time())
    session["csrf"] = secrets.token_urlsafe(32)
    if staff.console_language:
        session["lang"] = staff.console_language
    elif lang:
        session["lang"] = lang
    return session


async def sign_out_session(request: web.Request) -> None:
    session = await get_session(request)
    session.invalidate()


async def flash(request: web.Request, message: str, *, kind: str = "ok", **values: str) -> None:
    """A message shown once, on the next page: ``message`` is translated there, then its
    ``{name}`` fields filled with ``values``."""
    session = await get_session(request)
    session["flash"] = [kind, message, values]


def _storage(request: web.Request) -> RedisSessions:
    from aiohttp_session import STORAGE_KEY

    storage = request[STORAGE_KEY]
    assert isinstance(storage, RedisSessions)
    return storage


def _public(path: str) -> bool:
    return path.startswith(PUBLIC)


async def _signed_in(request: web.Request, session: Session) -> StaffMember | None:
    staff_id = session.get("staff")
    if not isinstance(staff_id, int):
        return None
    idle = request.config_dict[CONFIG].console.idle_minutes * 60
    seen = session.get("seen")
    if not isinstance(seen, int) or time.time() - seen > idle:
        session.invalidate()
        return None
    staff = await StaffMember.get_or_none(id=staff_id, active=True)
    if staff is None:  # deactivated since: out at once
        session.invalidate()
        return None
    session["seen"] = int(time.time())  # renews the TTL: the idle timeout restarts
    return staff


async def _csrf_ok(request: web.Request, session: Session) -> bool:
    form = await request.post()
    sent = form.get("csrf")
    wanted = session.get("csrf")
    return (
        isinstance(sent, str)
        and isinstance(wanted, str)
        and hmac.compare_digest(sent.encode(), wanted.encode())
    )


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; a signed-in staff member for every page but the
    public ones; the CSRF token on every POST."""
    try:
        response = await _guarded(request, handler)
    except web.HTTPException as e:
        e.headers.update(HEADERS)
        raise
    response.headers.update(HEADERS)
    return response


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/console/static/"):
        return await handler(request)
    session = await get_session(request)
    csrf_token(session)
    if request.method == "POST" and not await _csrf_ok(request, session):
        raise web.HTTPForbidden(text="403: this form has expired or did not come from the console")
    await _storable(request)
    if not _public(request.path):
        staff = await _signed_in(request, session)
        if staff is None:
            raise web.HTTPSeeOther("/console/signin")
        request[_STAFF] = staff
        request[_SCOPE] = scope_of(staff, request.config_dict[CONFIG])
    return await handler(request)


async def _storable(request: web.Request) -> None:
    """400 naming the first field (of the query or the form) that no column can take: a NUL
    or a lone surrogate, refused as the API refuses them."""
    fields = list(request.query.items())
    if request.method == "POST":
        fields += [(k, v) for k, v in (await request.post()).items() if isinstance(v, str)]
    for name, value in fields:
        if unstorable(name) or unstorable(value):
            shown = repr(name)[1:-1][:40]
            raise web.HTTPBadRequest(text=f"400: {shown}: contains a NUL or an invalid character")


def session_context(session: Session) -> dict[str, Any]:
    """What every template gets from the session: its CSRF token, the flash message."""
    message = session.pop("flash", None)
    return {"csrf": csrf_token(session), "flash": message}

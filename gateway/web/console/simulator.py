"""The phone simulator at ``/console/simulator``: a feature phone in the page, for trainers,
translators and officers to see the citizen's side.

Dialling goes through the same provider callback a real network uses: the handler posts
the network's USSD form (:mod:`gateway.channels.simulator.network`) to the gateway's own
signed USSD callback over loopback, to the address and port the browser's request came in
on, so the hop passes the signer, the form parsing and the menus exactly as the network's
does. The secret stays on the server (the signer gives the path); the browser only ever
posts keypresses to the console. A reply SMS goes the same way to the inbound SMS callback. The
inbox is the outbox's rows for the number (every provider's, with delivery states) and the
number's SMS received.

Who may use it: anyone while the simulator provider sends (no SMS really goes out: the page
a trainer opens first needs no account); otherwise only a state administrator, and only
with the test numbers of ``console.simulator_numbers``, so that no citizen's SMS is shown.
Otherwise it answers 404, as if not there.

The page works without JavaScript (each key is a form button; the typed text is kept in the
session); ``simulator.js`` only types keys into the screen without a round trip.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp_session import Session, get_session

from gateway.channels.simulator import network
from gateway.config import Config
from gateway.storage.models import Citizen, InboundMessage, OutboundMessage, StaffRole
from gateway.text.encoding import USSD_UCS2_BUDGET, measure_screen
from gateway.text.phone import InvalidPhoneNumber, mask_phone, normalize_phone
from gateway.web.console.pages import render
from gateway.web.console.session import signed_in_staff
from gateway.web.console.text import C_
from gateway.web.keys import CONFIG, HTTP, SIGNER

__all__ = ["routes"]

routes = web.RouteTableDef()

KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")
LETTERS = ("", "abc", "def", "ghi", "jkl", "mno", "pqrs", "tuv", "wxyz", "", "+", "")
QUICK_REPLIES = ("1", "2", "STATUS", "HELP")
MAX_TYPED = 160
INBOX_SIZE = 20
_STATE = "sim"


@dataclass(frozen=True)
class Access:
    """Which numbers this visitor may use: any (``prefixes`` None) or the test ranges."""

    prefixes: tuple[str, ...] | None

    def allows(self, phone: str) -> bool:
        return self.prefixes is None or phone.startswith(self.prefixes)

    def default_number(self) -> str:
        if self.prefixes is None:
            return "+919812345678"
        return self.prefixes[0].ljust(13, "0")


def _access(request: web.Request) -> Access:
    """The visitor's access, or 404: the simulator is not there for them."""
    config = request.config_dict[CONFIG]
    if config.sms.provider == "simulator":
        return Access(prefixes=None)
    staff = signed_in_staff(request)
    ranges = config.console.simulator_numbers
    if staff is not None and staff.role == StaffRole.STATE_ADMIN and ranges:
        return Access(prefixes=tuple(ranges))
    raise web.HTTPNotFound(text="404: not found")


def _state(session: Session) -> dict[str, Any]:
    state = session.get(_STATE)
    return dict(state) if isinstance(state, dict) else {}


@routes.get("/simulator")
async def simulator_page(request: web.Request) -> web.StreamResponse:
    access = _access(request)
    session = await get_session(request)
    state = _state(session)
    config = request.config_dict[CONFIG]
    phone = _phone(state, access)
    screen = state.get("screen")
    measure = None
    if isinstance(screen, str):
        measure = measure_screen(screen, ucs2_budget=await _ucs2_budget(config, phone))
    return await render(
        request,
        "simulator.html",
        phone=phone,
        masked=mask_phone(phone),
        code=config.service.service_code,
        state=state,
        measure=measure,
        keys=list(zip(KEYS, LETTERS, strict=True)),
        quick_replies=QUICK_REPLIES,
        inbox=await _inbox(phone),
        test_numbers=access.prefixes,
    )


async def _ucs2_budget(config: Config, phone: str) -> int:
    """A UCS-2 screen's budget for the number's language (``screen_budget``, else 80), as
    the menus measure it; the service's default language before the number has chosen."""
    citizen = await Citizen.get_or_none(phone=phone)
    code = citizen.language if citizen and citizen.language else config.service.default_language
    lang = config.language(code)
    return lang.screen_budget if lang and lang.screen_budget else USSD_UCS2_BUDGET


@routes.post("/simulator")
async def simulator_action(request: web.Request) -> web.StreamResponse:
    access = _access(request)
    form = await request.post()
    session = await get_session(request)
    state = _state(session)
    config = request.config_dict[CONFIG]
    action = str(form.get("action", ""))
    typed = str(form.get("typed", state.get("typed", "")))[:MAX_TYPED]
    state.pop("error", None)
    state.pop("error_values", None)
    key = form.get("key")
    if isinstance(key, str) and key in KEYS:
        state["typed"] = (typed + key)[:MAX_TYPED]
    elif action == "number":
        _change_number(state, str(form.get("number", "")), access, config)
    elif action == "call":
        await _call(request, state, typed.strip(), config)
    elif action == "end":
        await _end_call(request, state, config, access)
    elif action == "clear":
        state["typed"] = typed[:-1]
    elif action == "sms":
        text = str(form.get("quick") or form.get("text", "")).strip()[:MAX_TYPED]
        await _send_sms(request, state, text, config, access)
    session[_STATE] = state
    raise web.HTTPSeeOther("/console/simulator")


def _change_number(state: dict[str, Any], raw: str, access: Access, config: Config) -> None:
    try:
        phone = normalize_phone(raw, region=config.service.country, sms=True)
    except InvalidPhoneNumber as e:
        state["error"] = f"number: {e.reason}"
        return
    if not access.allows(phone):
        state["error"] = C_("number: not one of the test numbers")
        return
    state.clear()
    state["phone"] = phone


async def _end_call(
    request: web.Request, state: dict[str, Any], config: Config, access: Access
) -> None:
    """Red key: hang up; mid-session, the network tells the gateway the session ended, as
    Africa's Talking does at the end of every session (``Incomplete``: the caller left)."""
    if state.get("session") and not state.get("ended"):
        form = network.ussd_end(
            session=state["session"], phone=_phone(state, access),
            code=config.service.service_code, inputs=state.get("inputs", []),
        )  # fmt: skip
        await _post_callback(request, network.USSD_END_PATH, form)
    _hang_up(state)


def _hang_up(state: dict[str, Any]) -> None:
    for name in ("session", "inputs", "screen", "ended", "typed"):
        state.pop(name, None)


def _phone(state: dict[str, Any], access: Access) -> str:
    """The phone's number: the one chosen, while the visitor may still use it."""
    phone = state.get("phone")
    if isinstance(phone, str) and access.allows(phone):
        return phone
    return access.default_number()


async def _call(request: web.Request, state: dict[str, Any], typed: str, config: Config) -> None:
    """Green key: dial the service code (no call on), or send what is typed (a call on)."""
    code = config.service.service_code
    if not state.get("session") or state.get("ended"):
        if typed and typed != code:
            state["error"] = C_("Dial {code}: it is the only code served here.")
            state["error_values"] = {"code": code}
            return
        state.update(session=f"SIM_{uuid.uuid4().hex[:12]}", inputs=[], ended=False)
    else:
        state["inputs"] = [*state.get("inputs", []), typed]
    state["typed"] = ""
    access = _access(request)
    form = network.ussd_hop(
        session=state["session"], phone=_phone(state, access), code=code, inputs=state["inputs"]
    )
    status, body = await _post_callback(request, network.USSD_HOP_PATH, form)
    if status != 200:
        _hang_up(state)
        state["error"] = C_("The gateway answered {status}.")
        state["error_values"] = {"status": str(status)}
        return
    screen, ended = network.ussd_answer(body)
    state.update(screen=screen, ended=ended)


async def _send_sms(
    request: web.Request, state: dict[str, Any], text: str, config: Config, access: Access
) -> None:
    if not text:
        state["error"] = C_("text: write the SMS first")
        return
    to = config.service.helpline_number or "Sampark"
    form = network.inbound_sms(phone=_phone(state, access), to=to, text=text)
    status, _ = await _post_callback(request, network.INBOUND_SMS_PATH, form)
    if status != 200:
        state["error"] = C_("The gateway answered {status}.")
        state["error_values"] = {"status": str(status)}


async def _post_callback(request: web.Request, path: str, form: dict[str, str]) -> tuple[int, str]:
    """POST ``form`` to the provider callback ``path``, signed, at this gateway's own
    address (the one this request came in on): the network's way in, on loopback."""
    signed = request.config_dict[SIGNER].path(path)
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if signed is None or not sockname:
        return 503, "not ready"
    host = str(sockname[0])
    host = f"[{host}]" if ":" in host else host
    url = f"http://{host}:{sockname[1]}{signed}"
    try:
        async with request.config_dict[HTTP].post(
            url, data=form, timeout=aiohttp.ClientTimeout(total=15)
        ) as resp:
            return resp.status, await resp.text()
    except (aiohttp.ClientError, TimeoutError):
        return 502, "no answer"


@dataclass(frozen=True)
class InboxItem:
    when: datetime
    incoming: bool
    """Sent by the phone (an SMS the gateway received), else sent to it."""
    text: str
    status: str | None


async def _inbox(phone: str) -> list[InboxItem]:
    """The number's SMS both ways, newest first."""
    sent = await OutboundMessage.filter(recipient=phone).order_by("-id").limit(INBOX_SIZE)
    received = await InboundMessage.filter(sender=phone).order_by("-id").limit(INBOX_SIZE)
    items = [InboxItem(m.created_at, False, m.text, m.status.value) for m in sent]
    items += [InboxItem(m.received_at, True, m.text, None) for m in received]
    items.sort(key=lambda item: item.when, reverse=True)
    return items[:INBOX_SIZE]

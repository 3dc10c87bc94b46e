"""The console's complaint pages: the signed-in member's work list, one complaint, its actions.

Everything is read through the member's :class:`~gateway.complaints.scope.Scope` (the
API's own, from :func:`~gateway.complaints.scope.scope_of`): a complaint outside it
answers 404 like one that does not exist. Actions go through the same
:class:`~gateway.complaints.lifecycle.Lifecycle` calls as the API, with the member as actor
and their scope, which the lifecycle checks on the row it locks; the roles allowed are the
API's (``ACTING``, ``DECIDING``). An action that texts the citizen is shown first as the
SMS the citizen will get (their language, its segments), and sent when confirmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import ValidationError
from tortoise.functions import Count
from tortoise.queryset import QuerySet

from gateway.complaints.lifecycle import (
    ALLOWED,
    OPEN,
    ConcurrentChange,
    IllegalTransition,
)
from gateway.complaints.routing import officer_refusal
from gateway.complaints.scope import OutOfScope, Scope
from gateway.errors import FieldError
from gateway.staff.audit import actor_of
from gateway.staff.handsets import handset_of, mark_handset
from gateway.storage.limits import is_identifier, max_length
from gateway.storage.models import (
    Complaint,
    ComplaintEvent,
    ComplaintStatus,
    OutboundMessage,
    StaffMember,
    StaffRole,
)
from gateway.text.phone import mask_phone
from gateway.text.tickets import InvalidTicket
from gateway.web.api.complaints import ACTING, DECIDING, ListQuery, check_codes, filtered
from gateway.web.console.pages import render
from gateway.web.console.session import current_scope, current_staff, flash
from gateway.web.console.text import C_
from gateway.web.keys import CLOCK, COMPLAINTS, CONFIG, LIFECYCLE

__all__ = ["PAGE_SIZE", "routes"]

routes = web.RouteTableDef()

PAGE_SIZE = 25
MAX_PAGE = 400
"""Past 10,000 complaints, narrow the list with the filters instead."""
FILTERS = ("status", "department", "district", "block", "level", "overdue", "from", "to")
_TICKET_MAX = max_length(Complaint, "ticket")


@dataclass(frozen=True)
class Row:
    """One complaint as a list or page shows it."""

    c: Complaint
    overdue: bool
    phone: str


def _row(c: Complaint, now: datetime) -> Row:
    return Row(c, c.status in OPEN and c.due_at < now, mask_phone(c.citizen.phone))


def _query(request: web.Request) -> tuple[ListQuery | None, str | None]:
    """The list's filters from the query string (empty fields left out); an error's text."""
    raw = {k: v for k, v in request.query.items() if k in FILTERS and v.strip()}
    try:
        query = ListQuery.model_validate(raw)
        level = check_codes(request.config_dict[CONFIG], query)
    except ValidationError as e:
        err = e.errors()[0]
        return None, f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    except FieldError as e:
        return None, str(e)
    if level is not None:
        query = query.model_copy(update={"level": str(level)})
    return query, None


async def _counts(scope: Scope) -> tuple[dict[str, int], dict[int, int]]:
    """Complaints in scope per status, and open ones per level."""
    by_status = (
        await scope.complaints()
        .annotate(n=Count("id"))
        .group_by("status")
        .values_list("status", "n")
    )
    by_level = (
        await scope.complaints()
        .filter(status__in=OPEN)
        .annotate(n=Count("id"))
        .group_by("level")
        .values_list("level", "n")
    )
    return (
        {str(status): int(n) for status, n in by_status},
        {int(level): int(n) for level, n in by_level},
    )


async def _ticket_search(request: web.Request, raw: str) -> str | None:
    """Go to the complaint a typed ticket names, or say what is wrong with it."""
    try:
        ticket = request.config_dict[COMPLAINTS].parse_ticket(raw)
    except InvalidTicket as e:
        if e.reason == "check_digit":
            return C_(
                "That is not a ticket number: the check digit does not match, "
                "a digit is mistyped."
            )
        if e.reason == "wrong_length":
            return C_("A ticket number has a different number of digits.")
        return None  # not a ticket: searched as text
    if await current_scope(request).complaints().filter(ticket=ticket).exists():
        raise web.HTTPSeeOther(f"/console/complaints/{ticket}")
    return C_("No complaint with this ticket in your work.")


@routes.get("/")
async def complaint_list(request: web.Request) -> web.StreamResponse:
    """Open complaints in the member's scope (or those the filters ask for), overdue first."""
    scope = current_scope(request)
    config = request.config_dict[CONFIG]
    now = request.config_dict[CLOCK]()
    search = request.query.get("q", "").strip()[:100]
    problem = await _ticket_search(request, search) if search else None
    query, error = _query(request)
    rows: list[Row] = []
    more = False
    page = _page(request)
    if query is not None:
        if search and problem is None:
            query = query.model_copy(update={"q": search})
        qs = filtered(
            query,
            scope.complaints(),
            level=int(query.level) if query.level else None,
            now=now,
            tz=ZoneInfo(config.service.timezone),
        )
        statuses = OPEN if query.status is None else (query.status,)
        found = await _due_first(qs, statuses, (page - 1) * PAGE_SIZE, PAGE_SIZE + 1)
        more = len(found) > PAGE_SIZE
        rows = [_row(c, now) for c in found[:PAGE_SIZE]]
    by_status, by_level = await _counts(scope)
    chosen = {k: request.query.get(k, "") for k in (*FILTERS, "q")}
    return await render(
        request,
        "list.html",
        rows=rows,
        page=page,
        more=more,
        error=error,
        problem=problem,
        chosen=chosen,
        by_status=by_status,
        by_level=by_level,
        statuses=[s.value for s in ComplaintStatus],
        config=config,
        query_without_page=_without_page(request),
    )


async def _due_first(
    qs: QuerySet[Complaint], statuses: Sequence[ComplaintStatus], offset: int, limit: int
) -> list[Complaint]:
    """``qs``'s complaints of ``statuses`` by deadline (the most overdue first), rows
    ``offset`` to ``offset + limit``: each status's first ``offset + limit`` by the
    (status, due_at) index, merged. One query over every open status would sort all of
    them (tens of thousands in a state) for each page."""
    wanted = offset + limit
    rows: list[Complaint] = []
    for status in statuses:
        rows += await qs.filter(status=status).select_related("citizen").order_by(
            "due_at", "id"
        ).limit(wanted)
    rows.sort(key=lambda c: (c.due_at, c.id))
    return rows[offset:wanted]


def _page(request: web.Request) -> int:
    """The page asked for: 1 to :data:`MAX_PAGE`."""
    raw = request.query.get("page", "1")[:5]
    number = int(raw) if raw.isascii() and raw.isdigit() else 1
    return min(max(number, 1), MAX_PAGE)


def _without_page(request: web.Request) -> str:
    return urlencode([(k, v) for k, v in request.query.items() if k != "page" and v])


async def _in_scope(request: web.Request) -> Complaint:
    """The complaint named in the path, or 404 when it does not exist or is out of scope."""
    ticket = request.match_info["ticket"].strip()
    if not is_identifier(ticket, _TICKET_MAX):
        raise web.HTTPNotFound()
    complaint = (
        await current_scope(request)
        .complaints()
        .filter(ticket=ticket)
        .select_related("citizen")
        .first()
    )
    if complaint is None:
        raise web.HTTPNotFound()
    return complaint


def _may(staff: StaffMember, roles: tuple[StaffRole, ...]) -> bool:
    return StaffRole(staff.role) in roles


async def _timeline(c: Complaint) -> list[dict[str, Any]]:
    """Every event and every SMS of ``c``, oldest first."""
    events = await ComplaintEvent.filter(complaint_id=c.id).order_by("id")
    messages = await OutboundMessage.filter(complaint_id=c.id).order_by("id")
    items: list[dict[str, Any]] = [
        {"at": e.created_at, "kind": "event", "event": e} for e in events
    ]
    items += [
        {"at": m.created_at, "kind": "sms", "sms": m, "to": mask_phone(m.recipient)}
        for m in messages
    ]
    return sorted(items, key=lambda item: (item["at"], item["kind"] == "sms"))


@routes.get("/complaints/{ticket}")
async def complaint_page(request: web.Request) -> web.StreamResponse:
    c = await _in_scope(request)
    return await _complaint_page(request, c)


async def _complaint_page(
    request: web.Request, c: Complaint, *, preview: dict[str, Any] | None = None,
    error: str | None = None, status: int = 200,
) -> web.Response:  # fmt: skip
    staff = current_staff(request)
    scope = current_scope(request)
    config = request.config_dict[CONFIG]
    now = request.config_dict[CLOCK]()
    refusal = scope.refusal(c)
    handset = handset_of(config, c.citizen, c.language)
    actions = {
        name: refusal is None and _may(staff, roles) and c.status in ALLOWED[name]
        for name, roles in (
            ("note", ACTING),
            ("resolve", DECIDING),
            ("transfer", DECIDING),
            ("reassign", DECIDING),
        )
    }
    return await render(
        request,
        "complaint.html",
        status=status,
        row=_row(c, now),
        c=c,
        left=c.due_at - now,
        timeline=await _timeline(c),
        actions=actions,
        refusal=refusal,
        preview=preview,
        error=error,
        config=config,
        handset=handset,
        may_mark=refusal is None and _may(staff, ACTING) and len(handset.choices) > 1,
        officers=[  # those the lifecycle lets it be reassigned to
            o
            for o in config.officers
            if o.code != c.officer and officer_refusal(config, o, c) is None
        ],
    )


async def _remark(request: web.Request) -> str:
    form = await request.post()
    remark = " ".join(str(form.get("remark", "")).split())
    if not 1 <= len(remark) <= 500:
        raise FieldError("remark", "1 to 500 characters")
    return remark


@routes.post("/complaints/{ticket}/{action:note|resolve}")
async def note_or_resolve(request: web.Request) -> web.StreamResponse:
    """A status update or a resolution: first the citizen's SMS as they will get it, then,
    confirmed, the action."""
    c = await _in_scope(request)
    action = request.match_info["action"]
    if not _may(current_staff(request), ACTING if action == "note" else DECIDING):
        raise web.HTTPForbidden(text="403: your role may not do this")
    try:
        remark = await _remark(request)
    except FieldError as e:
        return await _complaint_page(request, c, error=str(e), status=400)
    form = await request.post()
    if form.get("confirm") != "yes":
        sms = await request.config_dict[LIFECYCLE].citizen_preview(c.id, action, remark)
        return await _complaint_page(
            request, c, preview={"action": action, "remark": remark, "sms": sms}
        )
    lifecycle = request.config_dict[LIFECYCLE]
    call = lifecycle.add_note if action == "note" else lifecycle.resolve
    return await _act(request, c, lambda **kw: call(c.id, remark, **kw))


@routes.post("/complaints/{ticket}/transfer")
async def transfer(request: web.Request) -> web.StreamResponse:
    """A transfer: first the SMS telling the citizen where it went, then, confirmed, the
    transfer."""
    c = await _in_scope(request)
    if not _may(current_staff(request), DECIDING):
        raise web.HTTPForbidden(text="403: your role may not do this")
    form = await request.post()
    department = str(form.get("department", "")).strip() or None
    block = str(form.get("block", "")).strip() or None
    lifecycle = request.config_dict[LIFECYCLE]
    try:
        remark = await _remark(request)
        if form.get("confirm") != "yes":
            sms = await lifecycle.citizen_preview(
                c.id, "transfer", department=department, block=block
            )
            preview = {"action": "transfer", "remark": remark, "sms": sms,
                       "department": department or "", "block": block or ""}  # fmt: skip
            return await _complaint_page(request, c, preview=preview)
    except FieldError as e:
        return await _complaint_page(request, c, error=str(e), status=400)
    return await _act(
        request,
        c,
        lambda **kw: lifecycle.transfer(
            c.id, remark=remark, department=department, block=block, **kw
        ),
    )


@routes.post("/complaints/{ticket}/reassign")
async def reassign(request: web.Request) -> web.StreamResponse:
    c = await _in_scope(request)
    if not _may(current_staff(request), DECIDING):
        raise web.HTTPForbidden(text="403: your role may not do this")
    form = await request.post()
    officer = str(form.get("officer", "")).strip()
    remark = " ".join(str(form.get("remark", "")).split())[:500] or None
    lifecycle = request.config_dict[LIFECYCLE]
    return await _act(
        request, c, lambda **kw: lifecycle.reassign(c.id, officer, remark=remark, **kw)
    )


@routes.post("/complaints/{ticket}/handset")
async def handset(request: web.Request) -> web.StreamResponse:
    """Mark what the citizen's phone draws (they said their SMS show boxes): their later
    SMS go in Latin letters or in a script their phone draws."""
    c = await _in_scope(request)
    if not _may(current_staff(request), ACTING):
        raise web.HTTPForbidden(text="403: your role may not do this")
    form = await request.post()
    config = request.config_dict[CONFIG]
    shows = str(form.get("shows", ""))
    return await _act(
        request,
        c,
        lambda *, actor, scope: mark_handset(config, c.id, shows, actor=actor, scope=scope),
        done=C_("Saved. The citizen's next SMS will be written so."),
    )


async def _act(
    request: web.Request, c: Complaint, action: Any, *, done: str | None = None
) -> web.StreamResponse:
    """Run ``action`` as the member within their scope; back to the complaint with what
    happened, or its page with why not."""
    staff = current_staff(request)
    try:
        await action(actor=actor_of(staff), scope=current_scope(request))
    except OutOfScope as e:
        return await _complaint_page(request, c, error=f"out of scope: {e.reason}", status=403)
    except (IllegalTransition, ConcurrentChange) as e:
        return await _complaint_page(request, c, error=str(e), status=409)
    except FieldError as e:
        return await _complaint_page(request, c, error=str(e), status=400)
    await flash(request, done or C_("Done. The SMS is on its way."))
    raise web.HTTPSeeOther(f"/console/complaints/{c.ticket}")

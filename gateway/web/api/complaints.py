"""``/complaints``: the complaints a staff member may see, and what they may do to them.

Every query goes through the caller's :class:`~gateway.complaints.scope.Scope`: a complaint outside
what they may read answers 404 like one that does not exist. Actions go through the
:class:`Lifecycle` (which writes the event and the citizen's SMS in one transaction) with
the staff member as actor and their scope, which it checks on the row it locks: one they
may read but not act on (a tehsil officer and a block-level complaint) answers 403.
Registration for a caller goes through :class:`ComplaintService` like a USSD session does.
Phone numbers are only ever shown masked.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from gateway.complaints.lifecycle import (
    OPEN,
    Change,
    ConcurrentChange,
    IllegalTransition,
    Lifecycle,
)
from gateway.complaints.registration import (
    ComplaintService,
    MonthlyLimitReached,
    NewComplaint,
)
from gateway.complaints.scope import OutOfScope
from gateway.config import Config
from gateway.errors import FieldError
from gateway.staff.audit import actor_of
from gateway.staff.handsets import mark_handset
from gateway.storage.limits import EARLIEST_DATE, LATEST_DATE, is_identifier, max_length
from gateway.storage.models import (
    Channel,
    Complaint,
    ComplaintEvent,
    ComplaintStatus,
    OutboundMessage,
    StaffRole,
)
from gateway.text.phone import InvalidPhoneNumber, mask_phone, normalize_phone
from gateway.web.api.common import (
    ApiError,
    request_body,
    request_query,
    request_scope,
    request_staff,
)
from gateway.web.api.openapi import operation
from gateway.web.keys import CLOCK, COMPLAINTS, CONFIG, LIFECYCLE

__all__ = [
    "ACTING",
    "DECIDING",
    "REGISTERING",
    "ListQuery",
    "RegisterIn",
    "check_codes",
    "filtered",
    "routes",
]

routes = web.RouteTableDef()

R = StaffRole
ACTING = (R.AGENT, R.OFFICER, R.DISTRICT_ADMIN, R.STATE_ADMIN)
"""May add a status update (an agent passes on what a caller or an office said)."""
DECIDING = (R.OFFICER, R.DISTRICT_ADMIN, R.STATE_ADMIN)
"""May resolve, transfer and reassign."""
REGISTERING = (R.AGENT, R.DISTRICT_ADMIN, R.STATE_ADMIN)
EVERYONE = tuple(R)

Text = Annotated[str, Field(min_length=1, max_length=500)]


# Bodies and answers ----------------------------------------------------------------------
class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    status: ComplaintStatus | None = None
    department: str | None = None
    district: str | None = None
    block: str | None = None
    level: str | None = Field(
        None, max_length=20, description="a level's number (1 = the first) or code (block...)"
    )
    overdue: bool | None = Field(None, description="true: open and past the deadline")
    from_: date | None = Field(
        None,
        alias="from",
        ge=EARLIEST_DATE,
        le=LATEST_DATE,
        description="created on or after (local)",
    )
    to: date | None = Field(
        None, ge=EARLIEST_DATE, le=LATEST_DATE, description="created on or before (local date)"
    )
    q: str | None = Field(None, min_length=1, max_length=100, description="ticket or text")
    cursor: str | None = Field(None, description="next_cursor of the previous page")
    limit: int = Field(50, ge=1, le=100)


class ComplaintOut(BaseModel):
    ticket: str
    status: str
    department: str
    issue_type: str | None
    description: str | None
    district: str
    tehsil: str
    block: str
    level: int
    officer: str | None
    channel: str
    transfers: int
    needs_review: bool
    overdue: bool
    phone: str = Field(description="the citizen's number, masked")
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None


class ComplaintPage(BaseModel):
    items: list[ComplaintOut]
    next_cursor: str | None


class EventOut(BaseModel):
    kind: str
    actor: str
    from_status: str | None
    to_status: str | None
    remark: str | None
    at: datetime


class MessageOut(BaseModel):
    id: int
    to: str = Field(description="masked")
    template: str
    language: str
    text: str
    status: str
    segments: int
    encoding: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None


class ComplaintDetail(ComplaintOut):
    language: str
    events: list[EventOut]
    messages: list[MessageOut]


class RemarkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    remark: Text


class HandsetIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    shows: str = Field(
        description="what the citizen's phone draws: own (its language's letters), Latn "
        "(Latin letters only) or an ISO 15924 script the language has texts in (Deva)"
    )


class HandsetOut(BaseModel):
    ticket: str
    shows: str
    choices: list[str] = Field(description="what the number may be marked as")


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    remark: Text
    department: str | None = None
    block: str | None = None


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    officer: str = Field(min_length=1, max_length=40, description="a code from `officers`")
    remark: Text | None = None


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    phone: str = Field(min_length=1, max_length=20, description="the caller's number")
    language: str | None = Field(None, description="default: the service's default language")
    department: str
    district: str
    block: str
    issue_type: str | None = None
    description: Text | None = None


class Registered(BaseModel):
    ticket: str
    due_at: datetime
    created: bool = Field(description="false when the Idempotency-Key registered it before")


# Helpers -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Services:
    config: Config
    clock: Callable[[], datetime]
    lifecycle: Lifecycle
    complaints: ComplaintService


def _services(request: web.Request) -> _Services:
    d = request.config_dict
    return _Services(d[CONFIG], d[CLOCK], d[LIFECYCLE], d[COMPLAINTS])


def _summary(c: Complaint, now: datetime) -> dict[str, Any]:
    assert c.ticket is not None
    return dict(
        ticket=c.ticket,
        status=c.status.value,
        department=c.department,
        issue_type=c.issue_type,
        description=c.description,
        district=c.district,
        tehsil=c.tehsil,
        block=c.block,
        level=c.level,
        officer=c.officer,
        channel=c.channel.value,
        transfers=c.transfers,
        needs_review=c.needs_review,
        overdue=c.status in OPEN and c.due_at < now,
        phone=mask_phone(c.citizen.phone),
        due_at=c.due_at,
        created_at=c.created_at,
        updated_at=c.updated_at,
        resolved_at=c.resolved_at,
        closed_at=c.closed_at,
    )


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


_TICKET_MAX = max_length(Complaint, "ticket")


async def _in_scope(request: web.Request) -> Complaint:
    """The complaint named in the path, or 404 when it does not exist or is out of scope."""
    ticket = request.match_info["ticket"].strip()
    if not is_identifier(ticket, _TICKET_MAX):  # no such ticket; the column would refuse it
        raise ApiError.not_found()
    complaint = (
        await request_scope(request)
        .complaints()
        .filter(ticket=ticket)
        .select_related("citizen")
        .first()
    )
    if complaint is None:
        raise ApiError.not_found()
    return complaint


async def _answer(request: web.Request, complaint_id: int) -> web.Response:
    c = await Complaint.get(id=complaint_id).select_related("citizen")
    return _json(ComplaintOut(**_summary(c, _services(request).clock())))


def _encode_cursor(c: Complaint) -> str:
    raw = json.dumps([c.created_at.isoformat(), c.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, ident = json.loads(raw)
        when = datetime.fromisoformat(created)
        if not isinstance(ident, int) or when.tzinfo is None:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise FieldError("cursor", "not a next_cursor from this API") from None
    return when, ident


def check_codes(config: Config, query: ListQuery) -> int | None:
    """400 for a code the config does not know; the level filter as a number (shared
    with the console)."""
    if query.department is not None and config.department(query.department) is None:
        raise FieldError("department", f"unknown {query.department!r}")
    if query.district is not None and config.district(query.district) is None:
        raise FieldError("district", f"unknown {query.district!r}")
    if query.block is not None and not any(d.tehsil_of(query.block) for d in config.districts):
        raise FieldError("block", f"unknown {query.block!r}")
    if query.level is None:
        return None
    codes = [lv.code for lv in config.levels]
    if query.level in codes:
        return codes.index(query.level) + 1
    if query.level.isdigit() and 1 <= int(query.level) <= len(codes):
        return int(query.level)
    raise FieldError("level", f"1 to {len(codes)}, or one of {', '.join(codes)}")


def filtered(
    query: ListQuery,
    qs: QuerySet[Complaint],
    *,
    level: int | None,
    now: datetime,
    tz: ZoneInfo,
) -> QuerySet[Complaint]:
    """``qs`` narrowed by ``query``'s filters (the API's list and the console's)."""
    exact = {
        name: getattr(query, name)
        for name in ("status", "department", "district", "block")
        if getattr(query, name) is not None
    }
    if level is not None:
        exact["level"] = level
    qs = qs.filter(**exact)
    if query.overdue is True:
        qs = qs.filter(status__in=OPEN, due_at__lt=now)
    elif query.overdue is False:
        qs = qs.filter(Q(status__not_in=OPEN) | Q(due_at__gte=now))
    if query.from_ is not None:
        qs = qs.filter(created_at__gte=datetime.combine(query.from_, time(), tz))
    if query.to is not None:
        qs = qs.filter(created_at__lt=datetime.combine(query.to + timedelta(days=1), time(), tz))
    if query.q is not None:
        qs = qs.filter(Q(ticket__icontains=query.q) | Q(description__icontains=query.q))
    return qs


async def _act(
    request: web.Request,
    complaint: Complaint,
    action: Callable[..., Awaitable[Change]],
    /,
    *args: Any,
    **kwargs: Any,
) -> web.Response:
    """Run a lifecycle ``action`` on ``complaint`` as the caller, within their scope; its
    refusals as API errors (a value it refuses is a :class:`FieldError`, answered by the
    middleware); the complaint as it is now."""
    staff = request_staff(request)
    try:
        await action(
            complaint.id, *args, actor=actor_of(staff), scope=request_scope(request), **kwargs
        )
    except OutOfScope as e:
        raise ApiError(403, "out_of_scope", f"you may not act on it: {e.reason}") from None
    except IllegalTransition as e:
        raise ApiError(409, "illegal_transition", str(e)) from None
    except ConcurrentChange as e:
        raise ApiError(409, "concurrent_change", str(e)) from None
    return await _answer(request, complaint.id)


# Handlers ------------------------------------------------------------------------------
@operation(
    routes,
    "GET",
    "/complaints",
    summary="Complaints in the caller's scope, newest first (cursor pagination)",
    roles=EVERYONE,
    query=ListQuery,
    response=ComplaintPage,
)
async def list_complaints(request: web.Request) -> web.Response:
    query = request_query(request, ListQuery)
    config = _services(request).config
    level = check_codes(config, query)
    now = _services(request).clock()
    qs = filtered(
        query,
        request_scope(request).complaints(),
        level=level,
        now=now,
        tz=ZoneInfo(config.service.timezone),
    )
    if query.cursor is not None:
        when, ident = _decode_cursor(query.cursor)
        qs = qs.filter(Q(created_at__lt=when) | Q(created_at=when, id__lt=ident))
    rows = await qs.select_related("citizen").order_by("-created_at", "-id").limit(query.limit + 1)
    page = rows[: query.limit]
    next_cursor = _encode_cursor(page[-1]) if len(rows) > query.limit else None
    return _json(
        ComplaintPage(
            items=[ComplaintOut(**_summary(c, now)) for c in page], next_cursor=next_cursor
        )
    )


@operation(
    routes,
    "GET",
    "/complaints/{ticket}",
    summary="One complaint: its full event history and the messages sent",
    roles=EVERYONE,
    response=ComplaintDetail,
)
async def complaint_detail(request: web.Request) -> web.Response:
    c = await _in_scope(request)
    events = await ComplaintEvent.filter(complaint_id=c.id).order_by("id")
    messages = await OutboundMessage.filter(complaint_id=c.id).order_by("id")
    detail = ComplaintDetail(
        **_summary(c, _services(request).clock()),
        language=c.language,
        events=[
            EventOut(
                kind=e.kind.value,
                actor=e.actor,
                from_status=e.from_status,
                to_status=e.to_status,
                remark=e.remark,
                at=e.created_at,
            )
            for e in events
        ],
        messages=[
            MessageOut(
                id=m.id,
                to=mask_phone(m.recipient),
                template=m.template,
                language=m.language,
                text=m.text,
                status=m.status.value,
                segments=m.segments,
                encoding=m.encoding,
                attempts=m.attempts,
                last_error=m.last_error,
                created_at=m.created_at,
                sent_at=m.sent_at,
                delivered_at=m.delivered_at,
            )
            for m in messages
        ],
    )
    return _json(detail)


ACTION_ERRORS = {
    403: "The role may not do this, or the caller may read the complaint but not act on it "
    "(code out_of_scope: not at their level, or not assigned to their officer code)",
    409: "The complaint's status does not allow it (code illegal_transition), or it changed "
    "while the action was being made (code concurrent_change: nothing was done, try again)",
}


@operation(
    routes,
    "POST",
    "/complaints/{ticket}/notes",
    summary="Add a status update (the citizen is told by SMS)",
    roles=ACTING,
    body=RemarkIn,
    response=ComplaintOut,
    extra_responses=ACTION_ERRORS,
    status=200,
)
async def add_note(request: web.Request) -> web.Response:
    c = await _in_scope(request)
    body = request_body(request, RemarkIn)
    return await _act(request, c, _services(request).lifecycle.add_note, body.remark)


@operation(
    routes,
    "POST",
    "/complaints/{ticket}/resolve",
    summary="Resolve with a remark (the citizen is asked whether it is solved)",
    roles=DECIDING,
    body=RemarkIn,
    response=ComplaintOut,
    extra_responses=ACTION_ERRORS,
    status=200,
)
async def resolve(request: web.Request) -> web.Response:
    c = await _in_scope(request)
    body = request_body(request, RemarkIn)
    return await _act(request, c, _services(request).lifecycle.resolve, body.remark)


@operation(
    routes,
    "POST",
    "/complaints/{ticket}/transfer",
    summary="Transfer to another department and/or block (citizen and new officer told)",
    roles=DECIDING,
    body=TransferIn,
    response=ComplaintOut,
    extra_responses=ACTION_ERRORS,
    status=200,
)
async def transfer(request: web.Request) -> web.Response:
    c = await _in_scope(request)
    body = request_body(request, TransferIn)
    return await _act(
        request,
        c,
        _services(request).lifecycle.transfer,
        remark=body.remark,
        department=body.department,
        block=body.block,
    )


@operation(
    routes,
    "POST",
    "/complaints/{ticket}/reassign",
    summary="Give it to another officer of its current level (the officer is told by SMS)",
    roles=DECIDING,
    body=ReassignIn,
    response=ComplaintOut,
    extra_responses=ACTION_ERRORS,
    status=200,
)
async def reassign(request: web.Request) -> web.Response:
    c = await _in_scope(request)
    body = request_body(request, ReassignIn)
    return await _act(
        request, c, _services(request).lifecycle.reassign, body.officer, remark=body.remark
    )


@operation(
    routes,
    "POST",
    "/complaints/{ticket}/handset",
    summary="Mark what the citizen's phone draws (they said the SMS show boxes): their "
    "later SMS go in Latin letters or in a script it draws",
    roles=ACTING,
    body=HandsetIn,
    response=HandsetOut,
    extra_responses={403: ACTION_ERRORS[403]},
    status=200,
)
async def handset(request: web.Request) -> web.Response:
    c = await _in_scope(request)
    body = request_body(request, HandsetIn)
    staff = request_staff(request)
    try:
        marked = await mark_handset(
            _services(request).config,
            c.id,
            body.shows,
            actor=actor_of(staff),
            scope=request_scope(request),
        )
    except OutOfScope as e:
        raise ApiError(403, "out_of_scope", f"you may not act on it: {e.reason}") from None
    return _json(HandsetOut(ticket=c.ticket or "", shows=marked.shows, choices=[*marked.choices]))


async def _same_registration(complaint_id: int, new: NewComplaint) -> None:
    """409 when an Idempotency-Key comes back with another caller or complaint: answering
    the first ticket would drop the second caller's complaint without a word."""
    first = await Complaint.get(id=complaint_id).select_related("citizen")
    if (
        first.citizen.phone,
        first.department,
        first.district,
        first.block,
        first.issue_type,
        first.description,
    ) != (new.phone, new.department, new.district, new.block, new.issue_type, new.description):
        raise ApiError(
            409, "idempotency_conflict",
            f"Idempotency-Key: already used for complaint {first.ticket}, which differs",
            field="Idempotency-Key",
        )  # fmt: skip


@operation(
    routes,
    "POST",
    "/complaints",
    summary="Register a complaint for a caller (channel phone_call; the caller gets the SMS)",
    roles=REGISTERING,
    body=RegisterIn,
    response=Registered,
    extra_responses={
        200: "Registered before under the same Idempotency-Key",
        409: "The Idempotency-Key registered a different complaint (code idempotency_conflict)",
        429: "The number has reached its monthly limit (code monthly_limit)",
    },
)
async def register(request: web.Request) -> web.Response:
    staff = request_staff(request)
    body = request_body(request, RegisterIn)
    scope = request_scope(request)
    if scope.district is not None and body.district != scope.district:
        raise ApiError(
            403, "forbidden", f"district: you register complaints in {scope.district} only",
            field="district",
        )  # fmt: skip
    try:
        # The caller is sent the acknowledgement and every update by SMS.
        phone = normalize_phone(
            body.phone, region=_services(request).config.service.country, sms=True
        )
    except InvalidPhoneNumber as e:
        raise FieldError("phone", e.reason) from None
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 100 or not key.isprintable():
        raise FieldError("Idempotency-Key", "at most 100 printable characters")
    service = _services(request).complaints
    new = NewComplaint(
        phone=phone,
        language=body.language or _services(request).config.service.default_language,
        department=body.department,
        district=body.district,
        block=body.block,
        issue_type=body.issue_type,
        description=body.description,
        channel=Channel.PHONE_CALL,
        # Per account: two agents who happen to pick the same key register two complaints.
        source_key=f"api:{staff.username}:{key}" if key else f"api:{uuid.uuid4().hex}",
        actor=actor_of(staff),
    )
    try:
        registration = await service.register(new)
    except MonthlyLimitReached as e:
        raise ApiError(429, "monthly_limit", str(e), field="phone") from None
    if not registration.created:
        await _same_registration(registration.complaint_id, new)
    out = Registered(
        ticket=registration.ticket, due_at=registration.due_at, created=registration.created
    )
    return _json(out, status=201 if registration.created else 200)

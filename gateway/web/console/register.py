"""An agent registers a caller's complaint: the USSD flow's choices as one form.

Blocks are grouped by district and issue types by department (``<optgroup>``), so that the
form works without JavaScript; ``console.js`` narrows each list to the chosen district or
department. The registration is :class:`~gateway.complaints.registration.ComplaintService`'s,
as the API's (channel ``phone_call``, the same acknowledgement SMS), under the roles and
district rule of the API; a form sent twice (a double click, a reload) registers once, by the
form's own key. The complaint's page then shows the acknowledgement as the caller gets it.
"""

from __future__ import annotations

import secrets

from aiohttp import web
from pydantic import ValidationError

from gateway.complaints.registration import MonthlyLimitReached, NewComplaint
from gateway.errors import FieldError
from gateway.staff.audit import actor_of
from gateway.storage.models import Channel, StaffRole
from gateway.text.phone import InvalidPhoneNumber, normalize_phone
from gateway.web.api.complaints import REGISTERING, RegisterIn
from gateway.web.console.pages import render
from gateway.web.console.session import current_scope, current_staff, flash
from gateway.web.console.text import C_
from gateway.web.keys import COMPLAINTS, CONFIG

__all__ = ["routes"]

routes = web.RouteTableDef()

FIELDS = ("phone", "language", "department", "district", "block", "issue_type", "description")


def _allowed(request: web.Request) -> None:
    if StaffRole(current_staff(request).role) not in REGISTERING:
        raise web.HTTPForbidden(text="403: your role does not register complaints")


async def _form(
    request: web.Request, values: dict[str, str], *, error: str | None = None, status: int = 200
) -> web.Response:
    config = request.config_dict[CONFIG]
    district = current_scope(request).district
    districts = [d for d in config.districts if district is None or d.code == district]
    return await render(
        request,
        "register.html",
        status=status,
        values=values,
        error=error,
        config=config,
        districts=districts,
        form_key=values.get("form_key") or secrets.token_urlsafe(16),
    )


@routes.get("/register")
async def register_page(request: web.Request) -> web.StreamResponse:
    _allowed(request)
    config = request.config_dict[CONFIG]
    return await _form(request, {"language": config.service.default_language})


def _check_places(request: web.Request, body: RegisterIn) -> None:
    config = request.config_dict[CONFIG]
    dept = config.department(body.department)
    if dept is None:
        raise FieldError("department", "choose a department")
    if body.issue_type and dept.issue(body.issue_type) is None:
        raise FieldError("issue_type", "not an issue of this department")
    district = config.district(body.district)
    if district is None:
        raise FieldError("district", "choose a district")
    if body.block not in {b.code for b in district.blocks}:
        raise FieldError("block", "not a block of this district")
    scope = current_scope(request)
    if scope.district is not None and body.district != scope.district:
        raise FieldError("district", f"you register complaints in {scope.district} only")


@routes.post("/register")
async def register(request: web.Request) -> web.StreamResponse:
    _allowed(request)
    form = await request.post()
    values = {name: str(form.get(name, "")).strip() for name in (*FIELDS, "form_key")}
    config = request.config_dict[CONFIG]
    try:
        body = RegisterIn.model_validate(
            {k: v for k, v in values.items() if k in FIELDS and v}
        )
        _check_places(request, body)
        phone = normalize_phone(body.phone, region=config.service.country, sms=True)
    except ValidationError as e:
        err = e.errors()[0]
        return await _form(
            request, values, error=f"{err['loc'][0]}: {err['msg']}", status=400
        )
    except FieldError as e:
        return await _form(request, values, error=str(e), status=400)
    except InvalidPhoneNumber as e:
        return await _form(request, values, error=f"phone: {e.reason}", status=400)
    staff = current_staff(request)
    key = values["form_key"][:40] or secrets.token_urlsafe(16)
    language = body.language if config.language(body.language or "") else None
    new = NewComplaint(
        phone=phone,
        language=language or config.service.default_language,
        department=body.department,
        district=body.district,
        block=body.block,
        issue_type=body.issue_type,
        description=body.description,
        channel=Channel.PHONE_CALL,
        source_key=f"console:{staff.username}:{key}",
        actor=actor_of(staff),
    )
    try:
        registration = await request.config_dict[COMPLAINTS].register(new)
    except MonthlyLimitReached as e:
        return await _form(request, values, error=f"phone: {e}", status=429)
    except FieldError as e:
        return await _form(request, values, error=str(e), status=400)
    await flash(
        request,
        C_("Registered: ticket {ticket}. The caller's acknowledgement SMS is below."),
        ticket=registration.ticket,
    )
    raise web.HTTPSeeOther(f"/console/complaints/{registration.ticket}")

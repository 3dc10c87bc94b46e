"""Staff accounts for district and state administrators: list, add, deactivate; API tokens;
one-time set-password links.

A state administrator manages every account. A district administrator manages the accounts
of their district: agents and district administrators of it, and officers whose area lies
in it (one of its blocks or tehsils, or the district itself); they add only such accounts.
Every change goes through :mod:`gateway.staff.accounts` (validated against the config,
audited with the administrator's name). A token or a link is shown once.
"""

from __future__ import annotations

from aiohttp import web

from gateway.config import Config
from gateway.errors import FieldError
from gateway.staff.accounts import (
    NewStaff,
    add_staff,
    deactivate_staff,
    issue_token,
    list_tokens,
    reactivate_staff,
    revoke_token,
)
from gateway.staff.audit import actor_of
from gateway.staff.passwords import create_password_link
from gateway.storage.limits import max_length
from gateway.storage.models import StaffMember, StaffRole
from gateway.text.phone import mask_phone
from gateway.web.console.pages import render
from gateway.web.console.session import current_staff, flash
from gateway.web.console.text import C_
from gateway.web.keys import CLOCK, CONFIG

__all__ = ["routes"]

routes = web.RouteTableDef()

ADMINS = (StaffRole.DISTRICT_ADMIN, StaffRole.STATE_ADMIN)
FIELDS = ("username", "name", "role", "department", "level", "area", "district", "officer_code",
          "phone")  # fmt: skip


def _admin(request: web.Request) -> StaffMember:
    staff = current_staff(request)
    if StaffRole(staff.role) not in ADMINS:
        raise web.HTTPForbidden(text="403: accounts are for district and state administrators")
    return staff


def _areas_of(config: Config, district: str) -> set[str]:
    found = config.district(district)
    if found is None:
        return set()
    return {district} | {t.code for t in found.tehsils} | {b.code for b in found.blocks}


def manages(config: Config, admin: StaffMember, other: StaffMember | NewStaff) -> bool:
    """Whether ``admin`` may see and change ``other``'s account."""
    if StaffRole(admin.role) is StaffRole.STATE_ADMIN:
        return True
    if admin.district is None:
        return False
    role = StaffRole(other.role)
    if role in (StaffRole.AGENT, StaffRole.DISTRICT_ADMIN):
        return other.district == admin.district
    if role is StaffRole.OFFICER:
        return other.area is not None and other.area in _areas_of(config, admin.district)
    return False


async def _managed(request: web.Request, admin: StaffMember) -> list[StaffMember]:
    config = request.config_dict[CONFIG]
    return [s for s in await StaffMember.all().order_by("username") if manages(config, admin, s)]


async def _page(
    request: web.Request,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    shown: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    admin = _admin(request)
    accounts = await _managed(request, admin)
    ids = {s.id for s in accounts}
    tokens = [t for t in await list_tokens() if t.staff.id in ids]
    config = request.config_dict[CONFIG]
    roles = [r.value for r in StaffRole]
    if StaffRole(admin.role) is StaffRole.DISTRICT_ADMIN:
        roles = [StaffRole.AGENT.value, StaffRole.OFFICER.value, StaffRole.DISTRICT_ADMIN.value]
    return await render(
        request,
        "accounts.html",
        status=status,
        accounts=[(s, mask_phone(s.phone) if s.phone else "") for s in accounts],
        tokens=tokens,
        values=values or {"role": "officer"},
        error=error,
        shown=shown,
        roles=roles,
        config=config,
    )


@routes.get("/accounts")
async def accounts_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@routes.post("/accounts")
async def add(request: web.Request) -> web.StreamResponse:
    admin = _admin(request)
    config = request.config_dict[CONFIG]
    form = await request.post()
    values = {name: str(form.get(name, "")).strip() for name in FIELDS}
    if StaffRole(admin.role) is StaffRole.DISTRICT_ADMIN and values["role"] != "officer":
        values["district"] = admin.district or ""
    for name, value in values.items():
        if name != "phone" and len(value) > max_length(StaffMember, name):
            error = f"{name}: at most {max_length(StaffMember, name)} characters"
            return await _page(request, values=values, error=error, status=400)
    try:
        role = StaffRole(values["role"])
    except ValueError:
        return await _page(request, values=values, error="role: choose a role", status=400)
    new = NewStaff(
        username=values["username"],
        name=values["name"],
        role=role,
        **{k: values[k] or None for k in FIELDS if k not in ("username", "name", "role")},
    )
    if not manages(config, admin, new):
        return await _page(
            request, values=values, error="area: outside your district", status=403
        )
    try:
        staff = await add_staff(config, new, actor=actor_of(admin))
    except FieldError as e:
        return await _page(request, values=values, error=str(e), status=400)
    await flash(request, C_("Account {username} added."), username=staff.username)
    raise web.HTTPSeeOther("/console/accounts")


async def _target(request: web.Request, admin: StaffMember) -> StaffMember:
    form = await request.post()
    username = str(form.get("username", ""))[:40]
    staff = await StaffMember.get_or_none(username=username)
    if staff is None or not manages(request.config_dict[CONFIG], admin, staff):
        raise web.HTTPNotFound()
    return staff


@routes.post("/accounts/deactivate")
async def deactivate(request: web.Request) -> web.StreamResponse:
    admin = _admin(request)
    staff = await _target(request, admin)
    if staff.id == admin.id:
        return await _page(request, error=C_("You cannot deactivate yourself."), status=400)
    await deactivate_staff(staff.username, actor=actor_of(admin))
    await flash(request, C_("Account {username} deactivated."), username=staff.username)
    raise web.HTTPSeeOther("/console/accounts")


@routes.post("/accounts/reactivate")
async def reactivate(request: web.Request) -> web.StreamResponse:
    """Reopen a closed account, checked against the configuration as it is now."""
    admin = _admin(request)
    staff = await _target(request, admin)
    try:
        reopened = await reactivate_staff(
            request.config_dict[CONFIG], staff.username, actor=actor_of(admin)
        )
    except FieldError as e:
        return await _page(request, error=str(e), status=400)
    if reopened is None:
        return await _page(request, error=C_("That account is open already."), status=409)
    await flash(request, C_("Account {username} reactivated."), username=staff.username)
    raise web.HTTPSeeOther("/console/accounts")


@routes.post("/accounts/token")
async def token(request: web.Request) -> web.StreamResponse:
    admin = _admin(request)
    staff = await _target(request, admin)
    if not staff.active:
        raise web.HTTPNotFound()
    form = await request.post()
    label = str(form.get("label", "")).strip()[:80] or "console"
    issued = await issue_token(staff, label=label, actor=actor_of(admin))
    return await _page(request, shown={"kind": "token", "who": staff.username,
                                       "value": issued.token})  # fmt: skip


@routes.post("/accounts/revoke")
async def revoke(request: web.Request) -> web.StreamResponse:
    admin = _admin(request)
    form = await request.post()
    prefix = str(form.get("prefix", ""))[:12]
    ids = {s.id for s in await _managed(request, admin)}
    if not any(t.prefix == prefix and t.staff.id in ids for t in await list_tokens()):
        raise web.HTTPNotFound()
    await revoke_token(prefix, actor=actor_of(admin))
    await flash(request, C_("Token {prefix} revoked."), prefix=prefix)
    raise web.HTTPSeeOther("/console/accounts")


@routes.post("/accounts/link")
async def password_link(request: web.Request) -> web.StreamResponse:
    admin = _admin(request)
    staff = await _target(request, admin)
    if not staff.active:
        raise web.HTTPNotFound()
    secret = await create_password_link(
        staff, actor=actor_of(admin), now=request.config_dict[CLOCK]()
    )
    link = f"{request.scheme}://{request.host}/console/password/{secret}"
    return await _page(request, shown={"kind": "link", "who": staff.username, "value": link})

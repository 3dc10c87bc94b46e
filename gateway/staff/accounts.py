"""Staff accounts and their API tokens.

A token is shown once, when it is issued; only its SHA-256 is stored, so a copy of the
database does not let anyone in. Tokens look like ``spk_<prefix>_<secret>``: the prefix
names the token in listings and audit records without revealing it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.complaints.scope import level_number
from gateway.config import Config
from gateway.errors import FieldError
from gateway.staff.audit import audit
from gateway.storage.models import ApiToken, StaffMember, StaffRole
from gateway.text.phone import InvalidPhoneNumber, normalize_phone

__all__ = [
    "InvalidStaff",
    "IssuedToken",
    "NewStaff",
    "add_staff",
    "deactivate_staff",
    "hash_token",
    "issue_token",
    "list_tokens",
    "reactivate_staff",
    "revoke_token",
    "staff_for_token",
]

TOKEN_PREFIX = "spk_"
MAX_TOKEN = 100
"""Longer than any token issued (``spk_`` + 8 + ``_`` + 43 characters)."""
LAST_USED_EVERY = timedelta(minutes=1)
"""How stale a token's ``last_used_at`` may get: one write a minute, not one a request."""


class InvalidStaff(FieldError):
    """A staff account that cannot be created as asked (names the field)."""


@dataclass(frozen=True, kw_only=True)
class NewStaff:
    username: str
    name: str
    role: StaffRole
    department: str | None = None
    level: str | None = None
    area: str | None = None
    district: str | None = None
    officer_code: str | None = None
    phone: str | None = None


def validate_staff(config: Config, new: NewStaff) -> NewStaff:
    """Check ``new`` against the roles and the config's departments, levels and areas."""
    if (
        not new.username
        or len(new.username) > 40
        or not new.username.replace("_", "").replace(".", "").replace("-", "").isalnum()
    ):
        raise InvalidStaff("username", "1-40 letters, digits, '.', '_' or '-'")
    if not new.name.strip():
        raise InvalidStaff("name", "required")
    departments = {d.code for d in config.departments}
    districts = {d.code for d in config.districts}
    levels = [lv.code for lv in config.levels]
    if new.department is not None and new.department not in departments:
        raise InvalidStaff("department", f"unknown department {new.department!r}")
    if new.district is not None and new.district not in districts:
        raise InvalidStaff("district", f"unknown district {new.district!r}")
    if new.officer_code is not None and new.officer_code not in {o.code for o in config.officers}:
        raise InvalidStaff("officer_code", f"no officer {new.officer_code!r} in config")
    if new.role is StaffRole.OFFICER:
        if new.level not in levels:
            raise InvalidStaff("level", f"an officer needs a level, one of {levels}")
        areas = config.areas_at(level_number(config, new.level))
        if areas:
            if new.area is None:
                raise InvalidStaff("area", f"an officer at level {new.level} needs an area")
            if new.area not in areas:
                raise InvalidStaff("area", f"{new.area!r} is not a {new.level} code")
        elif new.area is not None:
            raise InvalidStaff("area", f"the {new.level} level covers everything: give no area")
    else:
        for name in ("level", "area", "department"):
            if getattr(new, name) is not None:
                raise InvalidStaff(name, f"only officers have a {name}")
    if new.role is StaffRole.DISTRICT_ADMIN and new.district is None:
        raise InvalidStaff("district", "a district administrator needs a district")
    if new.role in (StaffRole.OFFICER, StaffRole.STATE_ADMIN, StaffRole.STATE_REVIEWER) and (
        new.district is not None
    ):
        raise InvalidStaff("district", f"a {new.role.value} has no district")
    if new.officer_code is not None:
        _check_officer_post(config, new)
    phone = new.phone
    if phone is not None:
        try:
            # Any valid number: a staff member's phone is a contact, not sent SMS.
            phone = normalize_phone(phone, region=config.service.country)
        except InvalidPhoneNumber as e:
            raise InvalidStaff("phone", f"{new.phone!r}: {e.reason}") from None
    return NewStaff(**{**new.__dict__, "phone": phone})


def _check_officer_post(config: Config, new: NewStaff) -> None:
    """The config officer an account acts as must hold the account's post: complaints
    assigned to that officer are the ones the account's scope shows."""
    officer = next(o for o in config.officers if o.code == new.officer_code)
    if new.role is not StaffRole.OFFICER:
        raise InvalidStaff("officer_code", f"only officers have one, not a {new.role.value}")
    if officer.level != new.level:
        raise InvalidStaff(
            "officer_code", f"{officer.code} works at the {officer.level} level, not {new.level}"
        )
    if officer.department != "all" and officer.department != new.department:
        raise InvalidStaff(
            "officer_code",
            f"{officer.code} is an officer of {officer.department}, not {new.department or 'all'}",
        )
    if officer.areas != "all" and new.area not in officer.areas:
        raise InvalidStaff("officer_code", f"{officer.code} does not cover {new.area}")


async def add_staff(config: Config, new: NewStaff, *, actor: str) -> StaffMember:
    """Create a staff account (validated against ``config``), audited as ``actor``."""
    new = validate_staff(config, new)
    try:
        async with in_transaction() as conn:
            staff = await StaffMember.create(using_db=conn, **new.__dict__)
            await audit(
                actor,
                "staff.add",
                target=f"staff:{staff.username}",
                detail={"role": new.role},
                conn=conn,
            )
    except IntegrityError:
        raise InvalidStaff("username", f"{new.username!r} is taken") from None
    return staff


async def deactivate_staff(username: str, *, actor: str) -> bool:
    """Close an account (its tokens stop working at once); False when there is no such
    active account."""
    async with in_transaction() as conn:
        changed = (
            await StaffMember.filter(username=username, active=True)
            .using_db(conn)
            .update(active=False)
        )
        if changed:
            await audit(actor, "staff.deactivate", target=f"staff:{username}", conn=conn)
    return bool(changed)


async def reactivate_staff(config: Config, username: str, *, actor: str) -> StaffMember | None:
    """Reopen a closed account; None when there is no such inactive account. It is checked
    against the config as it is now (which may have changed while it was closed):
    :class:`InvalidStaff` names the field. Its tokens that were not revoked work again."""
    staff = await StaffMember.get_or_none(username=username, active=False)
    if staff is None:
        return None
    current = {f.name: getattr(staff, f.name) for f in fields(NewStaff)}
    validate_staff(config, NewStaff(**{**current, "role": StaffRole(staff.role)}))
    async with in_transaction() as conn:
        changed = (
            await StaffMember.filter(id=staff.id, active=False).using_db(conn).update(active=True)
        )
        if changed:
            await audit(actor, "staff.reactivate", target=f"staff:{username}", conn=conn)
    return staff if changed else None


async def list_tokens(username: str | None = None) -> list[ApiToken]:
    """Tokens (of ``username``, or everyone's), newest first, with their staff member."""
    query = ApiToken.all().select_related("staff").order_by("-id")
    if username is not None:
        query = query.filter(staff__username=username)
    return await query


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: str
    """The bearer token itself: shown once, never stored."""
    record: ApiToken


async def issue_token(staff: StaffMember, *, label: str | None, actor: str) -> IssuedToken:
    """A new API token for ``staff``."""
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    async with in_transaction() as conn:
        record = await ApiToken.create(
            staff=staff, token_hash=hash_token(token), prefix=prefix, label=label, using_db=conn
        )
        await audit(
            actor,
            "token.issue",
            target=f"staff:{staff.username}",
            detail={"prefix": prefix},
            conn=conn,
        )
    return IssuedToken(token=token, record=record)


async def revoke_token(prefix: str, *, actor: str) -> bool:
    """Revoke the token with ``prefix``; False when there is no such live token."""
    async with in_transaction() as conn:
        changed = (
            await ApiToken.filter(prefix=prefix, revoked_at=None)
            .using_db(conn)
            .update(revoked_at=datetime.now(UTC))
        )
        if changed:
            await audit(actor, "token.revoke", detail={"prefix": prefix}, conn=conn)
    return bool(changed)


async def staff_for_token(token: str) -> StaffMember | None:
    """The active staff member holding the live ``token``, or None (for any string: a
    header's bytes that were not UTF-8 arrive as lone surrogates, and are no token)."""
    if not token.startswith(TOKEN_PREFIX) or not token.isascii() or len(token) > MAX_TOKEN:
        return None
    record = (
        await ApiToken.filter(token_hash=hash_token(token), revoked_at=None)
        .select_related("staff")
        .first()
    )
    if record is None or not record.staff.active:
        return None
    now = datetime.now(UTC)
    if record.last_used_at is None or now - record.last_used_at > LAST_USED_EVERY:
        await ApiToken.filter(id=record.id).update(last_used_at=now)
    return record.staff

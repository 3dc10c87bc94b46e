"""Staff passwords for the console: argon2id hashes, sign-in checks, one-time set-password
links.

Only the argon2id hash of a password is stored (argon2-cffi's defaults, RFC 9106's second
recommended profile). A set-password link carries a random secret of which only the
SHA-256 is stored, with its expiry; using it sets the password and clears it, so it works
once. Setting a password, and creating a link, are audit records.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from tortoise.transactions import in_transaction

from gateway.errors import FieldError
from gateway.staff.audit import audit
from gateway.storage.models import StaffMember

__all__ = [
    "LINK_LIFETIME",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "check_password",
    "check_sign_in",
    "create_password_link",
    "set_password",
    "staff_for_link",
    "use_password_link",
]

MIN_PASSWORD = 10
MAX_PASSWORD = 200
"""Longer is refused: argon2 would take it, but nobody types it and it costs memory."""
LINK_LIFETIME = timedelta(hours=48)

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("no account has this password")
"""Verified against when the account does not exist, so that a sign-in takes as long
whether the username exists or not."""


def check_password(password: str) -> str:
    """``password`` if it may be set; a :class:`FieldError` naming ``password`` if not."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise FieldError("password", f"{MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if not password.isprintable() or password != password.strip():
        raise FieldError("password", "no control characters, no spaces at either end")
    return password


async def set_password(staff: StaffMember, password: str, *, actor: str) -> None:
    """Set ``staff``'s console password (checked by :func:`check_password`), audited."""
    digest = _hasher.hash(check_password(password))
    async with in_transaction() as conn:
        await StaffMember.filter(id=staff.id).using_db(conn).update(
            password_hash=digest, password_link_hash=None, password_link_expires_at=None
        )
        await audit(actor, "staff.password", target=f"staff:{staff.username}", conn=conn)
    staff.password_hash = digest


async def check_sign_in(username: str, password: str) -> StaffMember | None:
    """The active staff member ``username`` if ``password`` is theirs, else None."""
    staff = await StaffMember.get_or_none(username=username[:40], active=True)
    digest = staff.password_hash if staff is not None and staff.password_hash else _DUMMY
    try:
        _hasher.verify(digest, password[: MAX_PASSWORD + 1])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if staff is None or not staff.password_hash:
        return None
    if _hasher.check_needs_rehash(digest):
        await StaffMember.filter(id=staff.id).update(password_hash=_hasher.hash(password))
    return staff


def _link_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_password_link(staff: StaffMember, *, actor: str, now: datetime) -> str:
    """A new one-time set-password secret for ``staff`` (any earlier one stops working);
    shown once, only its SHA-256 is stored."""
    secret = secrets.token_urlsafe(24)
    async with in_transaction() as conn:
        await StaffMember.filter(id=staff.id).using_db(conn).update(
            password_link_hash=_link_hash(secret), password_link_expires_at=now + LINK_LIFETIME
        )
        await audit(actor, "staff.password_link", target=f"staff:{staff.username}", conn=conn)
    return secret


async def staff_for_link(secret: str, *, now: datetime) -> StaffMember | None:
    """The active staff member whose unexpired link carries ``secret``, or None."""
    if not secret.isascii() or len(secret) > 64:
        return None
    staff = await StaffMember.get_or_none(password_link_hash=_link_hash(secret), active=True)
    if staff is None or staff.password_link_expires_at is None:
        return None
    return staff if staff.password_link_expires_at > now else None


async def use_password_link(secret: str, password: str, *, now: datetime) -> StaffMember | None:
    """Set the password of the link's staff member (the link then stops working); None
    when the link is unknown, used or expired."""
    staff = await staff_for_link(secret, now=now)
    if staff is None:
        return None
    await set_password(staff, password, actor=f"staff:{staff.username}")
    return staff

"""Reading a callback's fields (a form or a query string), for the providers after Africa's
Talking: a required field missing or garbled is a :class:`PayloadError` naming it (a 400),
an informational one that does not fit is dropped and logged, never refused.

Pure functions; numbers are logged masked, values never.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web

from gateway.channels.base import PayloadError
from gateway.text.phone import InvalidPhoneNumber, mask_phone, normalize_phone
from gateway.text.storable import is_identifier, storable

__all__ = [
    "FORM_CONTENT_TYPES",
    "free_text",
    "identifier",
    "informational",
    "lenient_phone",
    "optional",
    "read_form",
    "read_query",
    "required",
    "required_phone",
]

log = logging.getLogger(__name__)

FORM_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def required(fields: Mapping[str, str], name: str, *, allow_empty: bool = False) -> str:
    value = fields.get(name)
    if value is None:
        raise PayloadError(name, "missing")
    if not allow_empty and not value.strip():
        raise PayloadError(name, "empty")
    return value


def optional(fields: Mapping[str, str], name: str) -> str | None:
    """A field's value, or None when absent or blank."""
    value = fields.get(name)
    if value is None or not value.strip():
        return None
    return value


def identifier(fields: Mapping[str, str], name: str, limit: int) -> str:
    """A required identifier, refused unless it fits ``limit`` and is printable."""
    value = required(fields, name)
    if len(value) > limit:
        raise PayloadError(name, f"longer than {limit} characters ({len(value)})")
    if not is_identifier(value, limit):
        raise PayloadError(name, "contains a character that is not printable")
    return value


def informational(fields: Mapping[str, str], name: str, limit: int) -> str | None:
    """An optional field only recorded: None when absent, or when it does not fit ``limit``
    or is not printable (dropped, never refused)."""
    value = optional(fields, name)
    if value is None or is_identifier(value, limit):
        return value
    log.warning("ignoring unusable callback field %s (%d characters)", name, len(value))
    return None


def free_text(fields: Mapping[str, str], name: str) -> str | None:
    """Optional free text, without the characters no column takes."""
    value = optional(fields, name)
    return None if value is None else storable(value)


def required_phone(fields: Mapping[str, str], name: str, region: str) -> str:
    """A required phone number as E.164 (``09812345678`` read in ``region``)."""
    raw = required(fields, name)
    try:
        return normalize_phone(raw, region=region)
    except InvalidPhoneNumber as exc:
        raise PayloadError(name, str(exc)) from None


def lenient_phone(fields: Mapping[str, str], name: str, region: str) -> str | None:
    """An informational phone number: E.164 when it is one, else None (never a 400)."""
    raw = optional(fields, name)
    if raw is None:
        return None
    try:
        return normalize_phone(raw, region=region)
    except InvalidPhoneNumber:
        log.warning("ignoring malformed %s %s", name, mask_phone(raw))
        return None


async def read_form(request: web.Request) -> dict[str, str]:
    """The request's form fields; raises PayloadError when the body is not a form."""
    if request.content_type not in FORM_CONTENT_TYPES:
        raise PayloadError(
            "body", f"expected application/x-www-form-urlencoded, got {request.content_type!r}"
        )
    try:
        form = await request.post()
    except (ValueError, LookupError) as exc:  # bad encoding, unknown charset
        raise PayloadError("body", f"unreadable form: {type(exc).__name__}") from None
    fields: dict[str, str] = {}
    for key, value in form.items():
        if not isinstance(value, str):
            raise PayloadError(key, "a file upload, expected a text field")
        fields.setdefault(key, value)  # the first of repeated fields wins
    return fields


def read_query(request: web.Request) -> dict[str, str]:
    """The query string's fields (the first of repeated ones); raises PayloadError when
    it is not UTF-8."""
    try:
        query = request.query
    except UnicodeDecodeError:
        raise PayloadError("query", "not UTF-8") from None
    fields: dict[str, str] = {}
    for key, value in query.items():
        fields.setdefault(key, value)
    return fields

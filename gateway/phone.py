"""Phone numbers: E.164 normalisation and masking for logs (a number is personal data)."""

from __future__ import annotations

import re

__all__ = ["InvalidPhoneNumber", "mask_phone", "normalize_phone"]

_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_SEPARATORS = re.compile(r"[\s\-().]")


class InvalidPhoneNumber(ValueError):
    """Not a phone number we can send to."""


def normalize_phone(raw: str, *, default_country_code: str = "91") -> str:
    """Return ``raw`` as E.164 (``+919812345678``).

    Accepts ``+91 98123-45678``, ``00919812345678``, ``919812345678`` and, for India's
    ten-digit mobile numbers, ``09812345678`` and ``9812345678``.
    """
    s = _SEPARATORS.sub("", raw or "")
    if s.startswith("00"):
        s = "+" + s[2:]
    if not s.startswith("+"):
        if not s.isdigit():
            raise InvalidPhoneNumber(f"not a phone number: {mask_phone(raw)}")
        if len(s) == 11 and s.startswith("0"):
            s = s[1:]
        if len(s) == 10 and default_country_code == "91" and s[0] in "6789":
            s = "+91" + s
        else:
            s = "+" + s
    if not _E164.match(s):
        raise InvalidPhoneNumber(f"not an E.164 phone number: {mask_phone(raw)}")
    return s


def mask_phone(phone: str | None) -> str:
    """``+919812345678`` -> ``+91******5678``: enough to tell numbers apart in a log."""
    if not phone:
        return "-"
    keep_head = 3 if phone.startswith("+") else 2
    if len(phone) <= keep_head + 4:
        return "*" * len(phone)
    return phone[:keep_head] + "*" * (len(phone) - keep_head - 4) + phone[-4:]

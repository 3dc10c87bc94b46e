"""What no text column takes, whatever its size: a NUL (PostgreSQL refuses it in text) and a
lone surrogate (not encodable as UTF-8, so neither database driver can send it).

Pure text rules, so that a provider parsing a callback and the staff API checking a body
apply the same ones without either knowing the database: an identifier carrying either
character is refused (:func:`is_identifier`); free text has them taken out (:func:`storable`).
"""

from __future__ import annotations

import re

__all__ = ["is_identifier", "storable", "unstorable"]

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> bool:
    """True when ``text`` holds a NUL or a lone surrogate, which no text column takes."""
    return _UNSTORABLE.search(text) is not None


def storable(text: str) -> str:
    """Free text as a column takes it: NULs dropped, lone surrogates made U+FFFD."""
    if not unstorable(text):
        return text
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def is_identifier(value: str, limit: int) -> bool:
    """An identifier we store or look up: at most ``limit`` characters, all printable
    (no control character, NUL, lone surrogate or line break)."""
    return len(value) <= limit and value.isprintable()

"""How long a text is on the air: GSM 03.38 septets or UCS-2 units, for USSD screens and SMS.

One character outside the GSM 7-bit default alphabet makes the whole text UCS-2, so a single
Hindi word halves what a screen or an SMS can hold. Lengths are counted in the units the network
carries (septets, UTF-16 code units), never in UTF-8 bytes or Python characters.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "USSD_GSM7_BUDGET",
    "USSD_UCS2_BUDGET",
    "Encoding",
    "ScreenMeasure",
    "SmsMeasure",
    "detect_encoding",
    "length_in",
    "measure_screen",
    "measure_sms",
    "split_sms",
]


class Encoding(enum.StrEnum):
    """The alphabet a text travels in."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"


# 3GPP TS 23.038 §6.2.1, codes 0x00 to 0x7F in order. 0x09 is the capital Ç the standard shows:
# a gateway that mapped ç there would send what we count as GSM-7, one that did not would send
# UCS-2, so treating ç as UCS-2 never under-counts.
_BASIC_TABLE: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
_ESCAPE: Final = "\x1b"

GSM7_BASIC: Final[frozenset[str]] = frozenset(_BASIC_TABLE) - {_ESCAPE}
"""The 127 characters of the basic table, one septet each (the escape 0x1B is not one)."""

GSM7_EXTENSION: Final[frozenset[str]] = frozenset("\f^{}\\[~]|€")
"""The extension table's characters, sent as escape + code: two septets each."""

_GSM7_ALL: Final = GSM7_BASIC | GSM7_EXTENSION
_EXTENSION_CHARS: Final = tuple(sorted(GSM7_EXTENSION))
# ASCII fast path: bytes.translate deletes these in C; what remains is extension characters
# (two septets) or something GSM-7 lacks (backtick, controls other than LF and CR, DEL).
_ASCII_PLAIN: Final = bytes(c for c in range(128) if chr(c) in GSM7_BASIC)
_ASCII_EXTENSION: Final = "".join(c for c in _EXTENSION_CHARS if c.isascii()).encode("ascii")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")

USSD_GSM7_BUDGET: Final = 182
"""Characters on one USSD screen in GSM-7: 160 octets of packed septets."""
USSD_UCS2_BUDGET: Final = 80
"""Characters on one USSD screen in UCS-2: 160 octets of UTF-16."""

_SMS_SINGLE: Final = {Encoding.GSM7: 160, Encoding.UCS2: 70}
# A concatenated part loses 6 octets to the user data header.
_SMS_PART: Final = {Encoding.GSM7: 153, Encoding.UCS2: 67}


def _gsm7_septets(text: str) -> int | None:
    """Septets ``text`` takes in GSM-7, or None when it has a character GSM-7 lacks."""
    if text.isascii():
        special = text.encode("ascii").translate(None, _ASCII_PLAIN)
        if not special:
            return len(text)
        if special.translate(None, _ASCII_EXTENSION):
            return None
        return len(text) + len(special)
    if not _GSM7_ALL.issuperset(text):
        return None
    return len(text) + sum(map(text.count, _EXTENSION_CHARS))


def _utf16_units(text: str) -> int:
    if text.isascii():
        return len(text)
    # surrogatepass: a lone surrogate still occupies one unit rather than raising.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _measure(text: str) -> tuple[Encoding, int]:
    septets = _gsm7_septets(text)
    if septets is not None:
        return Encoding.GSM7, septets
    return Encoding.UCS2, _utf16_units(text)


def detect_encoding(text: str) -> Encoding:
    """GSM7 when every character is in the basic or extension table, else UCS2."""
    return _measure(text)[0]


def length_in(text: str, encoding: Encoding) -> int:
    """The length of ``text`` in ``encoding``: septets for GSM7, UTF-16 code units for UCS2.

    An extension character counts two septets; a character outside the BMP (an emoji) counts
    two UTF-16 units. Raises ValueError when ``text`` cannot be sent as GSM7.
    """
    if encoding is Encoding.UCS2:
        return _utf16_units(text)
    septets = _gsm7_septets(text)
    if septets is None:
        index, char = next((i, c) for i, c in enumerate(text) if c not in _GSM7_ALL)
        raise ValueError(f"not GSM-7: {char!r} at index {index}")
    return septets


@dataclass(frozen=True, slots=True)
class SmsMeasure:
    """What an SMS text costs: its encoding, its length in units and the parts it is sent in."""

    encoding: Encoding
    units: int
    """Septets (GSM7) or UTF-16 code units (UCS2) of the whole text."""
    segments: int
    """Messages the text is sent as (1 for a single SMS, else the concatenated parts)."""
    units_per_segment: int
    """160/153 (GSM7 single/concatenated) or 70/67 (UCS2)."""
    last_segment_units: int
    """Units in the last segment. Not always what is left of ``units`` after full parts: a part
    carries one unit less when a two-unit character did not fit at its end."""

    @property
    def characters_left(self) -> int:
        """Units still free in the last segment before another segment is needed."""
        return self.units_per_segment - self.last_segment_units


def _unit_width(text: str, i: int, encoding: Encoding) -> tuple[int, int]:
    """(units, characters) of the indivisible piece of ``text`` starting at index ``i``."""
    char = text[i]
    if encoding is Encoding.GSM7:
        return (2 if char in GSM7_EXTENSION else 1), 1
    if char > "\uffff":
        return 2, 1
    # A surrogate pair left unjoined in the str (e.g. from a surrogatepass decode).
    if "\ud800" <= char <= "\udbff" and i + 1 < len(text) and "\udc00" <= text[i + 1] <= "\udfff":
        return 2, 2
    return 1, 1


def _parts(text: str, encoding: Encoding, units: int) -> list[tuple[int, int, int]]:
    """(start, end, units) of each SMS part, packing greedily without splitting a piece."""
    single = _SMS_SINGLE[encoding]
    if units <= single:
        return [(0, len(text), units)]
    limit = _SMS_PART[encoding]
    if units == len(text) and (encoding is Encoding.GSM7 or _SURROGATE.search(text) is None):
        # Every character is one unit: fixed-size slices.
        return [
            (start, min(start + limit, len(text)), min(limit, len(text) - start))
            for start in range(0, len(text), limit)
        ]
    parts: list[tuple[int, int, int]] = []
    start = used = i = 0
    while i < len(text):
        width, step = _unit_width(text, i, encoding)
        if used + width > limit:
            parts.append((start, i, used))
            start, used = i, 0
        used += width
        i += step
    parts.append((start, len(text), used))
    return parts


def measure_sms(text: str) -> SmsMeasure:
    """Measure ``text`` as an SMS: encoding, units, segments and room left in the last segment.

    Segments are counted as :func:`split_sms` cuts them, so a two-unit character that does not
    fit at the end of a part (which then carries one unit less) can add a segment. Empty text
    is one segment.
    """
    encoding, units = _measure(text)
    parts = _parts(text, encoding, units)
    per_segment = _SMS_SINGLE[encoding] if len(parts) == 1 else _SMS_PART[encoding]
    return SmsMeasure(
        encoding=encoding,
        units=units,
        segments=len(parts),
        units_per_segment=per_segment,
        last_segment_units=parts[-1][2],
    )


def split_sms(text: str) -> list[str]:
    """The parts ``text`` is sent as, in order; joined they give ``text`` back.

    One part when it fits a single SMS (160 septets or 70 UCS-2 units), else parts of at most
    153 septets or 67 units. An extension character's escape pair and a UTF-16 surrogate pair
    are never split across parts.
    """
    encoding, units = _measure(text)
    return [text[start:end] for start, end, _ in _parts(text, encoding, units)]


@dataclass(frozen=True, slots=True)
class ScreenMeasure:
    """How a USSD screen's text compares with what the handset can show."""

    encoding: Encoding
    length: int
    """Septets (GSM7) or UTF-16 code units (UCS2)."""
    budget: int
    """The limit that applies to ``encoding``."""

    @property
    def fits(self) -> bool:
        """True when the screen is within its budget."""
        return self.length <= self.budget

    @property
    def over(self) -> int:
        """Units to cut for the screen to fit; 0 when it fits."""
        return max(0, self.length - self.budget)


def measure_screen(
    text: str,
    *,
    ucs2_budget: int = USSD_UCS2_BUDGET,
    gsm7_budget: int = USSD_GSM7_BUDGET,
) -> ScreenMeasure:
    """Measure a USSD screen's text against the budget of the encoding it will travel in.

    One character outside GSM-7 makes the whole screen UCS-2, and then ``ucs2_budget`` applies
    (a language may lower it, e.g. to 60, where handsets show little Indic text per screen).
    Runs on every USSD hop: the common cases are handled by str methods, not a Python loop.
    """
    encoding, length = _measure(text)
    budget = gsm7_budget if encoding is Encoding.GSM7 else ucs2_budget
    return ScreenMeasure(encoding=encoding, length=length, budget=budget)

"""Complaint ticket numbers: short, digits only, not sequential, with a Verhoeff check digit.

A ticket is the complaint's database serial (its auto-increment id, unique across gateway
processes) permuted by a keyed bijection on ``body_digits`` decimal digits, followed by a
Verhoeff check digit (as Aadhaar numbers have), which catches every single mistyped digit and
every swap of two neighbouring digits. Consecutive complaints get unrelated tickets, so a ticket
does not point to its neighbours; while the key is kept private, it does not tell how many
complaints were filed either.
"""

from __future__ import annotations

import hmac
import re
from typing import Final, Literal

__all__ = [
    "InvalidTicket",
    "InvalidTicketReason",
    "TicketCodec",
    "verhoeff_check_digit",
    "verhoeff_is_valid",
]

# Verhoeff's tables: multiplication in the dihedral group D5, the position permutations
# (powers of (0 1 5 8 9 4 2 7)(3 6)) and the group inverse.
_D: Final = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P: Final = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INV: Final = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def _is_ascii_digits(s: str) -> bool:
    # str.isdigit alone accepts "²" and "५".
    return s.isascii() and s.isdigit()


def _verhoeff(digits: str, *, first_position: int) -> int:
    check = 0
    for position, char in enumerate(reversed(digits), start=first_position):
        check = _D[check][_P[position % 8][ord(char) - 48]]
    return check


def verhoeff_check_digit(digits: str) -> str:
    """The Verhoeff check digit to append to ``digits`` (ASCII digits, at least one)."""
    if not _is_ascii_digits(digits):
        raise ValueError("expected one or more ASCII digits")
    # The check digit will sit at position 0, so the payload starts at position 1.
    return str(_INV[_verhoeff(digits, first_position=1)])


def verhoeff_is_valid(number: str) -> bool:
    """True when ``number`` (ASCII digits) ends in its correct Verhoeff check digit."""
    return _is_ascii_digits(number) and _verhoeff(number, first_position=0) == 0


InvalidTicketReason = Literal["empty", "not_digits", "wrong_length", "check_digit"]

_MESSAGES: Final[dict[InvalidTicketReason, str]] = {
    "empty": "no ticket number given",
    "not_digits": "a ticket number has only digits",
    "wrong_length": "a ticket number has a different number of digits",
    "check_digit": "not a ticket number (check digit does not match: a digit is mistyped)",
}


class InvalidTicket(ValueError):
    """Input that is not a well-formed ticket; ``reason`` says why, for the reply's wording."""

    def __init__(self, reason: InvalidTicketReason) -> None:
        # The raw input is deliberately left out of the message: it may be anything a citizen
        # typed, a phone number included.
        super().__init__(_MESSAGES[reason])
        self.reason: InvalidTicketReason = reason

    def __reduce__(self) -> tuple[type[InvalidTicket], tuple[InvalidTicketReason]]:
        return type(self), (self.reason,)


# Whitespace, "." and every dash a keyboard or a copy-paste may produce.
_SEPARATORS: Final = re.compile(r"[\s.\-\u2010-\u2015\u2212]+")
_ROUNDS: Final = 8


class TicketCodec:
    """Turns database serials into tickets and back.

    ``key`` (non-empty) keys the permutation and is shared by every gateway process; changing
    it, or ``body_digits``, changes every ticket, so both are set once. A ticket has
    ``body_digits`` + 1 digits; serials from 1 to 10**body_digits - 1 can be encoded.
    """

    def __init__(self, *, key: bytes, body_digits: int = 8) -> None:
        if not key:
            raise ValueError("ticket key must not be empty")
        if not 2 <= body_digits <= 18:
            raise ValueError("body_digits must be between 2 and 18")
        self._body_digits: int = body_digits
        self._limit: int = 10**body_digits
        # A balanced Feistel network over two halves of half_bits each covers
        # [0, 2**(2*half_bits)) >= [0, limit); cycle-walking brings results back into range.
        self._half_bits: int = ((self._limit - 1).bit_length() + 1) // 2
        self._half_mask: int = (1 << self._half_bits) - 1
        self._half_bytes: int = (self._half_bits + 7) // 8
        # Derived so that codecs of other lengths (or other uses of the key) are independent.
        round_key = hmac.digest(key, b"sampark/ticket/v1/%d" % body_digits, "sha256")
        # Keyed once; copying it per round skips re-deriving the HMAC pads from the key.
        self._mac = hmac.new(round_key, digestmod="sha256")

    def _round(self, index: int, half: int) -> int:
        mac = self._mac.copy()
        mac.update(bytes((index,)) + half.to_bytes(self._half_bytes, "big"))
        return int.from_bytes(mac.digest()[: self._half_bytes], "big") & self._half_mask

    def _feistel(self, value: int) -> int:
        left, right = value >> self._half_bits, value & self._half_mask
        for index in range(_ROUNDS):
            left, right = right, left ^ self._round(index, right)
        return (left << self._half_bits) | right

    def _feistel_inverse(self, value: int) -> int:
        left, right = value >> self._half_bits, value & self._half_mask
        for index in reversed(range(_ROUNDS)):
            left, right = right ^ self._round(index, left), left
        return (left << self._half_bits) | right

    def _permute(self, value: int) -> int:
        # Cycle-walking: the Feistel network permutes a larger power-of-two domain; following
        # the cycle until it re-enters [0, limit) gives a permutation of [0, limit).
        value = self._feistel(value)
        while value >= self._limit:
            value = self._feistel(value)
        return value

    def _unpermute(self, value: int) -> int:
        value = self._feistel_inverse(value)
        while value >= self._limit:
            value = self._feistel_inverse(value)
        return value

    def encode(self, serial: int) -> str:
        """The ticket for database serial ``serial`` (1 <= serial < 10**body_digits)."""
        if isinstance(serial, bool) or not isinstance(serial, int):
            raise TypeError("serial must be an int")
        if not 1 <= serial < self._limit:
            raise ValueError(f"serial must be between 1 and {self._limit - 1}")
        body = str(self._permute(serial)).zfill(self._body_digits)
        return body + verhoeff_check_digit(body)

    def decode(self, ticket: str) -> int:
        """The serial ``ticket`` was made from; raises InvalidTicket when it is malformed.

        A well-formed ticket always decodes: whether its serial exists is the database's
        question (0, never a serial, comes back for the one ticket no serial maps to).
        """
        canonical = self.parse(ticket)
        return self._unpermute(int(canonical[:-1]))

    def parse(self, raw: str) -> str:
        """The ticket's canonical digits from what a citizen or agent typed.

        Spaces, dashes and dots are dropped and digits of any script (e.g. Devanagari) read as
        ASCII digits. Raises InvalidTicket with reason ``empty``, ``not_digits``,
        ``wrong_length`` or ``check_digit``, checked in that order.
        """
        digits = _SEPARATORS.sub("", raw)
        if not digits:
            raise InvalidTicket("empty")
        if not digits.isdecimal():
            raise InvalidTicket("not_digits")
        if len(digits) != self._body_digits + 1:
            raise InvalidTicket("wrong_length")
        if not digits.isascii():
            digits = str(int(digits)).zfill(len(digits))
        if not verhoeff_is_valid(digits):
            raise InvalidTicket("check_digit")
        return digits

    def format_for_display(self, ticket: str) -> str:
        """The ticket as shown in SMS and on screens: its canonical digits, ungrouped."""
        return self.parse(ticket)

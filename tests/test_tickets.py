"""Ticket numbers: Verhoeff check digits and the keyed serial <-> ticket bijection."""

from __future__ import annotations

import itertools
import pickle

import pytest

from gateway.text.tickets import InvalidTicket, TicketCodec, verhoeff_check_digit, verhoeff_is_valid

KEY = b"sampark-test-key-000001"
OTHER_KEY = b"sampark-test-key-000002"
SERIALS = range(1, 20_001)


# An independent Verhoeff, built from its definition rather than from the published tables:
# digits 0-4 are the rotations and 5-9 the reflections of the dihedral group D5, position i
# applies the permutation (0 1 5 8 9 4 2 7)(3 6) i times.
def _d5(j: int, k: int) -> int:
    if j < 5:
        return (j + k) % 5 if k < 5 else 5 + (j + k) % 5
    return 5 + (j - k) % 5 if k < 5 else (j - k) % 5


_STEP = {0: 1, 1: 5, 5: 8, 8: 9, 9: 4, 4: 2, 2: 7, 7: 0, 3: 6, 6: 3}


def _position_permutation(position: int, digit: int) -> int:
    for _ in range(position % 8):
        digit = _STEP[digit]
    return digit


def reference_check_digit(digits: str) -> str:
    check = 0
    for position, char in enumerate(reversed(digits), start=1):
        check = _d5(check, _position_permutation(position, int(char)))
    return str(next(k for k in range(10) if _d5(check, k) == 0))


# Published vectors, each also recomputed with reference_check_digit below:
# - 236 -> 3: the worked example of Wikipedia's "Verhoeff algorithm" article, and
#   Rosetta Code's "Verhoeff algorithm" task, whose expected output also gives 12345 -> 1 and
#   123456789012 -> 0.
# - 142857 -> 0 (1428570 is valid), 1428570 -> 8, 654 -> 8 and the 36-digit number -> 7:
#   python-stdnum, tests/test_verhoeff.doctest.
# - 1456789 -> 4: Perl Algorithm::CheckDigits (MXX_006, the Verhoeff scheme), its synopsis.
VECTORS = [
    ("236", "3"),
    ("12345", "1"),
    ("123456789012", "0"),
    ("142857", "0"),
    ("1428570", "8"),
    ("654", "8"),
    ("398438246238642378648236487236482734", "7"),
    ("1456789", "4"),
]


@pytest.fixture(scope="module")
def codec() -> TicketCodec:
    return TicketCodec(key=KEY)


@pytest.fixture(scope="module")
def first_tickets(codec: TicketCodec) -> list[str]:
    return [codec.encode(serial) for serial in SERIALS]


@pytest.mark.parametrize(("digits", "check"), VECTORS)
def test_verhoeff_known_vectors(digits: str, check: str) -> None:
    assert reference_check_digit(digits) == check
    assert verhoeff_check_digit(digits) == check
    assert verhoeff_is_valid(digits + check)
    for wrong in set("0123456789") - {check}:
        assert not verhoeff_is_valid(digits + wrong)


def test_verhoeff_agrees_with_reference() -> None:
    for n in itertools.chain(range(10_000), range(10**8 - 500, 10**8)):
        digits = str(n)
        assert verhoeff_check_digit(digits) == reference_check_digit(digits), digits
        assert verhoeff_check_digit(digits.zfill(9)) == reference_check_digit(digits.zfill(9))


@pytest.mark.parametrize("number", ["", "12a3", "２３６３", "२३६३", "236 3", "-2363", "²363"])
def test_verhoeff_is_valid_rejects_non_digits(number: str) -> None:
    assert not verhoeff_is_valid(number)


@pytest.mark.parametrize("digits", ["", "12a", "२३६", " 236"])
def test_verhoeff_check_digit_rejects_non_digits(digits: str) -> None:
    with pytest.raises(ValueError):
        verhoeff_check_digit(digits)


def _samples(codec: TicketCodec) -> list[str]:
    return ["2363", "1428570", "000000001", *(codec.encode(s) for s in (1, 2, 777, 99_999_999))]


def test_every_single_digit_substitution_is_detected(codec: TicketCodec) -> None:
    for ticket in _samples(codec):
        assert verhoeff_is_valid(ticket)
        for position, digit in itertools.product(range(len(ticket)), "0123456789"):
            if ticket[position] == digit:
                continue
            typo = ticket[:position] + digit + ticket[position + 1 :]
            assert not verhoeff_is_valid(typo), typo
            if len(typo) == 9:
                with pytest.raises(InvalidTicket) as caught:
                    codec.parse(typo)
                assert caught.value.reason == "check_digit"


def test_every_adjacent_transposition_is_detected(codec: TicketCodec) -> None:
    checked = 0
    for ticket in [*_samples(codec), "1234567890", "9087654321"]:
        for i in range(len(ticket) - 1):
            a, b = ticket[i], ticket[i + 1]
            if a == b:
                continue
            swapped = ticket[:i] + b + a + ticket[i + 2 :]
            assert not verhoeff_is_valid(swapped), swapped
            checked += 1
    assert checked > 50


def test_round_trip_first_serials(codec: TicketCodec, first_tickets: list[str]) -> None:
    for serial, ticket in zip(SERIALS, first_tickets, strict=True):
        assert len(ticket) == 9 and ticket.isascii() and ticket.isdigit()
        assert verhoeff_is_valid(ticket)
        assert codec.decode(ticket) == serial


@pytest.mark.parametrize(
    "serial", [123_456, 2**26, 12_345_678, 50_000_000, 67_108_864, 99_999_998, 99_999_999]
)
def test_round_trip_large_serials(codec: TicketCodec, serial: int) -> None:
    ticket = codec.encode(serial)
    assert len(ticket) == 9
    assert codec.decode(ticket) == serial


def test_encode_is_injective(first_tickets: list[str]) -> None:
    assert len(set(first_tickets)) == len(first_tickets)


@pytest.mark.parametrize("body_digits", [2, 3, 4])
def test_small_codecs_permute_their_whole_range(body_digits: int) -> None:
    small = TicketCodec(key=KEY, body_digits=body_digits)
    limit = 10**body_digits
    bodies = set()
    for serial in range(1, limit):
        ticket = small.encode(serial)
        assert len(ticket) == body_digits + 1
        assert small.decode(ticket) == serial
        bodies.add(int(ticket[:-1]))
    # A bijection on [0, limit): the serials take every body but the one serial 0 would get.
    assert len(bodies) == limit - 1
    assert bodies <= set(range(limit))
    (missing,) = set(range(limit)) - bodies
    unissued = str(missing).zfill(body_digits)
    assert small.decode(unissued + verhoeff_check_digit(unissued)) == 0


def test_different_keys_give_different_tickets(first_tickets: list[str]) -> None:
    other = TicketCodec(key=OTHER_KEY)
    assert all(other.encode(s) != t for s, t in zip(SERIALS[:2000], first_tickets, strict=False))


def test_consecutive_serials_do_not_give_consecutive_tickets(first_tickets: list[str]) -> None:
    bodies = [int(t[:-1]) for t in first_tickets]
    steps = [b - a for a, b in itertools.pairwise(bodies)]
    assert all(abs(step) > 1 for step in steps)
    # Not ordered either: about half the steps go down.
    downs = sum(step < 0 for step in steps)
    assert 0.45 < downs / len(steps) < 0.55
    # And spread over the whole range, not bunched near the serials.
    assert max(bodies) > 90_000_000 and min(bodies) < 10_000_000


def test_tickets_are_stable() -> None:
    # Pinned outputs (computed once with this implementation): tickets already sent to
    # citizens must keep decoding, so any change to the permutation has to fail here.
    assert [TicketCodec(key=KEY).encode(s) for s in (1, 2, 3, 99_999_999)] == [
        "461136127",
        "606206128",
        "431517151",
        "420819266",
    ]
    assert [TicketCodec(key=KEY, body_digits=6).encode(s) for s in (1, 2)] == [
        "9900795",
        "2991421",
    ]


@pytest.mark.parametrize("serial", [0, -1, 10**8, 10**9])
def test_encode_rejects_out_of_range_serials(codec: TicketCodec, serial: int) -> None:
    with pytest.raises(ValueError, match="serial"):
        codec.encode(serial)


@pytest.mark.parametrize("serial", [True, 1.0, "1"])
def test_encode_rejects_non_int(codec: TicketCodec, serial: object) -> None:
    with pytest.raises(TypeError):
        codec.encode(serial)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"key": b""}, "empty"),
        ({"key": KEY, "body_digits": 1}, "body_digits"),
        ({"key": KEY, "body_digits": 19}, "body_digits"),
    ],
)
def test_codec_rejects_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TicketCodec(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (" - . -", "empty"),
        ("46113612a", "not_digits"),
        ("ticket 461136127", "not_digits"),
        ("#461136127", "not_digits"),
        ("4611361²7", "not_digits"),
        ("46113612", "wrong_length"),
        ("4611361270", "wrong_length"),
        ("4611 3612", "wrong_length"),
        ("461136128", "check_digit"),
        ("416136127", "check_digit"),
        ("000000002", "check_digit"),
    ],
)
def test_parse_reasons(codec: TicketCodec, raw: str, reason: str) -> None:
    with pytest.raises(InvalidTicket) as caught:
        codec.parse(raw)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)
    with pytest.raises(InvalidTicket):
        codec.decode(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "461136127",
        " 461136127\n",
        "4611 3612 7",
        "4611-3612-7",
        "4611.3612.7",
        "461\t136\u00a0127",
        "4611–3612–7",  # an en dash from a copy-paste
        "४६११३६१२७",  # Devanagari digits
    ],
)
def test_parse_accepts_what_people_type(codec: TicketCodec, raw: str) -> None:
    assert codec.parse(raw) == "461136127"
    assert codec.decode(raw) == 1
    assert codec.format_for_display(raw) == "461136127"


def test_invalid_ticket_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(InvalidTicket("wrong_length")))
    assert isinstance(error, InvalidTicket)
    assert error.reason == "wrong_length"

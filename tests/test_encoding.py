"""GSM 03.38 / UCS-2 measurement of USSD screens and SMS."""

from __future__ import annotations

import itertools
import random

import pytest

from gateway.text.encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    USSD_GSM7_BUDGET,
    USSD_UCS2_BUDGET,
    Encoding,
    detect_encoding,
    length_in,
    measure_screen,
    measure_sms,
    split_sms,
)

GSM7 = Encoding.GSM7
UCS2 = Encoding.UCS2

# 3GPP TS 23.038 §6.2.1 basic table, codes 0x00 to 0x7F, as Unicode code points (the unicode.org
# GSM0338.TXT mapping, with the capital Ç at 0x09 that the standard shows). 0x1B is the escape.
BASIC_CODE_POINTS = [
    0x40, 0xA3, 0x24, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0x0A, 0xD8, 0xF8, 0x0D, 0xC5, 0xE5,
    0x394, 0x5F, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E, 0x1B, 0xC6, 0xE6,
    0xDF, 0xC9,
    0x20, 0x21, 0x22, 0x23, 0xA4, *range(0x25, 0x40),
    0xA1, *range(0x41, 0x5B), 0xC4, 0xD6, 0xD1, 0xDC, 0xA7,
    0xBF, *range(0x61, 0x7B), 0xE4, 0xF6, 0xF1, 0xFC, 0xE0,
]  # fmt: skip
# The extension table (escape 0x1B then the code): FF, ^ { } \ [ ~ ] | €.
EXTENSION_CODE_POINTS = [0x0C, 0x5E, 0x7B, 0x7D, 0x5C, 0x5B, 0x7E, 0x5D, 0x7C, 0x20AC]

HINDI = "शिकायत"  # 6 code points, all in the BMP
EMOJI = "😀"  # U+1F600: a surrogate pair in UTF-16
EMOJI_UNJOINED = "\ud83d\ude00"  # the same pair as two str characters


def reference_measure(text: str) -> tuple[Encoding, int]:
    """Per-character counting, to check the module's fast paths against."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        return GSM7, sum(2 if c in GSM7_EXTENSION else 1 for c in text)
    return UCS2, sum(2 if ord(c) > 0xFFFF else 1 for c in text)


def test_basic_table_is_the_standard_one() -> None:
    assert len(BASIC_CODE_POINTS) == 128
    assert BASIC_CODE_POINTS[0x1B] == 0x1B
    assert {chr(c) for c in BASIC_CODE_POINTS if c != 0x1B} == GSM7_BASIC
    assert len(GSM7_BASIC) == 127
    assert "\x1b" not in GSM7_BASIC


def test_extension_table_is_the_standard_one() -> None:
    assert {chr(c) for c in EXTENSION_CODE_POINTS} == GSM7_EXTENSION
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", GSM7),
        ("Paani nahi aa raha @ ward 5, £/$/¥ ok?", GSM7),
        ("[ok]", GSM7),
        ("€", GSM7),
        ("\f", GSM7),
        ("Ç", GSM7),
        ("ΔΦΓΛΩΠΨΣΘΞ", GSM7),
        ("line\r\nbreak", GSM7),
        ("`", UCS2),  # the one printable ASCII character GSM-7 lacks
        ("\t", UCS2),
        ("\x1b", UCS2),  # the escape itself is not a character
        ("\x7f", UCS2),
        ("ç", UCS2),  # only the capital is in the table
        (HINDI, UCS2),
        ("Ticket 12345 " + HINDI, UCS2),
        ("ok " + EMOJI, UCS2),
    ],
)
def test_detect_encoding(text: str, expected: Encoding) -> None:
    assert detect_encoding(text) is expected


@pytest.mark.parametrize(
    ("text", "septets"),
    [
        ("", 0),
        ("hello", 5),
        ("[ok]", 6),
        ("€5", 3),
        ("^{}\\[~]|€\f", 20),
        ("àéÑ", 3),
        ("a\r\nb", 4),
        ("Cost: 10€ {approx}", 21),
    ],
)
def test_length_in_gsm7_counts_extension_characters_twice(text: str, septets: int) -> None:
    assert length_in(text, GSM7) == septets


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("", 0),
        (HINDI, 6),
        (EMOJI, 2),
        ("a" + EMOJI + "b", 4),
        ("[ok]", 4),  # extension characters are one unit in UCS-2
        ("\ud83d", 1),  # a lone surrogate still takes a unit
        (EMOJI_UNJOINED, 2),
    ],
)
def test_length_in_ucs2_counts_utf16_units(text: str, units: int) -> None:
    assert length_in(text, UCS2) == units


@pytest.mark.parametrize("text", [HINDI, "`", "ok\t", EMOJI, "ç"])
def test_length_in_gsm7_rejects_other_characters(text: str) -> None:
    with pytest.raises(ValueError, match="not GSM-7"):
        length_in(text, GSM7)


def _mixed_texts() -> list[str]:
    texts = [chr(c) for c in range(0x300)] + [HINDI, EMOJI, "€", "\u20ac\u00e9"]
    texts += ["Menu 1. Paani " + chr(c) + " end" for c in range(0x80)]
    rng = random.Random(3038)
    alphabet = "ab 1.\n\r@_" + "[]{}^~|\\\f€" + "`\tçéΔ" + "अि" + EMOJI
    texts += ["".join(rng.choices(alphabet, k=rng.randint(1, 40))) for _ in range(500)]
    return texts


def test_fast_paths_agree_with_per_character_counting() -> None:
    for text in _mixed_texts():
        encoding, units = reference_measure(text)
        assert detect_encoding(text) is encoding, repr(text)
        assert length_in(text, encoding) == units, repr(text)
        screen = measure_screen(text)
        assert (screen.encoding, screen.length) == (encoding, units), repr(text)
        assert measure_sms(text).units == units, repr(text)


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "per_segment", "left"),
    [
        ("", GSM7, 0, 1, 160, 160),
        ("a" * 160, GSM7, 160, 1, 160, 0),
        ("a" * 161, GSM7, 161, 2, 153, 145),
        ("a" * 153 * 2, GSM7, 306, 2, 153, 0),
        ("a" * (153 * 2 + 1), GSM7, 307, 3, 153, 152),
        ("[" * 80, GSM7, 160, 1, 160, 0),
        # 76 "[" fill 152 septets; the 77th does not fit whole and opens part 2.
        ("[" * 80 + "a", GSM7, 161, 2, 153, 144),
        # 306 septets, but the escape pair cannot straddle parts: 152 + 153 + 1.
        ("a" * 152 + "[" + "a" * 152, GSM7, 306, 3, 153, 152),
        ("अ" * 70, UCS2, 70, 1, 70, 0),
        ("अ" * 71, UCS2, 71, 2, 67, 63),
        ("अ" * 67 * 2, UCS2, 134, 2, 67, 0),
        ("अ" * (67 * 2 + 1), UCS2, 135, 3, 67, 66),
        (EMOJI * 35, UCS2, 70, 1, 70, 0),
        # 33 emoji fill 66 units; the 34th does not fit whole.
        (EMOJI * 35 + "a", UCS2, 71, 2, 67, 62),
        ("a" * 159 + "अ", UCS2, 160, 3, 67, 41),
    ],
)
def test_measure_sms(
    text: str, encoding: Encoding, units: int, segments: int, per_segment: int, left: int
) -> None:
    measure = measure_sms(text)
    assert measure.encoding is encoding
    assert measure.units == units
    assert measure.segments == segments
    assert measure.units_per_segment == per_segment
    assert measure.characters_left == left
    assert len(split_sms(text)) == segments


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("", [""]),
        ("a" * 160, ["a" * 160]),
        ("[" * 80, ["[" * 80]),
        (HINDI * 11 + "abcd", [HINDI * 11 + "abcd"]),
        ("a" * 161, ["a" * 153, "a" * 8]),
        # An extension character that ends exactly on the limit stays.
        ("a" * 151 + "[" + "b" * 10, ["a" * 151 + "[", "b" * 10]),
        # One septet short: the escape pair moves whole to the next part.
        ("a" * 152 + "[" + "b" * 10, ["a" * 152, "[" + "b" * 10]),
        ("a" * 152 + "€" + "b" * 152, ["a" * 152, "€" + "b" * 151, "b"]),
        ("अ" * 71, ["अ" * 67, "अ" * 4]),
        # A surrogate pair that ends exactly on the limit stays.
        ("अ" * 65 + EMOJI + "आ" * 5, ["अ" * 65 + EMOJI, "आ" * 5]),
        # One unit short: the pair moves whole to the next part.
        ("अ" * 66 + EMOJI + "आ" * 10, ["अ" * 66, EMOJI + "आ" * 10]),
        ("अ" * 66 + EMOJI_UNJOINED + "आ" * 10, ["अ" * 66, EMOJI_UNJOINED + "आ" * 10]),
        ("a" * 66 + EMOJI_UNJOINED + "b" * 10, ["a" * 66, EMOJI_UNJOINED + "b" * 10]),
    ],
)
def test_split_sms(text: str, parts: list[str]) -> None:
    assert split_sms(text) == parts


def _sms_texts() -> list[str]:
    rng = random.Random(23038)
    gsm = [*"abc xyz 123.\n", *"[]{}€^|~\\"]
    ucs = [*gsm, *"अआइकि्", EMOJI, EMOJI_UNJOINED]
    texts = []
    for alphabet in (gsm, ucs):
        for _ in range(150):
            texts.append("".join(rng.choices(alphabet, k=rng.randint(100, 600))))
    return texts


def test_split_sms_parts_are_full_and_never_break_a_pair() -> None:
    for text in _sms_texts():
        encoding, units = reference_measure(text)
        parts = split_sms(text)
        assert "".join(parts) == text
        measure = measure_sms(text)
        assert measure.segments == len(parts)
        assert measure.last_segment_units == length_in(parts[-1], encoding)
        if units <= (160 if encoding is GSM7 else 70):
            assert parts == [text]
            continue
        limit = 153 if encoding is GSM7 else 67
        for part, following in itertools.pairwise(parts):
            assert length_in(part, encoding) <= limit
            assert not ("\ud800" <= part[-1] <= "\udbff"), "high surrogate left at a part's end"
            # Greedy: the next indivisible piece would not have fitted.
            head = following[:2] if "\ud800" <= following[0] <= "\udbff" else following[0]
            assert length_in(part + head, encoding) > limit
        assert length_in(parts[-1], encoding) <= limit


@pytest.mark.parametrize(
    ("text", "options", "encoding", "length", "budget", "fits", "over"),
    [
        ("a" * 182, {}, GSM7, 182, 182, True, 0),
        ("a" * 183, {}, GSM7, 183, 182, False, 1),
        ("[" * 91, {}, GSM7, 182, 182, True, 0),
        ("[" * 91 + "a", {}, GSM7, 183, 182, False, 1),
        ("अ" * 80, {}, UCS2, 80, 80, True, 0),
        ("अ" * 81, {}, UCS2, 81, 80, False, 1),
        (EMOJI * 40, {}, UCS2, 80, 80, True, 0),
        (EMOJI * 40 + "a", {}, UCS2, 81, 80, False, 1),
        # One character outside GSM-7 makes the whole screen UCS-2.
        ("a" * 79 + "अ", {}, UCS2, 80, 80, True, 0),
        ("a" * 100 + "अ", {}, UCS2, 101, 80, False, 21),
        ("a" * 181 + "`", {}, UCS2, 182, 80, False, 102),
        ("अ" * 60, {"ucs2_budget": 60}, UCS2, 60, 60, True, 0),
        ("अ" * 61, {"ucs2_budget": 60}, UCS2, 61, 60, False, 1),
        ("a" * 182, {"ucs2_budget": 60}, GSM7, 182, 182, True, 0),
        ("a" * 150, {"gsm7_budget": 140}, GSM7, 150, 140, False, 10),
    ],
)
def test_measure_screen(
    text: str,
    options: dict[str, int],
    encoding: Encoding,
    length: int,
    budget: int,
    fits: bool,
    over: int,
) -> None:
    screen = measure_screen(text, **options)
    assert screen.encoding is encoding
    assert screen.length == length
    assert screen.budget == budget
    assert screen.fits is fits
    assert screen.over == over


def test_ussd_budgets() -> None:
    assert (USSD_GSM7_BUDGET, USSD_UCS2_BUDGET) == (182, 80)

"""Phone numbers (gateway/text/phone.py): read in the configured region with phonenumbers,
refused with a reason when they cannot receive an SMS, masked for logs."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from gateway.text.phone import InvalidPhoneNumber, PhoneProblem, mask_phone, normalize_phone

MOBILE = "+919812345678"

# (what was typed, region, E.164 as any valid number or the problem, ... with sms=True)
CASES: list[tuple[str, str, str | PhoneProblem, str | PhoneProblem]] = [
    # The same Indian mobile however it is written.
    ("+91 98123-45678", "IN", MOBILE, MOBILE),
    ("+919812345678", "IN", MOBILE, MOBILE),
    ("00919812345678", "IN", MOBILE, MOBILE),
    ("919812345678", "IN", MOBILE, MOBILE),
    ("09812345678", "IN", MOBILE, MOBILE),
    ("98123 45678", "IN", MOBILE, MOBILE),
    ("(98123) 45678", "IN", MOBILE, MOBILE),
    # The numbers: a Shimla landline was +1772623456, the typo Iran's +98...,
    # the toll-free number +1800112233 (a US number).
    ("0177-2623456", "IN", "+911772623456", PhoneProblem.LANDLINE),
    ("98123456789", "IN", PhoneProblem.INVALID, PhoneProblem.INVALID),
    ("1800112233", "IN", "+911800112233", PhoneProblem.TOLL_FREE),
    ("1800-180-1551", "IN", "+9118001801551", PhoneProblem.TOLL_FREE),
    ("+9198123456789", "IN", PhoneProblem.INVALID, PhoneProblem.INVALID),
    # Another country's valid numbers: inbound callbacks take them, SMS do not go there.
    ("+447911123456", "IN", "+447911123456", PhoneProblem.FOREIGN),
    ("+254711082000", "IN", "+254711082000", PhoneProblem.FOREIGN),
    ("+14155552671", "IN", "+14155552671", PhoneProblem.FOREIGN),
    # Not numbers at all.
    ("not a number", "IN", PhoneProblem.NOT_A_NUMBER, PhoneProblem.NOT_A_NUMBER),
    ("", "IN", PhoneProblem.NOT_A_NUMBER, PhoneProblem.NOT_A_NUMBER),
    ("12", "IN", PhoneProblem.INVALID, PhoneProblem.INVALID),
    # The region is the configuration's: a Kenyan gateway reads national numbers as Kenyan.
    ("0711 082000", "KE", "+254711082000", "+254711082000"),
    ("9812345678", "KE", PhoneProblem.INVALID, PhoneProblem.INVALID),
    (MOBILE, "KE", MOBILE, PhoneProblem.FOREIGN),
    ("09098765432", "GB", "+449098765432", PhoneProblem.PREMIUM_RATE),
    ("+1 415 555 2671", "US", "+14155552671", "+14155552671"),  # fixed line or mobile
]


@pytest.mark.parametrize(("raw", "region", "any_valid", "for_sms"), CASES)
def test_numbers_are_read_in_the_region_and_refused_for_sms_with_a_reason(
    raw: str, region: str, any_valid: str | PhoneProblem, for_sms: str | PhoneProblem
) -> None:
    for sms, expected in ((False, any_valid), (True, for_sms)):
        if isinstance(expected, PhoneProblem):
            with pytest.raises(InvalidPhoneNumber) as refused:
                normalize_phone(raw, region=region, sms=sms)
            assert refused.value.problem is expected, (raw, sms)
        else:
            assert normalize_phone(raw, region=region, sms=sms) == expected, (raw, sms)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0177-2623456", "a landline: cannot receive SMS"),
        ("98123456789", "not a valid number for IN"),
        ("1800112233", "toll-free: cannot receive SMS"),
        ("+447911123456", "SMS go to IN numbers only"),
    ],
)
def test_a_refusal_says_why_and_shows_the_number_masked(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as refused:
        normalize_phone(raw, region="IN", sms=True)
    assert reason in refused.value.reason
    assert raw not in str(refused.value) and raw[-4:] in str(refused.value)


@pytest.mark.parametrize(
    ("region", "prefixes"),
    [
        ("IN", "6789"),
        ("IN", "12345"),
        ("KE", "17"),
        ("US", "12345689"),
        ("RU", "3489"),
        ("GB", "1237"),
        ("IT", "0123"),
        ("DE", "1"),
    ],
)
def test_the_fast_path_agrees_with_phonenumbers(region: str, prefixes: str) -> None:
    """normalize_phone builds E.164 numbers of the region's own country directly (the fast
    path); its answer must be the one phonenumbers.parse leads to."""
    rng = random.Random(f"{region}{prefixes}")
    code = phonenumbers.country_code_for_region(region)
    for _ in range(3000):
        national = rng.choice(prefixes) + "".join(
            rng.choice("0123456789") for _ in range(rng.randint(5, 11))
        )
        raw = f"+{code}{national}"
        number = phonenumbers.parse(raw, region)
        kind = phonenumbers.number_type(number)
        try:
            got: str | PhoneProblem = normalize_phone(raw, region=region, sms=True)
        except InvalidPhoneNumber as e:
            got = e.problem
        if kind == phonenumbers.PhoneNumberType.UNKNOWN:
            assert got is PhoneProblem.INVALID, raw
        elif kind in (
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        ):
            assert got == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        else:
            assert isinstance(got, PhoneProblem) and got is not PhoneProblem.INVALID, raw


def test_masking_keeps_the_country_code_and_the_last_four_digits() -> None:
    assert mask_phone(MOBILE) == "+91******5678"
    assert mask_phone(None) == "-"
    assert mask_phone("12345") == "*****"


def test_a_provider_request_takes_a_stored_e164_number_as_it_is() -> None:
    """The outbox's numbers were checked when they came in; others are normalised."""
    from gateway.text.phone import as_sent

    assert as_sent("+919812345678", region="IN") == "+919812345678"
    assert as_sent("098123 45678", region="IN") == "+919812345678"
    with pytest.raises(InvalidPhoneNumber):
        as_sent("12", region="IN")

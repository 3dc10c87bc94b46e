"""Understanding citizens' and officers' SMS replies in Hindi, Hinglish and English (every
other language's words: tests/test_reply_words.py)."""

from __future__ import annotations

import random
import time
import unicodedata

import pytest

from gateway.text.replies import Intent, Understood
from gateway.text.reply_words import Vocabulary
from tests.conftest import ROOT

# Every shipped language's words, read with no language first (as for a sender the gateway
# does not know): Hindi's and English's words are everyone's.
WORDS = Vocabulary.load(ROOT / "locales", [p.name for p in (ROOT / "locales").iterdir()])
understand = WORDS.understand

T = "436805396"  # tickets are not validated here, so any digits do
T13 = "1234567890123"
T6 = "436805"

SOLVED = Understood(Intent.SOLVED)
NOT_SOLVED = Understood(Intent.NOT_SOLVED)
STATUS = Understood(Intent.STATUS)
HELP = Understood(Intent.HELP)
EMPTY = Understood(Intent.EMPTY)
UNKNOWN = Understood(Intent.UNKNOWN)


def solved(ticket: str) -> Understood:
    return Understood(Intent.SOLVED, ticket)


def not_solved(ticket: str) -> Understood:
    return Understood(Intent.NOT_SOLVED, ticket)


def status(ticket: str) -> Understood:
    return Understood(Intent.STATUS, ticket)


def done(ticket: str, remark: str | None) -> Understood:
    return Understood(Intent.OFFICER_DONE, ticket, remark)


def note(ticket: str, remark: str) -> Understood:
    return Understood(Intent.OFFICER_NOTE, ticket, remark)


CASES: list[tuple[str, Understood]] = [
    # --- yes, every word, as typed
    ("1", SOLVED),
    ("yes", SOLVED),
    ("Yes", SOLVED),
    ("YES!!!", SOLVED),
    ("y", SOLVED),
    ("Y", SOLVED),
    ("yeah", SOLVED),
    ("ok", SOLVED),
    ("OK.", SOLVED),
    ("haan", SOLVED),
    ("Haan!!", SOLVED),
    ("HAAN", SOLVED),
    ("han", SOLVED),
    ("haa", SOLVED),
    ("ha", SOLVED),
    ("hanji", SOLVED),
    ("Haan ji", SOLVED),
    ("haan, ji", SOLVED),
    ("Ji haan", SOLVED),
    ("ji", SOLVED),
    ("Ji.", SOLVED),
    ("theek", SOLVED),
    ("Thik", SOLVED),
    ("solved", SOLVED),
    ("Solved!", SOLVED),
    ("हाँ", SOLVED),
    ("हां", SOLVED),
    ("हा", SOLVED),
    ("हाँ जी", SOLVED),
    ("जी हाँ", SOLVED),
    ("जी", SOLVED),
    ("ठीक", SOLVED),
    ("ठीक है", SOLVED),
    ("ठीक है।", SOLVED),
    ("  1. ", SOLVED),
    ("1)", SOLVED),
    ('"1"', SOLVED),
    ("१", SOLVED),
    ("1️⃣", SOLVED),  # keycap emoji
    ("Haaaan", SOLVED),  # stretched letters
    ("yes sir", SOLVED),
    ("haan ji sir", SOLVED),
    ("ho gaya", SOLVED),
    ("हो गया", SOLVED),
    ("ह\u093e\u0901", SOLVED),  # हाँ typed as separate code points
    # --- no, every word
    ("2", NOT_SOLVED),
    ("'2'", NOT_SOLVED),
    ("२", NOT_SOLVED),
    ("no", NOT_SOLVED),
    ("No.", NOT_SOLVED),
    ("n", NOT_SOLVED),
    ("N", NOT_SOLVED),
    ("nahi", NOT_SOLVED),
    ("NAHI.", NOT_SOLVED),
    ("Nahin", NOT_SOLVED),
    ("nahi hua", NOT_SOLVED),
    ("Nahi hua sir", NOT_SOLVED),
    ("nhi", NOT_SOLVED),
    ("nai", NOT_SOLVED),
    ("na", NOT_SOLVED),
    ("not solved", NOT_SOLVED),
    ("NOT SOLVED!!", NOT_SOLVED),
    ("नहीं", NOT_SOLVED),
    ("नही", NOT_SOLVED),
    ("ना", NOT_SOLVED),
    ("नहीं हुआ", NOT_SOLVED),
    ("नहीं जी", NOT_SOLVED),  # जी is politeness here, not a yes
    ("nahi ji", NOT_SOLVED),
    ("ji nahi", NOT_SOLVED),
    ("nooo", NOT_SOLVED),
    ("nahiii", NOT_SOLVED),
    ("No sir, 2", NOT_SOLVED),
    ("ma'am 2", NOT_SOLVED),
    # --- answers with a ticket, before or after, grouped any way
    (f"1 {T}", solved(T)),
    (f"{T} 1", solved(T)),
    (f"{T} 2", not_solved(T)),
    (f"2 {T}", not_solved(T)),
    ("haan 436-805-396", solved(T)),
    ("1 436 805 396", solved(T)),
    ("436 805 396 2", not_solved(T)),
    ("436805396-2", not_solved(T)),
    ("1. 436805396", solved(T)),
    ("nahi, ticket 436805396", UNKNOWN),  # "ticket" is not an answer word
    (f"नहीं {T}", not_solved(T)),
    ("हाँ ४३६८०५३९६", solved(T)),
    ("२ ४३६-८०५-३९६", not_solved(T)),
    (f"ji {T}", solved(T)),
    (f"Nahi hua {T}", not_solved(T)),
    (f"{T} {T} haan", solved(T)),  # the same ticket twice is one ticket
    (f"{T} 436805397 1", UNKNOWN),  # which ticket?
    # --- ambiguous: both answers, or another number
    ("1 2", UNKNOWN),
    ("12", UNKNOWN),
    ("3", UNKNOWN),
    ("0", UNKNOWN),
    ("haan nahi", UNKNOWN),
    ("yes no", UNKNOWN),
    ("हाँ नहीं", UNKNOWN),
    ("1 nahi", UNKNOWN),
    ("2 yes", UNKNOWN),
    ("theek nahi", UNKNOWN),
    (f"1 {T} 2", UNKNOWN),
    (f"{T} 12", UNKNOWN),
    ("1 436", UNKNOWN),
    # --- "ok" is an answer only alone
    ("ok sir", UNKNOWN),
    ("ok 1", SOLVED),
    ("Ok, nahi", NOT_SOLVED),
    (f"ok {T}", status(T)),
    # --- sentences are not answers, however they sound
    ("paani abhi bhi nahi aa raha", UNKNOWN),
    ("haan ji bilkul theek hai", UNKNOWN),
    ("haan ji theek hai sir", UNKNOWN),  # every word an answer word, but five of them
    ("nahi nahi nahi nahi", UNKNOWN),
    (f"haan ji sir {T}", solved(T)),  # three words besides the ticket
    ("no problem", UNKNOWN),
    ("problem solved", UNKNOWN),
    ("Thanks", UNKNOWN),
    ("thank you", UNKNOWN),
    ("1st", UNKNOWN),
    ("haha", UNKNOWN),
    ("yes but the road is still broken", UNKNOWN),
    ("सड़क अभी भी टूटी हुई है", UNKNOWN),
    # --- status
    (T, status(T)),
    (f"  {T}  ", status(T)),
    ("436 805 396", status(T)),
    ("436-805-396", status(T)),
    ("४३६८०५३९६", status(T)),
    (T13, status(T13)),
    (T6, status(T6)),
    ("43680", UNKNOWN),  # 5 digits: not a ticket
    ("12345678901234", UNKNOWN),  # 14 digits: not a ticket
    (f"{T} please", status(T)),
    (f"STATUS {T}", status(T)),
    (f"status {T}", status(T)),
    (f"Status: {T}", status(T)),
    (f"STATUS{T}", status(T)),
    (f"{T} STATUS", status(T)),
    ("STATUS", STATUS),
    ("status?", STATUS),
    (f"STHITI {T}", status(T)),
    (f"sthiti {T}", status(T)),
    (f"स्थिति {T}", status(T)),
    ("स्थिति ४३६ ८०५ ३९६", status(T)),
    (f"{T} ki sthiti", status(T)),
    (f"status of my complaint {T} please", status(T)),
    ("2 status", STATUS),
    (f"STATUS {T} 436805397", STATUS),  # two tickets: ask which
    ("mera status kya hai", UNKNOWN),  # keyword neither first nor in a short message
    ("statuses", UNKNOWN),
    # --- help
    ("HELP", HELP),
    ("help", HELP),
    ("Help!", HELP),
    ("madad", HELP),
    ("MADAD", HELP),
    ("मदद", HELP),
    ("मदद चाहिए", HELP),
    ("sahayata", HELP),
    ("सहायता", HELP),
    ("?", HELP),
    (" ?? ", HELP),
    ("？", HELP),
    ("help me please my water supply is not coming", HELP),
    ("thanks for the help 1", UNKNOWN),  # keyword neither first nor in a short message
    ("helpline", UNKNOWN),
    # --- officers: done
    (f"{T} DONE pipe replaced", done(T, "pipe replaced")),
    (f"DONE {T} pipe replaced", done(T, "pipe replaced")),
    (f"{T} done Pipe Replaced, JE visited", done(T, "Pipe Replaced, JE visited")),
    (f"Done {T}: Handpump  repaired\nby   JE", done(T, "Handpump repaired by JE")),
    (f"DONE - {T} - road patched", done(T, "road patched")),
    ("DONE 436-805-396 road patched", done(T, "road patched")),
    ("436 805 396 DONE", done(T, None)),
    (f"{T} DONE", done(T, None)),
    (f"DONE {T}", done(T, None)),
    (f"DONE {T} 2 pipes replaced", done(T, "2 pipes replaced")),
    (f"{T} NIPTA naya transformer laga diya", done(T, "naya transformer laga diya")),
    (f"{T} निपटा पाइप बदल दिया गया", done(T, "पाइप बदल दिया गया")),
    (f"निपटा {T} नाली साफ़ कर दी गई", done(T, "नाली साफ़ कर दी गई")),
    ("४३६८०५३९६ निपटा वार्ड ४ में काम पूरा", done(T, "वार्ड ४ में काम पूरा")),
    ("DONE", UNKNOWN),  # no ticket
    ("done", UNKNOWN),
    ("DONE pipe replaced", UNKNOWN),
    (f"DONE pipe replaced {T}", UNKNOWN),
    ("DONE 43680 fixed", UNKNOWN),  # 5 digits: not a ticket
    ("DONEE 436805396", UNKNOWN),
    # --- officers: note
    (f"{T} NOTE JE will visit tomorrow", note(T, "JE will visit tomorrow")),
    (f"NOTE {T} JE will visit tomorrow", note(T, "JE will visit tomorrow")),
    (f'note {T} "material awaited"', note(T, '"material awaited"')),
    (f"{T} NOTE: ठेकेदार को सूचना दी गई", note(T, "ठेकेदार को सूचना दी गई")),
    (f"{T} NOTE Jose\u0301 visited", note(T, "Jos\u00e9 visited")),  # NFC
    (f"NOTE {T}", UNKNOWN),  # a note says something
    ("NOTE JE will visit", UNKNOWN),
    (f"{T} NOTES", UNKNOWN),
    # --- empty
    ("", EMPTY),
    ("   ", EMPTY),
    ("\n\t \r\n", EMPTY),
    ("...", EMPTY),
    ("!!!", EMPTY),
    ("'\"", EMPTY),
    ("।", EMPTY),
    ("\u200d\u200c", EMPTY),
    # --- other scripts, emoji, noise
    ("👍", UNKNOWN),
    ("🙏🙏", UNKNOWN),
    ("Haan 👍", SOLVED),
    ("🙏 nahi 🙏", NOT_SOLVED),
    ("சரி", SOLVED),  # Tamil "all right", alone: a yes (tests/test_reply_words.py)
    ("௧", SOLVED),  # Tamil digit one: every script's digits are read
    ("۲", NOT_SOLVED),  # Extended Arabic-Indic two (Urdu)
    ("نعم", UNKNOWN),  # Arabic: no configured language's word
    ("হ্যাঁ", SOLVED),  # Bengali
    ("是的", UNKNOWN),
    ("\x00", EMPTY),
    ("yes\x00", SOLVED),
    ("a" * 1000, UNKNOWN),
    ("haan " * 300, UNKNOWN),
    ("1" + " " * 1500, SOLVED),
    ("nahi " + "." * 2000, NOT_SOLVED),
    ("1" * 1000, UNKNOWN),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[repr(text)[:40] for text, _ in CASES])
def test_understand(text: str, expected: Understood) -> None:
    assert understand(text) == expected


YES_WORDS = [
    *"1 yes y yeah haan han haa ha hanji theek thik solved हाँ हां हा जी ठीक".split(),
    *["haan ji", "ji haan", "ji", "ठीक है", "हाँ जी", "जी हाँ"],
]
NO_WORDS = [
    *"2 no n nahi nahin nhi nai na नहीं नही ना".split(),
    *["nahi hua", "not solved", "नहीं हुआ"],
]


@pytest.mark.parametrize("word", YES_WORDS)
def test_every_yes_word_in_every_position(word: str) -> None:
    assert understand(word) == SOLVED
    assert understand(f"{word.upper()}!!") == SOLVED
    assert understand(f"{word} {T}") == solved(T)
    assert understand(f"{T}, {word}.") == solved(T)
    # Alone, "ji" is a yes; next to another answer it is only politeness.
    soft = word in ("ji", "जी")
    assert understand(f"{word} 2") == (NOT_SOLVED if soft else UNKNOWN)


@pytest.mark.parametrize("word", NO_WORDS)
def test_every_no_word_in_every_position(word: str) -> None:
    assert understand(word) == NOT_SOLVED
    assert understand(f"{word.title()}.") == NOT_SOLVED
    assert understand(f"{word} 436 805 396") == not_solved(T)
    assert understand(f"{T} - {word}") == not_solved(T)
    assert understand(f"1 {word}") == UNKNOWN


def test_remark_is_cut_at_500_characters() -> None:
    remark = "Pipe Replaced " * 100
    result = understand(f"{T} DONE {remark}")
    assert result.intent is Intent.OFFICER_DONE
    assert result.remark is not None
    assert result.remark == remark[:500]
    assert len(result.remark) == 500


def test_remark_cut_keeps_vowel_signs_with_their_letter() -> None:
    result = understand(f"{T} NOTE {'a' * 499}कि")
    # Cutting at 500 would leave क without its ि.
    assert result.remark == "a" * 499


def test_remark_drops_control_characters() -> None:
    assert understand(f"{T} DONE pipe\x00 fixed\x07") == done(T, "pipe fixed")


def test_devanagari_digits_in_the_remark_stay_as_typed() -> None:
    assert understand(f"{T} DONE वार्ड ४") == done(T, "वार्ड ४")


def _random_text(rng: random.Random) -> str:
    pieces = [
        T, "436 805", "-", ".", " ", "  ", "1", "2", "३", "haan", "nahi", "ji", "ok", "DONE",
        "NOTE", "निपटा", "STATUS", "स्थिति", "help", "?", "'", "\u200d", "\ufe0f", "\u20e3",
        "\u0901", "😀", "🙏🏽", "\ud83d", "\x00", "\n", "ि", "ß", "ﬁ", "İ",
    ]  # fmt: skip
    parts: list[str] = []
    for _ in range(rng.randint(0, 12)):
        roll = rng.random()
        if roll < 0.4:
            parts.append(rng.choice(pieces))
        elif roll < 0.7:
            parts.append(chr(rng.randint(0, 0x10FFFF)))  # surrogates included
        else:
            parts.append(chr(rng.randint(0x20, 0x3000)))
    return "".join(parts)


def test_never_raises_and_keeps_its_promises_on_random_text() -> None:
    rng = random.Random(20240611)
    texts = [_random_text(rng) for _ in range(4000)]
    texts += ["".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(1200)) for _ in range(20)]
    for text in texts:
        result = understand(text)
        assert isinstance(result.intent, Intent)
        assert understand(f" \n{text}\t ") == result, ascii(text)
        if result.ticket is not None:
            assert result.ticket.isascii() and result.ticket.isdigit()
            assert 6 <= len(result.ticket) <= 13
            ascii_digits = "".join(
                str(unicodedata.decimal(c)) if unicodedata.category(c) == "Nd" else c for c in text
            )
            assert result.ticket in "".join(c for c in ascii_digits if "0" <= c <= "9")
        if result.intent in (Intent.OFFICER_DONE, Intent.OFFICER_NOTE):
            assert result.ticket is not None
        if result.remark is not None:
            assert result.intent in (Intent.OFFICER_DONE, Intent.OFFICER_NOTE)
            assert 0 < len(result.remark) <= 500
            assert result.remark == " ".join(result.remark.split())
            assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in result.remark)
        if result.intent in (Intent.EMPTY, Intent.UNKNOWN, Intent.HELP):
            assert result.ticket is None and result.remark is None


@pytest.mark.parametrize(
    "text",
    [
        "'" * 200_000,
        "1 " * 100_000,
        "1-" * 100_000,
        "- " * 100_000,
        "\u200d" * 200_000,
        "ह" + "\u0901" * 200_000,
        f"{T} DONE " + "क्ष " * 50_000,
        "haaaan" * 50_000,
    ],
    ids=lambda text: ascii(text[:8]),
)
def test_long_pathological_text_takes_linear_time(text: str) -> None:
    started = time.perf_counter()
    understand(text)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "436805396 TRANSFER pwd road not water",
            Understood(Intent.OFFICER_TRANSFER, "436805396", "pwd road not water"),
        ),
        (
            "transfer 436805396 Mashobra",
            Understood(Intent.OFFICER_TRANSFER, "436805396", "Mashobra"),
        ),
        ("436805396 TRANSFER", Understood(Intent.UNKNOWN)),
        ("TRANSFER pwd", Understood(Intent.UNKNOWN)),
    ],
)
def test_officer_transfer(text: str, expected: Understood) -> None:
    assert understand(text) == expected

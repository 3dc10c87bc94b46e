"""What a citizen's or an officer's SMS reply means.

Citizens answer the gateway from basic phones in their own language, in its script or in
Latin letters, and in English ("1", "Haan ji!", "நன்றி, ஆம்", "avunu", "436805396 2",
"STATUS 436805396"); officers close or annotate a complaint with "<ticket> DONE <remark>" or
"<ticket> NOTE <remark>". :func:`understand` reads one such text. It never raises for any
``str`` and, when it is not sure, answers ``Intent.UNKNOWN`` rather than guess: only short
answers count as yes or no, and a text saying both is not an answer.

The words of each language (yes, no, status, help, courtesies) are not here: they live in
the locale data (``locales/<lang>/replies.yaml``, read by :mod:`gateway.text.reply_words`)
and reach :func:`understand` as a :class:`Lexicon`, which reads a word as the citizen's own
language does first. What stays here is what no language changes: the digits 1 and 2, "?",
and the officers' commands (the state's working language).

Tickets are extracted, not validated: a run of 6 to 13 digits (of any script: Devanagari,
Bengali, Tamil, Arabic-Indic ..., possibly grouped with spaces, dashes or dots) is taken for
a ticket here; ``TicketCodec.parse`` decides whether it is one. Whether the sender of an
officer command is an officer is the caller's question too.
"""

from __future__ import annotations

import enum
import functools
import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = ["Intent", "Lexicon", "Sense", "Understood", "ascii_digits", "phrase", "understand"]


class Intent(enum.StrEnum):
    """What a reply asks for or answers."""

    SOLVED = "solved"  # answer 1 to "Reply 1 if your problem is solved, 2 if it is not"
    NOT_SOLVED = "not_solved"  # answer 2
    STATUS = "status"  # STATUS <ticket> / STHITI <ticket> / स्थिति <ticket>, or a bare ticket
    HELP = "help"  # HELP / MADAD / मदद / SAHAYATA / सहायता / ?
    OFFICER_DONE = "officer_done"  # <ticket> DONE <remark>, DONE <ticket> <remark>, NIPTA/निपटा
    OFFICER_NOTE = "officer_note"  # <ticket> NOTE <remark>, NOTE <ticket> <remark>
    OFFICER_TRANSFER = "officer_transfer"  # <ticket> TRANSFER <department or block> [remark]
    EMPTY = "empty"  # nothing but whitespace and punctuation
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Understood:
    """The meaning of one reply.

    ``ticket`` is the ticket's digits as typed (ASCII, separators dropped, not validated); it is
    set for SOLVED, NOT_SOLVED and STATUS when the text holds one ticket, and always for the
    officer intents. ``remark`` is an officer's remark in its original case, whitespace
    collapsed, at most 500 characters; None when there is none.
    """

    intent: Intent
    ticket: str | None = None
    remark: str | None = None


_TICKET_MIN_DIGITS: Final = 6
_TICKET_MAX_DIGITS: Final = 13
_MAX_ANSWER_WORDS: Final = 3
_MAX_REMARK_CHARS: Final = 500

# Every character is reduced to one of these classes. Tokens are then found in the string of
# classes, which has the text's length, so their offsets point into the text itself and an
# officer's remark can be cut from what was typed.
_DIGIT: Final = "0"  # ASCII, once every script's decimal digits are translated
_LETTER: Final = "a"  # letters, combining marks, other numerals (superscripts, fractions)
_JOINER: Final = "j"  # invisible inside a word: ZWJ/ZWNJ, variation selectors, keycap marks
_SPACE: Final = " "
_DASH: Final = "-"  # dashes and dots, which may group a ticket's digits
_APOSTROPHE: Final = "'"
_QUESTION: Final = "?"
_SYMBOL: Final = "*"  # emoji and other non-ASCII symbols: a message, though not understood
_PUNCT: Final = ","  # the rest: punctuation, ASCII symbols, control characters

_DASHES: Final = frozenset("-.\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff0d")
_APOSTROPHES: Final = frozenset("'\u2019\u02bc")
_QUESTION_MARKS: Final = frozenset("?\uff1f")
_TOKEN: Final = re.compile(r"0+|[aj']+")


@functools.lru_cache(maxsize=4096)
def _classify(char: str) -> str:
    if "0" <= char <= "9":
        return _DIGIT
    if char in _DASHES:
        return _DASH
    if char in _APOSTROPHES:
        return _APOSTROPHE
    if char in _QUESTION_MARKS:
        return _QUESTION
    if char.isspace() or char == "\u200b":
        return _SPACE
    if "\ufe00" <= char <= "\ufe0f" or "\U000e0100" <= char <= "\U000e01ef":
        return _JOINER
    category = unicodedata.category(char)
    # Enclosing marks: the keycap of "1️⃣" must not turn the 1 into a word.
    if category in ("Cf", "Me"):
        return _JOINER
    if category[0] in "LMN":
        return _LETTER
    # Python 3.11's Unicode 14 calls recent emoji unassigned (Cn).
    if category in ("Cn", "Co", "Cs") or (category[0] == "S" and not char.isascii()):
        return _SYMBOL
    return _PUNCT


class Sense(enum.Enum):
    """What a word or phrase means in a reply (a :class:`Lexicon` says which means what)."""

    YES = enum.auto()
    NO = enum.auto()
    SOFT_YES = enum.auto()  # "ji": yes alone, mere politeness next to another answer
    OK = enum.auto()  # "ok": yes only as the whole message, else an acknowledgement
    COURTESY = enum.auto()  # "sir", "please", "hai": allowed around an answer, not one
    STATUS = enum.auto()  # a keyword asking for a complaint's status
    HELP = enum.auto()  # a keyword asking how to use the service


class Lexicon(Protocol):
    """The words replies are read with, each phrase as :func:`phrase` makes it."""

    @property
    def longest_phrase(self) -> int:
        """The most words a phrase of this lexicon has."""
        ...

    def sense(self, words: tuple[str, ...], language: str | None) -> Sense | None:
        """What ``words`` mean from a citizen whose language is ``language``; None when
        they mean nothing to the lexicon (or something else in that language)."""
        ...

    def canonical(self, word: str) -> str:
        """The known word ``word`` is, allowing for stretched letters ("haaan", "illaiii");
        ``word`` itself when it is none."""
        ...


_ANSWERS: Final = frozenset({Sense.YES, Sense.NO, Sense.SOFT_YES, Sense.OK, Sense.COURTESY})
_KEYWORDS: Final = {Sense.STATUS: Intent.STATUS, Sense.HELP: Intent.HELP}
# The feedback question asks for 1 or 2, whatever the language.
_DIGIT_SENSES: Final[dict[tuple[str, ...], Sense]] = {("1",): Sense.YES, ("2",): Sense.NO}
_COMMANDS: Final[dict[str, Intent]] = {
    **dict.fromkeys(("done", "nipta", "निपटा"), Intent.OFFICER_DONE),
    "note": Intent.OFFICER_NOTE,
    **dict.fromkeys(("transfer", "bhejo", "भेजो"), Intent.OFFICER_TRANSFER),
}
# Separators an officer may put between the command and the remark ("DONE: ...", "NOTE - ...").
_REMARK_LEAD: Final = " :;,.|/=>#*~…।\ufeff" + "".join(_DASHES)


@dataclass(frozen=True, slots=True)
class _Token:
    text: str  # a casefolded word, or ASCII digits
    is_number: bool
    start: int
    end: int


def _is_ticket_length(digits: int) -> bool:
    return _TICKET_MIN_DIGITS <= digits <= _TICKET_MAX_DIGITS


def _is_ticket(token: _Token) -> bool:
    return token.is_number and _is_ticket_length(len(token.text))


def ascii_digits(text: str) -> str:
    """``text`` with every decimal digit of any script (Devanagari ४, Bengali ৪, Tamil ௪,
    Arabic-Indic ٤, Extended Arabic-Indic ۴ ...) written as its ASCII digit; same length."""
    if text.isascii():
        return text
    return "".join(_ascii_digit(c) for c in text)


@functools.lru_cache(maxsize=4096)
def _ascii_digit(char: str) -> str:
    if char.isascii() or unicodedata.category(char) != "Nd":
        return char
    return str(unicodedata.decimal(char))


def _words(text: str, classes: str) -> list[tuple[str, int, int]]:
    """Each word and run of digits of ``text`` (digits already ASCII), with its offsets:
    a word casefolded, with joiners and apostrophes dropped."""
    found: list[tuple[str, int, int]] = []
    for match in _TOKEN.finditer(classes):
        start, end = match.span()
        if classes[start] == _DIGIT:
            found.append((text[start:end], start, end))
            continue
        word = "".join(
            c for c, k in zip(text[start:end], classes[start:end], strict=True) if k == _LETTER
        )
        if word:
            found.append((word.casefold(), start, end))
    return found


def phrase(text: str) -> tuple[str, ...]:
    """The words of ``text`` as replies are read (NFC, casefolded, digits ASCII, joiners and
    punctuation dropped): how a :class:`Lexicon` must key its phrases."""
    normal = ascii_digits(unicodedata.normalize("NFC", text))
    return tuple(word for word, _, _ in _words(normal, "".join(map(_classify, normal))))


def _tokens(text: str, classes: str, lexicon: Lexicon) -> list[_Token]:
    tokens = [
        _Token(word, True, start, end)
        if word.isdigit()
        else _Token(lexicon.canonical(word), False, start, end)
        for word, start, end in _words(text, classes)
    ]
    return _group_digits(tokens, classes)


def _group_digits(tokens: Sequence[_Token], classes: str) -> list[_Token]:
    """Tokens with neighbouring digit groups ("436 805 396", "436-805-396") joined."""
    grouped: list[_Token] = []
    run: list[_Token] = []
    for token in tokens:
        if run and token.is_number:
            gap = classes[run[-1].end : token.start].strip(_SPACE + _JOINER)
            if gap in ("", _DASH):
                run.append(token)
                continue
        grouped.extend(_split_run(run, classes))
        run = []
        if token.is_number:
            run.append(token)
        else:
            grouped.append(token)
    grouped.extend(_split_run(run, classes))
    return grouped


def _joined(groups: Sequence[_Token]) -> _Token:
    digits = "".join(group.text for group in groups)
    return _Token(digits, True, groups[0].start, groups[-1].end)


def _digit_count(groups: Sequence[_Token]) -> int:
    return sum(len(group.text) for group in groups)


def _split_run(run: Sequence[_Token], classes: str) -> list[_Token]:
    if len(run) < 2:
        return list(run)
    # A group long enough to be a ticket by itself is one: "436805396 2", "1 436805396".
    # Only a bare dash or dot ("436805-396") says the writer meant the groups as one number.
    segments: list[list[_Token]] = [[run[0]]]
    for before, after in itertools.pairwise(run):
        spaced = classes[before.end : after.start] != _DASH
        if spaced and _is_ticket_length(max(len(before.text), len(after.text))):
            segments.append([after])
        else:
            segments[-1].append(after)
    result: list[_Token] = []
    for segment in segments:
        # A 1 or 2 at either end of grouped digits is the answer: "1 436 805 396".
        head = tail = None
        if len(segment) > 1 and segment[0].text in ("1", "2"):
            if _is_ticket_length(_digit_count(segment[1:])):
                head, segment = segment[0], segment[1:]
        if len(segment) > 1 and segment[-1].text in ("1", "2"):
            if _is_ticket_length(_digit_count(segment[:-1])):
                segment, tail = segment[:-1], segment[-1]
        if len(segment) > 1 and _is_ticket_length(_digit_count(segment)):
            segment = [_joined(segment)]
        result.extend(t for t in (head, *segment, tail) if t is not None)
    return result


def _remark(raw: str) -> str | None:
    # Control characters (NUL above all) and lone surrogates cannot be stored as text.
    printable = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in raw)
    remark = " ".join(printable.split()).lstrip(_REMARK_LEAD)
    if len(remark) > _MAX_REMARK_CHARS:
        cut = _MAX_REMARK_CHARS
        # Never separate a letter from its vowel sign or other combining mark.
        while cut > 0 and unicodedata.category(remark[cut])[0] == "M":
            cut -= 1
        remark = remark[: cut or _MAX_REMARK_CHARS].rstrip()
    return remark or None


def _officer_command(tokens: Sequence[_Token], text: str) -> Understood | None:
    first = tokens[0]
    second = tokens[1] if len(tokens) > 1 else None
    if second is not None and _is_ticket(first) and second.text in _COMMANDS:
        ticket, command = first, second
    elif not first.is_number and first.text in _COMMANDS:
        if second is None or not _is_ticket(second):
            return Understood(Intent.UNKNOWN)
        command, ticket = first, second
    else:
        return None
    intent = _COMMANDS[command.text]
    remark = _remark(text[max(ticket.end, command.end) :])
    if intent in (Intent.OFFICER_NOTE, Intent.OFFICER_TRANSFER) and remark is None:
        return Understood(Intent.UNKNOWN)
    return Understood(intent, ticket.text, remark)


def _sense(words: tuple[str, ...], lexicon: Lexicon, language: str | None) -> Sense | None:
    return _DIGIT_SENSES.get(words) or lexicon.sense(words, language)


def _senses(words: Sequence[str], lexicon: Lexicon, language: str | None) -> list[Sense] | None:
    """The sense of each word or phrase in ``words``; None if any is not an answer word."""
    senses: list[Sense] = []
    index = 0
    while index < len(words):
        for size in range(min(lexicon.longest_phrase, len(words) - index), 0, -1):
            sense = _sense(tuple(words[index : index + size]), lexicon, language)
            if sense in _ANSWERS:
                senses.append(sense)
                index += size
                break
        else:
            return None
    return senses


def _short_answer(
    words: Sequence[_Token], tickets: frozenset[str], lexicon: Lexicon, language: str | None
) -> Understood | None:
    if len(words) > _MAX_ANSWER_WORDS or len(tickets) > 1:
        return None
    senses = _senses([word.text for word in words], lexicon, language)
    if senses is None:
        return None
    ticket = next(iter(tickets), None)
    answers = {sense for sense in senses if sense in (Sense.YES, Sense.NO)}
    if answers == {Sense.YES}:
        return Understood(Intent.SOLVED, ticket)
    if answers == {Sense.NO}:
        return Understood(Intent.NOT_SOLVED, ticket)
    if answers:
        return Understood(Intent.UNKNOWN)
    if Sense.SOFT_YES in senses or (senses and ticket is None and set(senses) == {Sense.OK}):
        return Understood(Intent.SOLVED, ticket)
    if ticket is not None:
        # A ticket sent alone (perhaps with a "please") asks about that ticket.
        return Understood(Intent.STATUS, ticket)
    return None


def _keyword(
    words: Sequence[_Token], tickets: frozenset[str], lexicon: Lexicon, language: str | None
) -> Understood | None:
    for index, word in enumerate(words):
        sense = None if word.is_number else lexicon.sense((word.text,), language)
        intent = _KEYWORDS.get(sense) if sense is not None else None
        # A keyword opens a message; inside a short one it is still a request, inside a long
        # one it is more likely part of a sentence ("thanks for the help").
        if intent is not None and (index == 0 or len(words) <= _MAX_ANSWER_WORDS):
            if intent is Intent.STATUS and len(tickets) == 1:
                return Understood(intent, next(iter(tickets)))
            return Understood(intent)
    return None


def understand(text: str, lexicon: Lexicon, *, language: str | None = None) -> Understood:
    """What ``text``, one SMS or USSD reply, means; Intent.UNKNOWN when that is not clear.

    ``lexicon`` gives the words, read as ``language`` (the citizen's) reads them first.
    Recognised, after NFC normalisation, case folding and every script's digits made ASCII,
    punctuation and emoji ignored:

    * an officer command, ``<ticket> DONE|NIPTA|निपटा|NOTE <remark>`` or the keyword first;
      without a ticket, or NOTE without a remark, it is UNKNOWN;
    * a short answer, at most three words besides a ticket: yes ("1", "haan ji", "ஆம்", "ok"
      alone) is SOLVED, no ("2", "nahi hua", "இல்லை", "illai") NOT_SOLVED, both at once
      UNKNOWN;
    * a ticket alone, or with only courtesies ("sir", "please"), is STATUS for that ticket;
    * a status keyword (STATUS, STHITI, நிலை ...) or a help keyword (HELP, MADAD, உதவி ...)
      as the first word or within a short message, and "?" alone;
    * nothing but whitespace and punctuation is EMPTY.
    """
    original = unicodedata.normalize("NFC", text)
    digits_ascii = ascii_digits(original)
    classes = "".join(map(_classify, digits_ascii))
    tokens = _tokens(digits_ascii, classes, lexicon)
    if not tokens:
        if _QUESTION in classes:
            return Understood(Intent.HELP)
        if _SYMBOL in classes:
            return Understood(Intent.UNKNOWN)
        return Understood(Intent.EMPTY)
    command = _officer_command(tokens, original)
    if command is not None:
        return command
    tickets = frozenset(token.text for token in tokens if _is_ticket(token))
    words = [token for token in tokens if not _is_ticket(token)]
    return (
        _short_answer(words, tickets, lexicon, language)
        or _keyword(words, tickets, lexicon, language)
        or Understood(Intent.UNKNOWN)
    )

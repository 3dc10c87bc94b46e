"""The words citizens reply with, per language: ``locales/<lang>/replies.yaml``.

A translator gives a language's words there, in its script and in the Latin spellings people
type, without touching Python::

    yes: [ஆம், ஆமா, aam, aama]     # the first of yes, no, status and help is the one the
    no: [இல்லை, இல்ல, illai, illa]  # "not understood" and help SMS name
    status: [நிலை, nilai]           # one word each: "நிலை 436805396"
    help: [உதவி, udhavi]
    ok: [சரி, sari]                 # optional: yes only as the whole message
    soft_yes: []                    # optional: yes alone, politeness beside an answer ("ji")
    polite: [நன்றி, nandri, ayya]   # optional: allowed around an answer ("thanks, yes")
    not_answers: []                 # optional: yes or no elsewhere, not in this language

An entry of two or three words is a phrase, read before its words ("nahi hua", "ho gaya").

A word is read as the citizen's own language reads it first; a word that language does not
list counts when every language listing it agrees on what it means, so that a Tamil speaker's
"haan" is a yes, while a word that is yes in one language and no in another means nothing to
the speakers of a third. ``not_answers`` takes a word back for one language (Marathi's "हा",
"this", is Hindi's and Gujarati's yes).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import yaml

from gateway.text.replies import Sense, Understood, phrase, understand

__all__ = ["FILE", "SHOWN", "ReplyWordsError", "Vocabulary"]

log = logging.getLogger(__name__)

FILE = "replies.yaml"
SHOWN: Final = ("yes", "no", "status", "help")
"""The keys whose first word an SMS names (template variables ``{yes_word}`` ...)."""

_KEYS: Final[dict[str, Sense | None]] = {
    "yes": Sense.YES,
    "no": Sense.NO,
    "status": Sense.STATUS,
    "help": Sense.HELP,
    "ok": Sense.OK,
    "soft_yes": Sense.SOFT_YES,
    "polite": Sense.COURTESY,
    "not_answers": None,
}
_ANSWERS: Final = frozenset({Sense.YES, Sense.NO, Sense.SOFT_YES, Sense.OK, Sense.COURTESY})
_MAX_PHRASE: Final = 3  # replies longer than three words are not read as answers
_REPEATS: Final = re.compile(r"(.)\1+")
_NO_WORDS: Final = {"yes": "1", "no": "2", "status": "STATUS", "help": "HELP"}

Table = Mapping[tuple[str, ...], Sense | None]
"""A language's phrases and what each means there (None: not an answer there)."""


class _WordsLoader(yaml.SafeLoader):
    """YAML without YAML 1.1's booleans: ``yes: [YES, y]`` is words, not ``True: [True, y]``."""


_WordsLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class ReplyWordsError(Exception):
    """A replies file is malformed (the message names the file and the key)."""


class Vocabulary:
    """Every configured language's reply words (a :class:`gateway.text.replies.Lexicon`)."""

    def __init__(self, own: Mapping[str, Table], shown: Mapping[str, Mapping[str, str]]) -> None:
        """``own``: each language's words; ``shown``: each language's first yes, no, status
        and help word, as its file writes them."""
        self.own = own
        self.shown = shown
        everyone: dict[tuple[str, ...], set[Sense]] = {}
        for table in own.values():
            for words, sense in table.items():
                if sense is not None:
                    everyone.setdefault(words, set()).add(sense)
        # What every language that lists a phrase agrees it means.
        self._shared = {words: next(iter(s)) for words, s in everyone.items() if len(s) == 1}
        self._known = frozenset(w for p in everyone for w in p)
        self._answer_words = frozenset(
            w for p, s in self._shared.items() if s in _ANSWERS for w in p if w.isascii()
        )
        # "illaiii" is "illai" once every run of a letter is one letter, as "illai" is.
        stretched: dict[str, str | None] = {}
        for word in sorted(self._answer_words):
            key = _REPEATS.sub(r"\1", word)
            stretched[key] = word if stretched.get(key, word) == word else None
        self._stretched = {k: w for k, w in stretched.items() if w is not None}
        self._longest = max((len(p) for p in everyone), default=1)

    @property
    def longest_phrase(self) -> int:
        return self._longest

    def sense(self, words: tuple[str, ...], language: str | None) -> Sense | None:
        table = self.own.get(language) if language is not None else None
        if table is not None and words in table:
            return table[words]
        return self._shared.get(words)

    def canonical(self, word: str) -> str:
        if word in self._known or not word.isascii():
            return word
        for repeat in (r"\1\1", r"\1"):
            shortened = _REPEATS.sub(repeat, word)
            if shortened in self._answer_words:
                return shortened
        return self._stretched.get(_REPEATS.sub(r"\1", word), word)

    def understand(self, text: str, *, language: str | None = None) -> Understood:
        """What ``text`` means from a citizen of ``language`` (see
        :func:`gateway.text.replies.understand`)."""
        return understand(text, self, language=language)

    def words_to_send(self, language: str) -> dict[str, str]:
        """The words an SMS in ``language`` tells the citizen to send, as the template
        variables ``yes_word``, ``no_word``, ``status_word`` and ``help_word`` (the digits
        and English keywords for a language without a replies file)."""
        shown = self.shown.get(language) or _NO_WORDS
        return {f"{key}_word": word for key, word in shown.items()}

    @classmethod
    def load(cls, locales_dir: Path, languages: Iterable[str]) -> Vocabulary:
        """Read ``<locales_dir>/<lang>/replies.yaml`` for each language (one without it
        has no words of its own: a warning)."""
        own: dict[str, Table] = {}
        shown: dict[str, dict[str, str]] = {}
        for lang in languages:
            file = locales_dir / lang / FILE
            if not file.exists():
                log.warning(
                    "no %s for %s: its replies are read with other languages' words", FILE, lang
                )
                continue
            own[lang], shown[lang] = read_replies(file)
        return cls(own=own, shown=shown)


def read_replies(file: Path) -> tuple[Table, dict[str, str]]:
    """One language's table and the words its SMS name; :class:`ReplyWordsError` when the
    file is malformed."""
    where = f"{file.parent.name}/{file.name}"
    try:
        raw = yaml.load(file.read_text(encoding="utf-8"), Loader=_WordsLoader)
    except (OSError, yaml.YAMLError) as e:
        raise ReplyWordsError(f"{where}: cannot be read: {e}") from None
    if not isinstance(raw, dict):
        raise ReplyWordsError(f"{where}: expected a mapping of {', '.join(_KEYS)}")
    unknown = sorted(set(map(str, raw)) - set(_KEYS))
    if unknown:
        raise ReplyWordsError(f"{where}: unknown key(s) {', '.join(unknown)}")
    table: dict[tuple[str, ...], Sense | None] = {}
    shown: dict[str, str] = {}
    for key, sense in _KEYS.items():
        entries = raw.get(key) or []
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ReplyWordsError(f"{where}: {key} must be a list of words")
        if key in SHOWN and not entries:
            raise ReplyWordsError(f"{where}: {key} needs at least one word")
        for entry in entries:
            _add(table, where, key, entry, sense)
        if key in SHOWN:
            shown[key] = " ".join(entries[0].split())
    return table, shown


def _add(
    table: dict[tuple[str, ...], Sense | None],
    where: str,
    key: str,
    entry: str,
    sense: Sense | None,
) -> None:
    words = phrase(entry)
    if not words or any(w.isdigit() for w in words):
        raise ReplyWordsError(f"{where}: {key}: {entry!r} is not a word")
    if len(words) > (1 if sense in (Sense.STATUS, Sense.HELP) else _MAX_PHRASE):
        raise ReplyWordsError(f"{where}: {key}: {entry!r} has too many words")
    if words in table and table[words] != sense:
        raise ReplyWordsError(f"{where}: {entry!r} is listed under two keys")
    table[words] = sense

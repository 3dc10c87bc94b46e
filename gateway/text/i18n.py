"""Translations: gettext catalogs in ``locales/`` (managed with babel), and locale formatting.

Message ids are the English text. Source strings are marked with :func:`N_` where they are
defined (menus, messages) and translated when shown, in the citizen's language.
"""

from __future__ import annotations

import functools
import io
import logging
import os
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

__all__ = ["DATE_FORMAT", "DOMAIN", "N_", "REVIEW_MARK", "Catalogs", "compile_catalogs", "reviewed"]

log = logging.getLogger(__name__)

DOMAIN = "messages"

DATE_FORMAT = "dd-MM-y"
"""How a date is written on screens and in SMS unless a language says otherwise
(``languages[].date_format``): digits only, so that a new CLDR release cannot lengthen a
screen (babel 2.19 turned Assamese's "medium" date ``10-04-2026`` into ``2026 এপ্ৰিল 10``)."""


REVIEW_MARK = "# Reviewed by a native speaker:"
"""The header comment line of a catalog that says whether a native speaker has reviewed its
translations (``yes`` or ``no``): ``make translations`` keeps header comments."""


def reviewed(locales_dir: Path, lang: str) -> bool | None:
    """Whether ``lang``'s catalog says a native speaker reviewed it; None when it does not
    say (or there is no catalog)."""
    po = locales_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    try:
        with po.open(encoding="utf-8") as f:
            for line in f:
                if not line.startswith("#"):
                    break
                if line.startswith(REVIEW_MARK):
                    answer = line.removeprefix(REVIEW_MARK).strip().casefold()
                    return {"yes": True, "no": False}.get(answer)
    except OSError:
        return None
    return None


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated later, when shown."""
    return message


def compile_catalogs(locales_dir: Path, languages: Iterable[str]) -> list[Path]:
    """Compile each language's ``.po`` into its ``.mo`` where the ``.mo`` is missing or older.

    Returns the catalogs compiled. A language without a ``.po`` is skipped (its text is the
    English message id); a read-only tree is left alone and compiled in memory at load.
    """
    compiled = []
    for lang in languages:
        po = locales_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        mo = po.with_suffix(".mo")
        if not po.exists():
            continue
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        try:
            with po.open("rb") as f:
                catalog = read_po(f, locale=lang)
            # Written beside it and renamed: a process starting at the same moment (a web
            # process beside a worker, or a second test process) reads the old file or the
            # new one, never half of one.
            part = mo.with_name(f"{mo.name}.{os.getpid()}.part")
            with part.open("wb") as out:
                write_mo(out, catalog, use_fuzzy=False)
            os.replace(part, mo)
        except OSError:
            log.warning("cannot write %s; the catalog will be compiled in memory", mo)
            continue
        compiled.append(mo)
    return compiled


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _load(locales_dir: Path, lang: str) -> NullTranslations:
    po = locales_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    # Configuration loading reads every catalog too: read each file version once.
    return _load_cached(po, _mtime(po), _mtime(po.with_suffix(".mo")))


@functools.lru_cache(maxsize=256)
def _load_cached(po: Path, po_time: int | None, mo_time: int | None) -> NullTranslations:
    lang = po.parent.parent.name
    mo = po.with_suffix(".mo")
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as f:
            return Translations(f, domain=DOMAIN)
    if po.exists():
        with po.open("rb") as f:
            catalog = read_po(f, locale=lang)
        buf = io.BytesIO()
        write_mo(buf, catalog, use_fuzzy=False)
        buf.seek(0)
        return Translations(buf, domain=DOMAIN)
    return NullTranslations()


class Catalogs:
    """Every configured language's translations and babel locale, loaded once."""

    def __init__(
        self,
        locales_dir: Path,
        languages: Iterable[str],
        *,
        date_formats: Mapping[str, str] | None = None,
        cldr_locales: Mapping[str, str] | None = None,
    ) -> None:
        self._translations: dict[str, NullTranslations] = {}
        self._locales: dict[str, Locale] = {}
        self._date_formats = dict(date_formats or {})
        cldr = dict(cldr_locales or {})
        for lang in languages:
            self._translations[lang] = _load(locales_dir, lang)
            self._locales[lang] = _babel_locale(cldr.get(lang, lang))

    def gettext(self, lang: str, message: str) -> str:
        t = self._translations.get(lang)
        return t.gettext(message) if t is not None else message

    def pgettext(self, lang: str, context: str, message: str) -> str | None:
        """``message`` in ``context`` translated into ``lang``; None when the catalog lacks it."""
        t = self._translations.get(lang)
        if t is None:
            return None
        text = str(t.pgettext(context, message))
        return text if text != message else None

    def ngettext(self, lang: str, singular: str, plural: str, n: int) -> str:
        t = self._translations.get(lang)
        if t is None:
            return singular if n == 1 else plural
        return t.ngettext(singular, plural, n)

    def locale(self, lang: str) -> Locale:
        return self._locales.get(lang) or Locale.parse("en_IN")

    def format_date(self, lang: str, value: date | datetime) -> str:
        """A date in the language's chosen pattern (:data:`DATE_FORMAT` by default:
        ``30-11-2026``), never CLDR's "medium", which moves between CLDR releases."""
        pattern = self._date_formats.get(lang, DATE_FORMAT)
        return format_date(value, format=pattern, locale=self.locale(lang))


def _babel_locale(lang: str) -> Locale:
    try:
        return Locale.parse(lang)
    except (ValueError, LookupError):
        base = lang.split("_", 1)[0]
        log.warning("no CLDR locale %s; formatting as %s", lang, base)
        return Locale.parse(base)

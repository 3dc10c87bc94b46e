"""Names from ``config.yaml`` (levels, departments, issue types, places, the service) in every
language.

A name written out in ``config.yaml`` for a language wins. Otherwise it comes from that
language's gettext catalog: the message id is the name's ``en_IN`` text (or the default
language's, when a name has no English), with a context saying what it names (``department``,
``place`` ...), so that ``make translations`` extracts them like any other citizen-facing text
(:func:`extract_config_names`). A name no catalog translates falls back to its English text,
which every handset can show, or else the default language's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from gateway.text import yamltext

__all__ = [
    "NAME_CONTEXTS",
    "extract_config_names",
    "fill_names",
    "name_entries",
]

SOURCE_LANGUAGE = "en_IN"

NAME_CONTEXTS = (
    "service",
    "level",
    "department",
    "issue",
    "place",
)
"""The msgctxt of each kind of configured name in the catalogs (districts, tehsils and blocks
are all places: a name shared by a district and its block is translated once)."""


def name_entries(raw: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, str]]]:
    """(context, the name's per-language texts) for every name in a raw configuration."""

    def named(item: Any) -> dict[str, str] | None:
        if isinstance(item, dict) and isinstance(item.get("name"), dict):
            name: dict[str, str] = item["name"]
            return name
        return None

    def each(items: Any) -> list[Any]:
        return items if isinstance(items, list) else []

    service = raw.get("service")
    if (texts := named(service)) is not None:
        yield "service", texts
    for level in each(raw.get("levels")):
        if (texts := named(level)) is not None:
            yield "level", texts
    for dept in each(raw.get("departments")):
        if (texts := named(dept)) is not None:
            yield "department", texts
        for issue in each(dept.get("issues") if isinstance(dept, dict) else None):
            if (texts := named(issue)) is not None:
                yield "issue", texts
    for district in each(raw.get("districts")):
        if (texts := named(district)) is not None:
            yield "place", texts
        for tehsil in each(district.get("tehsils") if isinstance(district, dict) else None):
            if (texts := named(tehsil)) is not None:
                yield "place", texts
            for block in each(tehsil.get("blocks") if isinstance(tehsil, dict) else None):
                if (texts := named(block)) is not None:
                    yield "place", texts


def message_id(texts: Mapping[str, str], default_language: str) -> str | None:
    """The catalog message id of a name: its English text, else its default-language one."""
    text = texts.get(SOURCE_LANGUAGE) or texts.get(default_language)
    return text if isinstance(text, str) else None


def fill_names(
    raw: dict[str, Any],
    *,
    languages: list[str],
    default_language: str,
    pgettext: Callable[[str, str, str], str | None],
) -> None:
    """Give every name in ``raw`` a text in each of ``languages``, in place.

    ``pgettext(language, context, message)`` returns the catalog's translation, or None.
    A text given in the configuration is kept; a name without an id is left for validation
    to report.
    """
    for context, texts in name_entries(raw):
        msgid = message_id(texts, default_language)
        if msgid is None:
            continue
        for lang in languages:
            if texts.get(lang):
                continue
            translated = pgettext(lang, context, msgid)
            texts[lang] = translated or msgid


def extract_config_names(
    fileobj: IO[bytes],
    keywords: Mapping[str, Any],
    comment_tags: Any,
    options: Mapping[str, Any],
) -> Iterator[tuple[int, str, tuple[str, str], list[str]]]:
    """Babel extractor for ``config.yaml``: each configured name, with its kind as context.

    Registered in ``babel.cfg`` as ``[gateway.text.names.extract_config_names: config.yaml]``.
    """
    raw = yamltext.load(fileobj.read().decode("utf-8"))
    if not isinstance(raw, dict):
        return
    service = raw.get("service")
    default = service.get("default_language", "hi") if isinstance(service, dict) else "hi"
    seen: set[tuple[str, str]] = set()
    for context, texts in name_entries(raw):
        msgid = message_id(texts, default)
        if msgid is None or (context, msgid) in seen:
            continue
        seen.add((context, msgid))
        yield 0, "pgettext", (context, msgid), []

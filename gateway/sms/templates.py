"""SMS templates: one YAML file per message kind in ``sms_templates/``, a text per language.

Indian operators drop a commercial SMS whose text does not match a template registered on
their DLT platform for the sender, so each language's text carries its DLT template ID and
is sent exactly as written, with only its ``{variables}`` filled in (each at most 30
characters, DLT's limit).

A template's file says whether it is **essential**: sent to a citizen who opted out (STOP)
too, because it answers the citizen's own action or asks the question whose answer closes
their complaint; written on each message (``OutboundMessage.essential``), so that one about
a complaint that finally fails is tried once more. A DLT ``transactional`` template is
essential unless its file says otherwise. Every other message is optional: an opted-out
citizen does not get it, from the lifecycle or from a campaign.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from gateway.text import yamltext
from gateway.text.encoding import Encoding, measure_sms

__all__ = [
    "DLT_VARIABLE_MAX",
    "RenderedSms",
    "SmsTemplate",
    "TemplateBook",
    "TemplateError",
]

DLT_VARIABLE_MAX = 30
_VARIABLE = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_CATEGORIES = ("transactional", "service_implicit", "service_explicit", "promotional")
_KEYS = {"name", "category", "variables", "languages", "description", "bulk", "essential"}


class TemplateError(Exception):
    """A template file is malformed, or a render lacks a value (names the file and key)."""


@dataclass(frozen=True, slots=True)
class RenderedSms:
    template: str
    language: str
    text: str
    dlt_template_id: str | None
    encoding: Encoding
    segments: int
    essential: bool = False
    """Its template's: sent to a citizen who opted out too."""


@dataclass(frozen=True, slots=True)
class TemplateText:
    text: str
    dlt_template_id: str | None

    @property
    def dlt_pattern(self) -> str:
        """The text as registered on DLT: each variable written ``{#var#}``."""
        return _VARIABLE.sub("{#var#}", self.text)


@dataclass(frozen=True, slots=True)
class SmsTemplate:
    name: str
    category: str
    variables: tuple[str, ...]
    texts: Mapping[str, TemplateText]
    bulk: bool = False
    """May be sent by staff in a campaign (lifecycle messages never are)."""
    essential: bool = False
    """Sent to a citizen who opted out too (see the module's description)."""

    def render(self, language: str, values: Mapping[str, str], *, fallback: str) -> RenderedSms:
        """Fill in ``values`` in ``language``'s text (or ``fallback``'s, if it has none)."""
        lang = language if language in self.texts else fallback
        tt = self.texts[lang]
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise TemplateError(f"{self.name}: no value for {', '.join(missing)}")

        def fill(m: re.Match[str]) -> str:
            value = " ".join(str(values[m.group(1)]).split())
            if len(value) > DLT_VARIABLE_MAX:
                value = value[: DLT_VARIABLE_MAX - 1].rstrip() + "."
            return value

        text = _VARIABLE.sub(fill, tt.text)
        m = measure_sms(text)
        return RenderedSms(
            self.name, lang, text, tt.dlt_template_id, m.encoding, m.segments, self.essential
        )


class TemplateBook:
    """All templates, loaded and checked once at start-up."""

    def __init__(self, templates: Iterable[SmsTemplate]) -> None:
        self._by_name = {t.name: t for t in templates}

    def __getitem__(self, name: str) -> SmsTemplate:
        try:
            return self._by_name[name]
        except KeyError:
            raise TemplateError(f"no SMS template named {name!r}") from None

    def __iter__(self) -> Iterator[SmsTemplate]:
        return iter(self._by_name.values())

    @property
    def names(self) -> list[str]:
        return sorted(self._by_name)

    @classmethod
    def load(cls, directory: Path, *, languages: Iterable[str]) -> TemplateBook:
        """Read every ``*.yaml`` in ``directory``; each must have a text for every language."""
        langs = list(languages)
        templates = [_load_one(f, langs) for f in sorted(directory.glob("*.yaml"))]
        if not templates:
            raise TemplateError(f"no SMS templates in {directory}")
        return cls(templates)


def _load_one(file: Path, languages: list[str]) -> SmsTemplate:
    where = file.name
    try:
        raw = yamltext.load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise TemplateError(f"{where}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise TemplateError(f"{where}: expected a mapping")
    unknown = set(raw) - _KEYS
    if unknown:
        raise TemplateError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = raw.get("name")
    if name != file.stem:
        raise TemplateError(f"{where}: name must be {file.stem!r}, the file's own name")
    category = raw.get("category")
    if category not in _CATEGORIES:
        raise TemplateError(f"{where}: category must be one of {', '.join(_CATEGORIES)}")
    variables = raw.get("variables") or []
    if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
        raise TemplateError(f"{where}: variables must be a list of names")
    texts_raw = raw.get("languages")
    if not isinstance(texts_raw, dict):
        raise TemplateError(f"{where}: languages must map a language code to its text")
    texts: dict[str, TemplateText] = {}
    for lang, entry in texts_raw.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            raise TemplateError(f"{where}: languages.{lang}.text is missing")
        extra = set(entry) - {"text", "dlt_template_id"}
        if extra:
            raise TemplateError(f"{where}: languages.{lang}: unknown key(s) {', '.join(extra)}")
        text = entry["text"].strip()
        used = set(_VARIABLE.findall(text))
        if used != set(variables):
            raise TemplateError(
                f"{where}: languages.{lang}.text uses {sorted(used)}, declared {sorted(variables)}"
            )
        dlt = entry.get("dlt_template_id")
        texts[lang] = TemplateText(text, str(dlt) if dlt is not None else None)
    missing = [lang for lang in languages if lang not in texts]
    if missing:
        raise TemplateError(f"{where}: no text for language(s) {', '.join(missing)}")
    bulk = raw.get("bulk", False)
    if not isinstance(bulk, bool):
        raise TemplateError(f"{where}: bulk must be true or false")
    essential = raw.get("essential", category == "transactional")
    if not isinstance(essential, bool):
        raise TemplateError(f"{where}: essential must be true or false")
    return SmsTemplate(name, category, tuple(variables), texts, bulk=bulk, essential=essential)

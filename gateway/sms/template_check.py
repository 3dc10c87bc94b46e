"""The SMS template linter: ``python -m gateway templates check``.

For every template in every language it renders the longest values the system can put in
each variable and checks what an operator's DLT scrubbing and the citizen's bill care
about: each value within DLT's 30 characters, the text within 2 SMS segments, the text
matching its registered pattern (each variable written ``{#var#}``), a template ID given.

When the provider sending SMS is one on India's DLT (``dlt`` in its registry entry: Exotel),
an ID still marked as a placeholder in its file (``dlt_template_id: "..."  # placeholder``)
is a problem too: the operator would drop every SMS sent with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from gateway.channels.registry import PROVIDERS
from gateway.config import Config
from gateway.sms.notices import STATUS_WORDS
from gateway.sms.templates import DLT_VARIABLE_MAX, SmsTemplate, TemplateBook
from gateway.text.encoding import measure_sms
from gateway.text.i18n import Catalogs
from gateway.text.reply_words import Vocabulary

__all__ = [
    "MAX_SEGMENTS",
    "Row",
    "check_templates",
    "format_matrix",
    "format_placeholders",
    "format_table",
    "longest_values",
    "placeholder_ids",
]

MAX_SEGMENTS = 2


@dataclass(frozen=True, slots=True)
class Row:
    template: str
    language: str
    encoding: str
    units: int
    segments: int
    problems: tuple[str, ...]


def longest_values(
    config: Config, catalogs: Catalogs, language: str, *, vocabulary: Vocabulary | None = None
) -> dict[str, str]:
    """The longest value the system can produce for each variable, in ``language`` (the
    reply words an SMS names: ``vocabulary``'s, read from the locales when not given)."""

    def longest(texts: list[str]) -> str:
        return max(texts, key=len) if texts else ""

    def named(items: list[dict[str, str]]) -> str:
        return longest([n.get(language) or n[config.service.default_language] for n in items])

    days = [date(2026, 1, 1) + timedelta(days=d) for d in range(365)]
    codes = [lang.code for lang in config.languages]
    words = vocabulary or Vocabulary.load(config.path(config.paths.locales), codes)
    return {
        **words.words_to_send(language),
        "ticket": "9" * (config.tickets.digits + 1),
        "department": named([d.name for d in config.departments]),
        "due_date": longest([catalogs.format_date(language, d) for d in days]),
        "service_code": config.service.service_code,
        "level": named([lv.name for lv in config.levels]),
        "issue": "x" * DLT_VARIABLE_MAX,  # an issue type's name, or the citizen's own words
        "place": named([b.name for d in config.districts for b in d.blocks]),
        "remark": "x" * DLT_VARIABLE_MAX,
        "status": longest([catalogs.gettext(language, w) for w in STATUS_WORDS.values()]),
    }


_PLACEHOLDER = re.compile(
    r"""dlt_template_id:\s*["']?([0-9A-Za-z]+)["']?\s*#\s*placeholder""", re.IGNORECASE
)


def placeholder_ids(directory: Path) -> frozenset[str]:
    """The DLT template IDs the template files in ``directory`` mark as placeholders."""
    found: set[str] = set()
    for path in sorted(directory.glob("*.yaml")):
        found.update(_PLACEHOLDER.findall(path.read_text(encoding="utf-8")))
    return frozenset(found)


def _check(
    template: SmsTemplate,
    language: str,
    values: dict[str, str],
    config: Config,
    placeholders: frozenset[str] | None,
) -> Row:
    problems = []
    text = template.texts[language]
    wanted = {v: values.get(v, "x" * DLT_VARIABLE_MAX) for v in template.variables}
    for name, value in wanted.items():
        if len(value) > DLT_VARIABLE_MAX:
            problems.append(
                f"{name} can be {len(value)} characters (DLT allows {DLT_VARIABLE_MAX})"
            )
    rendered = template.render(language, wanted, fallback=config.service.default_language)
    if rendered.segments > MAX_SEGMENTS:
        problems.append(f"{rendered.segments} segments (at most {MAX_SEGMENTS})")
    pattern = "".join(
        f".{{1,{DLT_VARIABLE_MAX}}}" if part == "{#var#}" else re.escape(part)
        for part in re.split(r"(\{#var#\})", text.dlt_pattern)
    )
    if not re.fullmatch(pattern, rendered.text, flags=re.DOTALL):
        problems.append("the rendered text does not match its DLT pattern")
    provider = config.sms.provider
    if not text.dlt_template_id:
        problems.append(
            f"no dlt_template_id ({provider} sends it with every SMS)"
            if placeholders is not None
            else "no dlt_template_id"
        )
    elif placeholders is not None and text.dlt_template_id in placeholders:
        problems.append(
            f"dlt_template_id {text.dlt_template_id} is a placeholder: register the text "
            f"and put its ID here ({provider} sends it with every SMS)"
        )
    units = measure_sms(rendered.text).units
    return Row(
        template.name, language, rendered.encoding.value, units, rendered.segments, tuple(problems)
    )


def check_templates(config: Config, catalogs: Catalogs, book: TemplateBook) -> list[Row]:
    """One row per template and language, with what is wrong in it (nothing, ideally)."""
    placeholders = (
        placeholder_ids(config.path(config.paths.sms_templates))
        if PROVIDERS[config.sms.provider].dlt
        else None
    )
    rows = []
    codes = [lang.code for lang in config.languages]
    vocabulary = Vocabulary.load(config.path(config.paths.locales), codes)
    for language in codes:
        values = longest_values(config, catalogs, language, vocabulary=vocabulary)
        for name in book.names:
            rows.append(_check(book[name], language, values, config, placeholders))
    return rows


def format_table(rows: list[Row]) -> str:
    """A plain-text table: template, language, encoding, characters, segments, result."""
    head = ("template", "lang", "enc", "chars", "SMS", "result")
    body = [
        (
            r.template,
            r.language,
            r.encoding,
            str(r.units),
            str(r.segments),
            "ok" if not r.problems else "; ".join(r.problems),
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [head, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_placeholders(book: TemplateBook, placeholders: frozenset[str], codes: list[str]) -> str:
    """Each language's DLT template IDs still marked as placeholders, as runs of numbers
    (``ks: 1107000000000100701-720 (20)``): the texts to register before sending through
    a provider on DLT. Empty when there are none."""
    lines = []
    for code in codes:
        given = (book[name].texts.get(code) for name in book.names)
        marked = {t.dlt_template_id for t in given if t is not None and t.dlt_template_id}
        ids = sorted(marked & placeholders, key=lambda i: (len(i), i))
        if ids:
            lines.append(f"  {code}: {', '.join(_runs(ids))} ({len(ids)})")
    return "\n".join(lines)


def _runs(ids: list[str]) -> list[str]:
    """Consecutive numeric IDs written as one range: ``...100701-720``."""
    runs: list[list[str]] = []
    for i in ids:
        last = runs[-1][-1] if runs else None
        if last is not None and i.isdigit() and last.isdigit() and int(i) == int(last) + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    out = []
    for run in runs:
        first, end = run[0], run[-1]
        if first == end:
            out.append(first)
        else:  # "...100701-720" where only the last three digits differ
            out.append(f"{first}-{end[-3:] if first[:-3] == end[:-3] else end}")
    return out


def format_matrix(rows: list[Row]) -> str:
    """A Markdown table: one line per template, one column per language, each cell the SMS
    the longest rendering costs and its encoding (``1g``: one GSM-7 SMS, ``2u``: two UCS-2
    segments), with ``!`` where the template has a problem."""
    languages = list(dict.fromkeys(r.language for r in rows))
    cells: dict[str, dict[str, str]] = {}
    for r in rows:
        mark = "!" if r.problems else ""
        cells.setdefault(r.template, {})[r.language] = f"{r.segments}{r.encoding[0]}{mark}"
    lines = [
        "| template | " + " | ".join(languages) + " |",
        "|---|" + "---|" * len(languages),
    ]
    for template, by_lang in cells.items():
        row = " | ".join(by_lang.get(lang, "-") for lang in languages)
        lines.append(f"| {template} | {row} |")
    return "\n".join(lines)

"""The SMS templates in sms_templates/: they load, fit two SMS at worst, match what DLT has
registered, and a malformed file is refused with an error naming it."""

from __future__ import annotations

import functools
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import load_config
from gateway.sms.notices import STATUS_WORDS
from gateway.sms.templates import DLT_VARIABLE_MAX, SmsTemplate, TemplateBook, TemplateError
from gateway.text.encoding import Encoding, measure_sms
from gateway.text.i18n import Catalogs
from gateway.text.reply_words import Vocabulary
from tests.conftest import SHIPPED_CONFIG

CONFIG = load_config(SHIPPED_CONFIG, environ={})
LANGUAGES = [lang.code for lang in CONFIG.languages]
TEMPLATES_DIR = CONFIG.path(CONFIG.paths.sms_templates)
MAX_SEGMENTS = 2
VARIABLE = re.compile(r"\{[a-z][a-z0-9_]*\}")
# Free text (an officer's remark, a typed description) is cut to DLT's limit: at worst it
# fills it. Also used for a variable this test knows no realistic value for.
FREE_TEXT = {
    "hi": "नल से गंदा पानी आ रहा है और पाइप टूटा है",
    "en_IN": "Pipe near the school is broken and water is dirty",
}


def longest(texts: list[str]) -> str:
    return max(texts, key=lambda s: (measure_sms(s).units, s))


def longest_date(lang: str) -> str:
    catalogs = Catalogs(CONFIG.path(CONFIG.paths.locales), [lang])
    start = date(2026, 1, 1)
    return longest([catalogs.format_date(lang, start + timedelta(days=d)) for d in range(366)])


def free_text(lang: str) -> str:
    words = FREE_TEXT.get(lang, FREE_TEXT["en_IN"])
    return " ".join((words + " " + words).split())[:DLT_VARIABLE_MAX].rstrip()


@functools.cache
def realistic_values(lang: str) -> dict[str, str]:
    """The longest value each variable the templates use takes in ``lang``."""
    config = CONFIG
    catalogs = Catalogs(config.path(config.paths.locales), [lang])

    def name(texts: dict[str, str]) -> str:
        return texts[lang]

    values = {
        "ticket": "9" * (config.tickets.digits + 1),
        "department": longest([name(d.name) for d in config.departments]),
        "due_date": longest_date(lang),
        "date": longest_date(lang),
        "service_code": config.service.service_code,
        "level": longest([name(lv.name) for lv in config.levels]),
        "district": longest([name(d.name) for d in config.districts]),
        "block": longest([name(b.name) for d in config.districts for b in d.blocks]),
        "place": longest([name(b.name) for d in config.districts for b in d.blocks]),
        "issue": longest(
            [name(i.name) for d in config.departments for i in d.issues] + [free_text(lang)]
        ),
        "status": longest([catalogs.gettext(lang, word) for word in STATUS_WORDS.values()]),
        "remark": free_text(lang),
        "description": free_text(lang),
        # The reply words the "not understood" and help SMS name (locales/<lang>/replies.yaml).
        **Vocabulary.load(config.path(config.paths.locales), [lang]).words_to_send(lang),
    }
    return values


@pytest.fixture(scope="module")
def book() -> TemplateBook:
    return TemplateBook.load(TEMPLATES_DIR, languages=LANGUAGES)


def values_for(template: SmsTemplate, lang: str) -> tuple[dict[str, str], list[str]]:
    known = realistic_values(lang)
    guessed = [v for v in template.variables if v not in known]
    values = {v: known.get(v, free_text(lang)) for v in template.variables}
    return values, guessed


def dlt_regex(pattern: str) -> re.Pattern[str]:
    """What DLT accepts for a registered pattern: each {#var#} stands for 1 to 30 characters."""
    parts = pattern.split("{#var#}")
    body = f"(.{{1,{DLT_VARIABLE_MAX}}})".join(re.escape(p) for p in parts)
    return re.compile(body, re.DOTALL)


# --- the shipped templates -------------------------------------------------------------------


def test_shipped_templates_load_for_every_language(book: TemplateBook) -> None:
    assert "complaint_registered" in book.names
    for template in book:
        assert set(LANGUAGES) <= set(template.texts), template.name
        assert template.variables, f"{template.name}: a template with no variable"


def test_each_template_fits_two_sms_with_the_longest_values(book: TemplateBook) -> None:
    problems = []
    for template in book:
        for lang in LANGUAGES:
            values, guessed = values_for(template, lang)
            sms = template.render(lang, values, fallback=CONFIG.service.default_language)
            where = f"{template.name} [{lang}]"
            assert sms.language == lang, f"{where}: rendered in {sms.language}"
            m = measure_sms(sms.text)
            assert (sms.segments, sms.encoding) == (m.segments, m.encoding), where
            if m.segments > MAX_SEGMENTS:
                note = (
                    f" ({', '.join(guessed)}: no realistic value known, {DLT_VARIABLE_MAX}"
                    " characters assumed)"
                    if guessed
                    else ""
                )
                problems.append(
                    f"{where}: {m.segments} segments ({m.units} {m.encoding} units){note}:"
                    f" {sms.text!r}"
                )
            left = VARIABLE.findall(sms.text)
            if left:
                problems.append(f"{where}: not filled: {left}: {sms.text!r}")
            for var, value in values.items():
                if value[: DLT_VARIABLE_MAX - 1].rstrip() not in sms.text:
                    problems.append(f"{where}: {var}={value!r} is not in {sms.text!r}")
    assert not problems, "\n".join(problems)


# Shipped English texts over one SMS with the longest realistic values (see the report).
ENGLISH_OVER_ONE_SMS: dict[str, str] = {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=ENGLISH_OVER_ONE_SMS[n]))
        if n in ENGLISH_OVER_ONE_SMS
        else n
        for n in sorted(p.stem for p in TEMPLATES_DIR.glob("*.yaml"))
    ],
)
def test_english_text_is_gsm7_in_one_segment(book: TemplateBook, name: str) -> None:
    template = book[name]
    values, _ = values_for(template, "en_IN")
    sms = template.render("en_IN", values, fallback="en_IN")
    m = measure_sms(sms.text)
    assert (m.encoding, m.segments) == (Encoding.GSM7, 1), f"{m.units} units: {sms.text!r}"


def test_dlt_pattern_marks_every_variable(book: TemplateBook) -> None:
    for template in book:
        for lang, text in template.texts.items():
            expected = VARIABLE.sub("{#var#}", text.text)
            assert text.dlt_pattern == expected
            assert not VARIABLE.search(text.dlt_pattern)
            assert text.dlt_pattern.count("{#var#}") == len(VARIABLE.findall(text.text)) > 0, (
                f"{template.name} [{lang}]"
            )


def test_rendered_texts_match_their_dlt_pattern(book: TemplateBook) -> None:
    for template in book:
        for lang in LANGUAGES:
            values, _ = values_for(template, lang)
            sms = template.render(lang, values, fallback=lang)
            pattern = template.texts[lang].dlt_pattern
            assert dlt_regex(pattern).fullmatch(sms.text), (
                f"{template.name} [{lang}]: {sms.text!r} does not match {pattern!r}"
            )


def test_a_value_longer_than_dlt_allows_is_cut(book: TemplateBook) -> None:
    template = book["complaint_registered"]
    long_name = "Public Works and Roads Department of Himachal"  # 45 characters
    assert len(long_name) > DLT_VARIABLE_MAX
    for lang in LANGUAGES:
        values, _ = values_for(template, lang)
        sms = template.render(lang, {**values, "department": long_name}, fallback=lang)
        assert dlt_regex(template.texts[lang].dlt_pattern).fullmatch(sms.text), sms.text
        # The text with the other values as given and whatever stands for the department.
        body, seen = "", False
        for part in re.split(r"(\{[a-z][a-z0-9_]*\})", template.texts[lang].text):
            if part == "{department}":
                body += "(?P=department)" if seen else "(?P<department>.+)"
                seen = True
            elif VARIABLE.fullmatch(part):
                body += re.escape(values[part[1:-1]])
            else:
                body += re.escape(part)
        match = re.fullmatch(body, sms.text, re.DOTALL)
        assert match, f"[{lang}] {sms.text!r}"
        kept = match.group("department")
        assert len(kept) <= DLT_VARIABLE_MAX, f"[{lang}] {kept!r} is {len(kept)} characters"
        assert long_name.startswith(kept.rstrip(".")), f"[{lang}] {kept!r}"
        assert len(kept) >= DLT_VARIABLE_MAX - 2, f"[{lang}] cut shorter than needed: {kept!r}"


def test_a_missing_value_is_refused(book: TemplateBook) -> None:
    template = book["complaint_registered"]
    values, _ = values_for(template, "en_IN")
    del values["ticket"]
    with pytest.raises(TemplateError, match="ticket"):
        template.render("en_IN", values, fallback="en_IN")


# --- malformed templates ---------------------------------------------------------------------


def shipped_raw() -> dict[str, Any]:
    raw = yaml.safe_load((TEMPLATES_DIR / "complaint_registered.yaml").read_text("utf-8"))
    assert isinstance(raw, dict)
    return raw


def write(directory: Path, file: str, raw: dict[str, Any]) -> Path:
    path = directory / file
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_a_copy_of_a_shipped_template_loads(tmp_path: Path) -> None:
    write(tmp_path, "complaint_registered.yaml", shipped_raw())
    book = TemplateBook.load(tmp_path, languages=LANGUAGES)
    assert book.names == ["complaint_registered"]


def _drop_hindi(raw: dict[str, Any]) -> None:
    del raw["languages"]["hi"]


def _hindi_without_a_variable(raw: dict[str, Any]) -> None:
    text = raw["languages"]["hi"]["text"]
    raw["languages"]["hi"]["text"] = text.replace("{service_code}", "*1100#")


def _undeclared_variable(raw: dict[str, Any]) -> None:
    raw["variables"] = [v for v in raw["variables"] if v != "due_date"]


def _extra_declared_variable(raw: dict[str, Any]) -> None:
    raw["variables"] = [*raw["variables"], "district"]


def _unknown_key(raw: dict[str, Any]) -> None:
    raw["sender_id"] = "SAMPRK"


def _unknown_language_key(raw: dict[str, Any]) -> None:
    raw["languages"]["en_IN"]["template_id"] = "1107000000000000001"


@pytest.mark.parametrize(
    "file, alter, says",
    [
        ("no_hindi.yaml", _drop_hindi, "hi"),
        ("hindi_lacks_a_variable.yaml", _hindi_without_a_variable, "languages.hi.text"),
        ("undeclared_variable.yaml", _undeclared_variable, "due_date"),
        ("extra_variable.yaml", _extra_declared_variable, "district"),
        ("unknown_key.yaml", _unknown_key, "sender_id"),
        ("unknown_language_key.yaml", _unknown_language_key, "template_id"),
    ],
)
def test_a_malformed_template_is_refused_naming_the_file(
    tmp_path: Path, file: str, alter: Any, says: str
) -> None:
    raw = shipped_raw()
    raw["name"] = Path(file).stem
    alter(raw)
    write(tmp_path, file, raw)
    with pytest.raises(TemplateError) as error:
        TemplateBook.load(tmp_path, languages=LANGUAGES)
    assert file in str(error.value) and says in str(error.value), str(error.value)


def test_a_name_other_than_the_file_name_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "acknowledgement.yaml", shipped_raw())  # name: complaint_registered
    with pytest.raises(TemplateError) as error:
        TemplateBook.load(tmp_path, languages=LANGUAGES)
    message = str(error.value)
    assert "acknowledgement.yaml" in message and "acknowledgement" in message, message


def test_a_language_configured_later_must_have_a_text(tmp_path: Path) -> None:
    write(tmp_path, "complaint_registered.yaml", shipped_raw())
    with pytest.raises(TemplateError) as error:
        TemplateBook.load(tmp_path, languages=[*LANGUAGES, "sw"])
    assert "complaint_registered.yaml" in str(error.value) and "sw" in str(error.value)


def test_the_linter_passes_on_the_shipped_templates() -> None:
    """`python -m gateway templates check`: every template and language, exit 0."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "templates", "check"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "complaint_registered" in done.stdout and "0 with problems" in done.stdout
    # The IDs still to register, by language, as runs: each language's 20 templates.
    listed = done.stdout.split("Placeholder DLT template IDs", 1)[1]
    assert "\n  ks_Deva: 1107000000000100721-740 (20)\n" in listed
    assert "\n  hi: 1107000000000100952 (1)\n" in listed  # staff_sign_in_code, not registered


def test_the_linter_names_what_is_wrong(tmp_path: Path) -> None:
    from gateway.config import load_config
    from gateway.sms.template_check import check_templates
    from gateway.sms.templates import TemplateBook
    from gateway.text.i18n import Catalogs

    root = Path(__file__).resolve().parent.parent
    two = [{"code": "en_IN", "name": "English", "latin": True}, {"code": "hi", "name": "हिन्दी"}]
    overrides = {"languages": two, "language_menu": {"first": []}}
    config = load_config(root / "config.yaml", environ={}, overrides=overrides)
    (tmp_path / "long_one.yaml").write_text(
        "name: long_one\ncategory: service_implicit\nvariables: [remark]\nlanguages:\n"
        "  en_IN: {text: 'Update: {remark}. " + "Please read this. " * 20 + "'}\n"
        "  hi: {dlt_template_id: '1', text: 'अद्यतन: {remark}'}\n",
        encoding="utf-8",
    )
    book = TemplateBook.load(tmp_path, languages=["en_IN", "hi"])
    catalogs = Catalogs(root / "locales", ["en_IN", "hi"])
    rows = {r.language: r for r in check_templates(config, catalogs, book)}
    assert any("segments" in p for p in rows["en_IN"].problems)
    assert "no dlt_template_id" in rows["en_IN"].problems
    assert rows["hi"].problems == ()


def test_the_readme_shows_the_linters_current_table() -> None:
    """The README's table of SMS per template and language is what the linter says now."""
    from gateway.app import catalogs_for
    from gateway.config import load_config
    from gateway.sms.template_check import check_templates, format_matrix
    from gateway.sms.templates import TemplateBook

    root = Path(__file__).resolve().parent.parent
    config = load_config(root / "config.yaml", environ={})
    codes = [lang.code for lang in config.languages]
    catalogs = catalogs_for(config)
    book = TemplateBook.load(config.path(config.paths.sms_templates), languages=codes)
    matrix = format_matrix(check_templates(config, catalogs, book))
    readme = (root / "README.md").read_text(encoding="utf-8")
    shown = readme.split("<!-- templates-matrix -->\n", 1)[1].split("\n<!-- /templates-matrix")[0]
    assert shown == matrix, "README.md: paste the table `python -m gateway templates check` prints"


def test_the_linter_names_placeholder_dlt_ids_for_a_dlt_provider(tmp_path: Path) -> None:
    """With Exotel (which sends DltTemplateId), an ID still marked ``# placeholder`` in its
    file, or none, is named; with a provider that sends none, a placeholder is not."""
    from gateway.config import load_config
    from gateway.sms.template_check import check_templates
    from gateway.sms.templates import TemplateBook
    from gateway.text.i18n import Catalogs

    root = Path(__file__).resolve().parent.parent
    two = [{"code": "en_IN", "name": "English", "latin": True}, {"code": "hi", "name": "हिन्दी"}]
    (tmp_path / "note.yaml").write_text(
        "name: note\ncategory: service_implicit\nvariables: []\nlanguages:\n"
        "  en_IN:\n"
        "    dlt_template_id: '1107000000000000077'\n"
        "    text: 'Thank you.'\n"
        "  hi:\n"
        "    dlt_template_id: '1107000000000100099'  # placeholder: register the text\n"
        "    text: 'धन्यवाद।'\n",
        encoding="utf-8",
    )
    overrides = {
        "languages": two,
        "language_menu": {"first": []},
        "paths": {"sms_templates": str(tmp_path)},
    }
    exotel = {
        "SMS_PROVIDER": "exotel",
        "EXOTEL_SID": "s",
        "EXOTEL_API_KEY": "k",
        "EXOTEL_API_TOKEN": "t",
        "EXOTEL_SENDER": "HPSEVA",
        "DLT_ENTITY_ID": "1101234567890123456",
    }
    book = TemplateBook.load(tmp_path, languages=["en_IN", "hi"])
    catalogs = Catalogs(root / "locales", ["en_IN", "hi"])
    config = load_config(root / "config.yaml", environ=exotel, overrides=overrides)
    rows = {r.language: r for r in check_templates(config, catalogs, book)}
    assert rows["en_IN"].problems == ()
    assert rows["hi"].problems == (
        "dlt_template_id 1107000000000100099 is a placeholder: register the text and put "
        "its ID here (exotel sends it with every SMS)",
    )
    simulator = load_config(root / "config.yaml", environ={}, overrides=overrides)
    assert all(r.problems == () for r in check_templates(simulator, catalogs, book))

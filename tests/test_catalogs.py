"""The gettext catalogs in locales/: complete, consistent with the code, compiled when stale."""

from __future__ import annotations

import gettext
import os
import re
import shlex
import shutil
import string
from pathlib import Path

import pytest
import yaml
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from gateway.config import load_config
from gateway.text.i18n import DOMAIN, Catalogs, compile_catalogs
from gateway.text.names import NAME_CONTEXTS, message_id, name_entries
from tests.conftest import ROOT, SHIPPED_CONFIG

CONFIG = load_config(SHIPPED_CONFIG, environ={})
LOCALES = CONFIG.path(CONFIG.paths.locales)
POT = LOCALES / f"{DOMAIN}.pot"
LANGUAGES = [lang.code for lang in CONFIG.languages]
CLDR_ORDER = ("zero", "one", "two", "few", "many", "other")

# The shipped hi catalog says "plural=(n != 1)" (babel's gettext table), but CLDR, which
# babel itself follows for formatting, puts 0 in Hindi's "one" category (i = 0 or n = 1).
PLURAL_BUGS: dict[str, str] = {}


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def po_path(locales: Path, lang: str) -> Path:
    return locales / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def message_ids(catalog: Catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def placeholders(text: str) -> set[str]:
    """The python-brace fields of ``text`` ({ticket}), as str.format reads them."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def strings(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


# --- every message translated, with the same placeholders --------------------------------


def test_the_template_has_messages() -> None:
    ids = message_ids(read(POT))
    assert "Back" in ids and len(ids) >= 10


def explicit_names() -> set[tuple[str, str, str]]:
    """(language, context, message id) of each name config.yaml writes out itself."""
    raw = yaml.safe_load(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    default = raw["service"]["default_language"]
    return {
        (lang, context, message_id(texts, default) or "")
        for context, texts in name_entries(raw)
        for lang in texts
    }


def test_every_message_is_translated_in_every_language() -> None:
    """Menu texts in each catalog; a configured name in the catalog or in config.yaml."""
    template = read(POT)
    in_config = explicit_names()
    problems = []
    for lang in LANGUAGES:
        path = po_path(LOCALES, lang)
        if not path.exists():
            problems.append(f"{lang}: no catalog {path.relative_to(ROOT)}")
            continue
        catalog = read(path, lang)
        for message in template:
            if not message.id:
                continue
            translated = catalog.get(message.id, message.context)
            shown = message.id if isinstance(message.id, str) else message.id[0]
            if message.context and (lang, message.context, shown) in in_config:
                continue
            if message.context:
                shown = f"{message.context}: {shown}"
            if translated is None:
                problems.append(f"{lang}: {shown!r} is missing")
            elif translated.fuzzy:
                problems.append(f"{lang}: {shown!r} is fuzzy")
            elif not all(s.strip() for s in strings(translated.string)) or not strings(
                translated.string
            ):
                problems.append(f"{lang}: {shown!r} has no translation")
    assert not problems, "untranslated messages:\n" + "\n".join(problems)


def test_translations_keep_the_placeholders() -> None:
    problems = []
    for lang in LANGUAGES:
        for message in read(po_path(LOCALES, lang), lang):
            if not message.id:
                continue
            try:
                wanted = set().union(*(placeholders(s) for s in strings(message.id)))
            except ValueError as e:
                problems.append(f"{message.id!r} is not a valid format string: {e}")
                continue
            for text in strings(message.string):
                if not text:
                    continue  # reported by the test above
                try:
                    got = placeholders(text)
                except ValueError as e:
                    problems.append(f"{lang}: {text!r} is not a valid format string: {e}")
                    continue
                if got != wanted:
                    problems.append(
                        f"{lang}: {message.id!r} -> {text!r}: placeholders {sorted(got)}, "
                        f"expected {sorted(wanted)}"
                    )
                    continue
                try:
                    text.format(**dict.fromkeys(wanted, "1"))
                except (ValueError, IndexError, KeyError) as e:
                    problems.append(f"{lang}: {text!r} does not format: {e}")
    assert not problems, "\n".join(problems)


# --- the template matches the code ---------------------------------------------------------


def makefile_keywords() -> list[str]:
    """The -k options of the Makefile's ``translations`` target."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^translations:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "the Makefile has no translations target"
    extract = next(
        line for line in recipe.group(1).replace("\\\n", " ").splitlines() if "extract" in line
    )
    args = shlex.split(extract)
    return [args[i + 1] for i, a in enumerate(args) if a == "-k"]


def test_the_makefile_extracts_with_the_menu_keywords() -> None:
    assert makefile_keywords() == ["N_", "t", "gettext:2", "_t:2"]


def test_the_template_is_not_stale() -> None:
    keywords = DEFAULT_KEYWORDS.copy()  # pybabel extract adds -k to the default keywords
    keywords.update(parse_keywords(makefile_keywords()))
    with (ROOT / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f, "babel.cfg")
    extracted = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords
        )
    }
    in_pot = message_ids(read(POT))
    stale = sorted(in_pot - extracted)
    new = sorted(extracted - in_pot)
    assert not stale and not new, (
        f"locales/messages.pot is stale; run `make translations`.\n"
        f"  in the code but not in messages.pot: {new}\n"
        f"  in messages.pot but no longer in the code: {stale}"
    )


# --- compiling ---------------------------------------------------------------------------


@pytest.fixture
def locales(tmp_path: Path) -> Path:
    """A copy of locales/ with every catalog compiled (.mo files are not in git)."""
    copy = tmp_path / "locales"
    shutil.copytree(LOCALES, copy, ignore=shutil.ignore_patterns("*.mo"))
    compile_catalogs(copy, LANGUAGES)
    assert all(mo_path(copy, lang).exists() for lang in LANGUAGES)
    return copy


def mo_path(locales: Path, lang: str) -> Path:
    return po_path(locales, lang).with_suffix(".mo")


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look ``seconds`` older than now."""
    past = path.stat().st_mtime - seconds
    os.utime(path, (past, past))


def translate(mo: Path, message: str) -> str:
    with mo.open("rb") as f:
        return gettext.GNUTranslations(f).gettext(message)


def test_compile_writes_a_missing_mo(locales: Path) -> None:
    for lang in LANGUAGES:
        mo_path(locales, lang).unlink(missing_ok=True)
    compiled = compile_catalogs(locales, LANGUAGES)
    assert sorted(compiled) == sorted(mo_path(locales, lang) for lang in LANGUAGES)
    hi = read(po_path(locales, "hi"), "hi")
    assert translate(mo_path(locales, "hi"), "Back") == hi["Back"].string != "Back"


def test_compile_rewrites_an_older_mo_and_leaves_a_fresh_one(locales: Path) -> None:
    compile_catalogs(locales, LANGUAGES)
    stale, fresh = mo_path(locales, "hi"), mo_path(locales, "en_IN")
    age(stale, 3600)
    age(po_path(locales, "en_IN"), 3600)
    before_fresh = (fresh.stat().st_mtime_ns, fresh.read_bytes())
    # Change a translation: the stale .mo must pick it up.
    po = po_path(locales, "hi")
    catalog = read(po, "hi")
    catalog["Back"].string = "वापस"
    with po.open("wb") as f:
        write_po(f, catalog)

    assert compile_catalogs(locales, LANGUAGES) == [stale]
    assert translate(stale, "Back") == "वापस"
    assert (fresh.stat().st_mtime_ns, fresh.read_bytes()) == before_fresh
    assert compile_catalogs(locales, LANGUAGES) == [], "nothing is stale any more"


def test_compile_skips_a_language_without_a_catalog(locales: Path) -> None:
    assert compile_catalogs(locales, ["sw"]) == []
    assert not (locales / "sw").exists()


def test_compile_leaves_fuzzy_translations_out(locales: Path) -> None:
    po = po_path(locales, "hi")
    catalog = read(po, "hi")
    catalog["Back"].flags.add("fuzzy")
    with po.open("wb") as f:
        write_po(f, catalog, include_previous=False)
    mo_path(locales, "hi").unlink()
    compile_catalogs(locales, ["hi"])
    assert translate(mo_path(locales, "hi"), "Back") == "Back"
    assert translate(mo_path(locales, "hi"), "More") == read(po, "hi")["More"].string


# --- loading -------------------------------------------------------------------------------


def test_catalogs_translate_each_configured_language() -> None:
    catalogs = Catalogs(LOCALES, LANGUAGES)
    hi = read(po_path(LOCALES, "hi"), "hi")
    assert catalogs.gettext("hi", "Choose department:") == hi["Choose department:"].string
    assert catalogs.gettext("hi", "Choose department:") != "Choose department:"


def test_catalogs_fall_back_to_the_english_id() -> None:
    catalogs = Catalogs(LOCALES, [*LANGUAGES, "sw"])  # sw: configured, no catalog
    for lang in ("fr", "sw"):
        assert catalogs.gettext(lang, "Choose department:") == "Choose department:"
        assert catalogs.ngettext(lang, "{n} day", "{n} days", 1) == "{n} day"
        assert catalogs.ngettext(lang, "{n} day", "{n} days", 5) == "{n} days"
    assert catalogs.gettext("hi", "A message no catalog has") == "A message no catalog has"


def test_catalogs_read_a_po_newer_than_its_mo(locales: Path) -> None:
    po = po_path(locales, "hi")
    catalog = read(po, "hi")
    catalog["More"].string = "और"
    with po.open("wb") as f:
        write_po(f, catalog)
    age(mo_path(locales, "hi"), 3600)
    assert Catalogs(locales, ["hi"]).gettext("hi", "More") == "और"


# --- plural forms ---------------------------------------------------------------------------


def test_cldr_hindi_zero_takes_the_singular() -> None:
    hindi = Locale("hi")
    assert [hindi.plural_form(n) for n in (0, 1, 2, 5)] == ["one", "one", "other", "other"]
    english = Locale.parse("en_IN")
    assert [english.plural_form(n) for n in (0, 1, 2)] == ["other", "one", "other"]


@pytest.mark.parametrize(
    "lang",
    [
        pytest.param(lang, marks=pytest.mark.xfail(strict=True, reason=PLURAL_BUGS[lang]))
        if lang in PLURAL_BUGS
        else lang
        for lang in LANGUAGES
    ],
)
def test_ngettext_follows_cldr(locales: Path, lang: str) -> None:
    """A plural message added to the shipped catalog (its Plural-Forms header kept) picks
    the form CLDR's plural rule gives for each count."""
    po = po_path(locales, lang)
    catalog = read(po, lang)
    forms = [f"form{i} {{n}}" for i in range(catalog.num_plurals)]
    catalog.add(("{n} complaint", "{n} complaints"), string=tuple(forms))
    with po.open("wb") as f:
        write_po(f, catalog)
    mo_path(locales, lang).unlink(missing_ok=True)
    catalogs = Catalogs(locales, [lang])

    locale = Locale.parse(lang)
    categories = sorted({locale.plural_form(n) for n in range(1000)}, key=CLDR_ORDER.index)
    assert catalog.num_plurals == len(categories), (
        f"{lang}: Plural-Forms has {catalog.num_plurals} forms, CLDR {categories}"
    )
    wrong = []
    for n in range(201):
        want = forms[categories.index(locale.plural_form(n))]
        got = catalogs.ngettext(lang, "{n} complaint", "{n} complaints", n)
        if got != want:
            wrong.append(f"n={n}: {got!r}, CLDR says {locale.plural_form(n)!r} ({want!r})")
    assert not wrong, f"{lang} ({catalog.plural_forms}):\n" + "\n".join(wrong[:20])


def test_configured_names_are_in_the_template_with_what_they_name() -> None:
    """config.yaml's names are extracted (gateway.text.names) with their kind as msgctxt,
    once each."""
    entries = {(m.context, m.id) for m in read(POT) if m.context}
    raw = yaml.safe_load(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    wanted = {
        (context, message_id(texts, CONFIG.service.default_language))
        for context, texts in name_entries(raw)
    }
    assert entries == wanted
    assert ("department", "Revenue") in entries and ("place", "Theog") in entries
    assert {context for context, _ in entries} == set(NAME_CONTEXTS)


def language_table() -> str:
    """README's table of the languages: each language, what a Latin-only handset gets, the
    words its SMS tell citizens to send, the CLDR locale its dates are formatted with, and
    whether a native speaker has reviewed its catalog."""
    from gateway.app import catalogs_for
    from gateway.text.i18n import reviewed
    from gateway.text.reply_words import Vocabulary

    catalogs = catalogs_for(CONFIG)
    words = Vocabulary.load(LOCALES, LANGUAGES)
    lines = [
        "| code | language | handsets drawing another script get | Latin-only handsets get"
        " | yes / no | CLDR locale | reviewed by a native speaker |",
        "|---|---|---|---|---|---|---|",
    ]
    for lang in CONFIG.languages:
        name = f"{lang.name} ({lang.hint})" if lang.hint else lang.name
        others = ", ".join(f"{s}: `{code}`" for s, code in lang.scripts.items()) or "–"
        latin = CONFIG.sms_language(lang.code, latin_only=True)
        said = words.words_to_send(lang.code)
        review = {True: "yes", False: "no", None: "not said"}[reviewed(LOCALES, lang.code)]
        lines.append(
            f"| `{lang.code}` | {name} | {others} | `{latin}` | {said['yes_word']} / "
            f"{said['no_word']} | `{catalogs.locale(lang.code)}` | {review} |"
        )
    return "\n".join(lines)


def test_every_catalog_says_whether_a_native_speaker_reviewed_it() -> None:
    from gateway.text.i18n import reviewed

    assert all(reviewed(LOCALES, code) is not None for code in LANGUAGES)


def test_the_readme_shows_every_language_and_its_review() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme.split("<!-- languages-table -->\n", 1)[1].split("\n<!-- /languages-table")[0]
    assert shown == language_table(), "README.md: paste tests/test_catalogs.py's language_table()"


def test_the_review_mark_is_read_from_the_header_comment(tmp_path: Path) -> None:
    from gateway.text.i18n import REVIEW_MARK, reviewed

    po = tmp_path / "xx" / "LC_MESSAGES" / f"{DOMAIN}.po"
    po.parent.mkdir(parents=True)
    po.write_text(f'# Xx translations.\n{REVIEW_MARK} Yes\n#\nmsgid ""\n', encoding="utf-8")
    assert reviewed(tmp_path, "xx") is True
    po.write_text(f'# Xx translations.\n#\nmsgid ""\n{REVIEW_MARK} yes\n', encoding="utf-8")
    assert reviewed(tmp_path, "xx") is None, "only the header comment counts"
    assert reviewed(tmp_path, "yy") is None

"""Every offered language, hop by hop: choose it, register a complaint, check its status; and
what a Latin-only handset receives."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from babel.messages.pofile import read_po

from gateway.config import Config, ConfigError, load_config
from gateway.sms.notices import STATUS_WORDS
from gateway.sms.templates import TemplateBook
from gateway.storage.models import Citizen, Complaint, OutboundMessage
from gateway.text.encoding import Encoding, detect_encoding
from gateway.text.i18n import Catalogs
from tests.conftest import SHIPPED_CONFIG, AppFactory, Phone, make_config

SHIPPED = load_config(SHIPPED_CONFIG, environ={})
CODES = [lang.code for lang in SHIPPED.languages]
CATALOGS = Catalogs(SHIPPED.path(SHIPPED.paths.locales), CODES)


def labels(config: Config, code: str) -> set[str]:
    """What the language menus may call ``code``: its name, with its Latin hint where the
    first screen has room, or (on "More languages") its Latin name alone."""
    lang = config.language(code)
    assert lang is not None
    return {lang.name, f"{lang.name} ({lang.hint})", lang.hint or lang.name}


async def choose_language(phone: Phone, config: Config, code: str, screen: str) -> str:
    """Choose ``code`` on the first screen, or on the "More languages" screen whose letters
    span its Latin name ("अन्य/More A-K"; never a third screen: every language is within
    two); the main menu it shows."""
    wanted = labels(config, code)
    lang = config.language(code)
    assert lang is not None
    initial = (lang.hint or lang.name)[:1].upper()
    for line in screen.splitlines():
        key, _, rest = line.partition(" ")
        if rest in wanted:
            return await phone.send(key)
    more = [m for line in screen.splitlines() if (m := MORE_OPTION.match(line))]
    assert more, f"{code}: not on {screen!r}, which offers no more languages"
    spans = [m for m in more if not m["span"] or m["span"][0] <= initial <= m["span"][2]]
    assert len(spans) == 1, f"{code}: {len(spans)} More options span {initial!r}: {screen!r}"
    group = await phone.send(spans[0]["key"])
    assert "98 " not in group, f"a group of languages takes more than one screen: {group!r}"
    for line in group.splitlines():
        key, _, rest = line.partition(" ")
        if rest in wanted:
            return await phone.send(key)
    raise AssertionError(f"{code} is on neither the first screen nor {group!r}")


MORE_OPTION = re.compile(r"^(?P<key>\d+) (?:\S+/)?More(?: languages)?(?: (?P<span>[A-Z]-[A-Z]))?$")


async def choose(phone: Phone, screen: str, text: str) -> str:
    """Choose the option labelled ``text``, paging on (98) until a page shows it."""
    seen = [screen]
    for _ in range(20):
        for line in screen.splitlines():
            key, _, rest = line.partition(" ")
            if rest == text:
                return await phone.send(key)
        assert "98 " in screen, f"no option {text!r} on {seen!r}"
        screen = await phone.send("98")
        seen.append(screen)
    raise AssertionError(f"no option {text!r} on {seen!r}")


@pytest.mark.parametrize("code", CODES)
async def test_registration_and_status_check_in_every_language(
    client: TestClient[Any, Any], config: Config, code: str
) -> None:
    def t(message: str) -> str:
        return CATALOGS.gettext(code, message)

    number = f"+9198{CODES.index(code):08d}"
    phone = Phone(client, number=number)
    main = await choose_language(phone, config, code, await phone.dial())
    assert config.service.name[code] in main
    screen = await choose(phone, main, t("New complaint"))
    assert t("Choose department:") in screen
    dept = config.departments[0]
    screen = await choose(phone, screen, dept.name[code])
    assert t("Choose district:") in screen
    district = config.districts[0]
    screen = await choose(phone, screen, district.name[code])
    assert t("Choose block:") in screen
    block = district.blocks[0]
    screen = await choose(phone, screen, block.name[code])
    assert t("What is the problem?") in screen
    issue = dept.issues[0]
    confirm = await choose(phone, screen, issue.name[code])
    assert t("Confirm complaint:") in confirm and issue.name[code] in confirm
    done = await choose(phone, confirm, t("Submit"))
    assert phone.ended
    complaint = await Complaint.get(citizen__phone=number)
    assert complaint.ticket is not None and complaint.language == code
    end = t("Complaint registered. Ticket: {ticket}. You will get an SMS.")
    assert done == end.format(ticket=complaint.ticket)

    ack = await OutboundMessage.get(recipient=number)
    templates = TemplateBook.load(config.path(config.paths.sms_templates), languages=CODES)
    wanted = templates["complaint_registered"].texts[code].text
    fixed = [part for part in re.split(r"\{[a-z_]+\}", wanted) if part.strip()]
    assert all(part.strip() in ack.text for part in fixed), (ack.text, wanted)
    assert dept.name[code][:20] in ack.text
    lang = config.language(code)
    assert lang is not None
    if lang.latin:
        assert ack.encoding == Encoding.GSM7.value, ack.text

    # Dial again: the language is remembered; check the status by the ticket.
    screen = await choose(phone, await phone.dial(), t("Check status"))
    assert t("Type the ticket number:") in screen
    shown = await phone.send(complaint.ticket)
    assert complaint.ticket in shown
    assert t(STATUS_WORDS[complaint.status.value]) in shown
    assert dept.name[code] in shown


async def test_choosing_roman_hindi_marks_the_handset_latin_only(
    client: TestClient[Any, Any], config: Config
) -> None:
    phone = Phone(client, number="+919811100001")
    await choose_language(phone, config, "hi_Latn", await phone.dial())
    citizen = await Citizen.get(phone="+919811100001")
    assert citizen.language == "hi_Latn" and citizen.latin_only
    screen = await choose(phone, await phone.dial(), CATALOGS.gettext("hi_Latn", "Change language"))
    await choose_language(phone, config, "hi", screen)
    await citizen.refresh_from_db()
    assert citizen.language == "hi" and not citizen.latin_only


async def test_a_latin_only_handset_gets_its_hindi_sms_in_roman_letters(
    client: TestClient[Any, Any], config: Config
) -> None:
    number = "+919811100002"
    await Citizen.create(phone=number, language="hi", latin_only=True)
    phone = Phone(client, number=number)
    main = await phone.dial()
    assert "नई शिकायत" in main, "the menus stay in the language chosen"
    await phone.walk("1", "2", "9", "2", "1", "1")  # Jal Shakti, Shimla, Theog, no water
    assert phone.ended
    ack = await OutboundMessage.get(recipient=number)
    assert ack.encoding == Encoding.GSM7.value and ack.segments == 1, ack.text
    assert "shikayat" in ack.text.lower()
    assert config.departments[1].name["hi_Latn"] in ack.text


# The languages written in Latin letters as people text them (a Latin-only handset's).
ROMAN = ["hi_Latn", "sat_Latn"]


@pytest.mark.parametrize("code", ROMAN)
def test_roman_script_languages_are_gsm7_everywhere(code: str) -> None:
    """Menus, names and SMS texts in Roman Hindi and Roman Santali travel in GSM-7 (160
    characters an SMS)."""
    problems = []
    for message in _catalog_ids():
        text = CATALOGS.gettext(code, message)
        if detect_encoding(text) is not Encoding.GSM7:
            problems.append(f"catalog {message!r}: {text!r}")
    texts = [SHIPPED.service.name, *(lv.name for lv in SHIPPED.levels)]
    for d in SHIPPED.departments:
        texts += [d.name, *(i.name for i in d.issues)]
    for dist in SHIPPED.districts:
        texts += [dist.name, *(t.name for t in dist.tehsils), *(b.name for b in dist.blocks)]
    problems += [
        f"name {n['en_IN']!r}: {n[code]!r}"
        for n in texts
        if detect_encoding(n[code]) is not Encoding.GSM7
    ]
    book = TemplateBook.load(SHIPPED.path(SHIPPED.paths.sms_templates), languages=CODES)
    problems += [
        f"template {t.name}: {t.texts[code].text!r}"
        for t in book
        if detect_encoding(t.texts[code].text) is not Encoding.GSM7
    ]
    assert not problems, "\n".join(problems)


def _catalog_ids() -> list[str]:
    with SHIPPED.path(SHIPPED.paths.locales).joinpath("messages.pot").open("rb") as f:
        return [m.id for m in read_po(f) if m.id and isinstance(m.id, str) and not m.context]


def test_sms_language_for_a_latin_only_handset() -> None:
    assert SHIPPED.sms_language("hi", latin_only=True) == "hi_Latn"
    assert SHIPPED.sms_language("hi", latin_only=False) == "hi"
    assert SHIPPED.sms_language("hi_Latn", latin_only=True) == "hi_Latn"
    assert SHIPPED.sms_language("sat", latin_only=True) == "sat_Latn"
    assert SHIPPED.sms_language("sat", latin_only=False) == "sat"
    others = [x.code for x in SHIPPED.languages if not x.latin and x.code not in ("hi", "sat")]
    assert others and all(SHIPPED.sms_language(c, latin_only=True) == "en_IN" for c in others)


async def test_the_caller_s_network_circle_puts_its_languages_first(
    start_app: AppFactory, tmp_path: Path, database_url: str, redis_url: str
) -> None:
    # Phone dials from network 40445 (Airtel Karnataka): Kannada comes first.
    menu = {"first": ["hi", "en_IN", "hi_Latn", "pa"], "networks": {"40445": ["kn"]}}
    config = make_config(tmp_path, database_url, redis_url, language_menu=menu)
    client = await start_app(config)
    phone = Phone(client, number="+919811100003")
    first = (await phone.dial()).splitlines()
    assert first[1] == "1 ಕನ್ನಡ" and first[2] == "2 हिन्दी", first
    more = await phone.send(first[-1].split(" ", 1)[0])
    assert "Kannada" not in more and "Bangla" in more
    back = await phone.send("0")
    assert back.splitlines()[1] == "1 ಕನ್ನಡ"
    await phone.send("1")
    citizen = await Citizen.get(phone="+919811100003")
    assert citizen.language == "kn"


async def test_every_language_is_offered_on_one_screen_when_the_state_names_none(
    start_app: AppFactory, tmp_path: Path, database_url: str, redis_url: str
) -> None:
    """Without ``language_menu.first`` the first screen lists every language, paged."""
    config = make_config(tmp_path, database_url, redis_url, language_menu={"first": []})
    client = await start_app(config)
    phone = Phone(client, number="+919811100004")
    screens = [await phone.dial()]
    while "98 " in screens[-1]:
        screens.append(await phone.send("98"))
    listed = [line.split(" ", 1)[1] for s in screens for line in s.splitlines()[1:]]
    assert all(any(label in listed for label in labels(config, c)) for c in CODES)
    assert not any("More" in line for line in listed if not line.startswith(("98", "0 ")))


@pytest.mark.parametrize(
    ("menu", "error"),
    [
        ({"first": ["hi", "xx"]}, "language_menu.first: not configured languages: ['xx']"),
        ({"first": ["hi", "hi"]}, "language_menu.first"),
        ({"networks": {"40445": ["zz"]}}, "language_menu.networks.40445"),
        ({"networks": {"4044x": ["hi"]}}, "language_menu.networks.4044x"),
    ],
)
def test_the_language_menu_names_configured_languages(menu: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(SHIPPED_CONFIG, environ={}, overrides={"language_menu": menu})
    assert error in str(e.value)

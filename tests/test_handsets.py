"""What a citizen's handset draws: the per-number mark that picks the script of their SMS.

Staff mark a number from the console (the citizen told an agent their SMS show boxes); the
citizen's later SMS follow the mark, and only staff who may act on the complaint can set it.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import COMPLAINTS, LIFECYCLE, catalogs_for
from gateway.config import ConfigError, load_config
from gateway.storage.models import AuditRecord, Citizen, Complaint, OutboundMessage
from tests.conftest import SHIPPED_CONFIG
from tests.staff_helpers import ROLES, auth, make_staff_token
from tests.test_api_complaints import complaint
from tests.test_console import account, csrf, sign_in

SCRIPTED = [
    {"code": "en_IN", "name": "English", "latin": True},
    {"code": "hi", "name": "हिन्दी", "script": "Deva", "latin_alternative": "hi_Latn"},
    {"code": "hi_Latn", "name": "Hindi (Roman)", "latin": True},
    {"code": "ur", "name": "اردو", "script": "Arab", "scripts": {"Deva": "hi"}},
]


def scripted_config(languages: list[dict[str, Any]]) -> Any:
    overrides = {"languages": languages, "language_menu": {"first": []}}
    return load_config(SHIPPED_CONFIG, environ={}, overrides=overrides)


def test_a_number_marked_for_another_script_gets_the_language_written_in_it() -> None:
    config = scripted_config(SCRIPTED)
    assert config.sms_language("ur", latin_only=False, script=None) == "ur"
    assert config.sms_language("ur", latin_only=False, script="Arab") == "ur"
    assert config.sms_language("ur", latin_only=False, script="Deva") == "hi"
    # A script the language has no text in: its own script, as before the mark.
    assert config.sms_language("ur", latin_only=False, script="Beng") == "ur"
    # Latin-only wins: the language's Latin alternative (English for Urdu).
    assert config.sms_language("ur", latin_only=True, script="Deva") == "en_IN"
    assert config.sms_language("hi", latin_only=True, script=None) == "hi_Latn"


@pytest.mark.parametrize(
    ("scripts", "error"),
    [
        ({"Deva": "nowhere"}, "'nowhere' is not a configured language"),
        ({"Beng": "hi"}, "'hi' is not written in Beng"),
        ({"Latn": "hi_Latn"}, "Latin letters are latin_alternative's"),
    ],
)
def test_a_script_alternative_must_be_a_language_in_that_script(
    scripts: dict[str, str], error: str
) -> None:
    languages = [*SCRIPTED[:3], {**SCRIPTED[3], "scripts": scripts}]
    with pytest.raises(ConfigError) as refused:
        scripted_config(languages)
    assert f"languages[3].scripts.{next(iter(scripts))}: {error}" in str(refused.value)


async def test_an_agent_marks_a_number_latin_only_and_its_next_sms_is_in_roman_letters(
    client: TestClient[Any, Any],
) -> None:
    await account(client, "agent", **ROLES["agent"])
    c = await complaint(client)
    await sign_in(client, "agent")
    page = await (await client.get(f"/console/complaints/{c.ticket}")).text()
    assert "Citizen&#39;s phone shows" in page and 'value="Latn"' in page
    path = f"/console/complaints/{c.ticket}/handset"
    token = await csrf(client)

    wrong = await client.post(path, data={"csrf": token, "shows": "Arab"})
    assert wrong.status == 400 and "shows" in await wrong.text()
    done = await client.post(path, data={"csrf": token, "shows": "Latn"}, allow_redirects=False)
    assert done.status == 303
    citizen = await Citizen.get(id=c.citizen_id)  # type: ignore[attr-defined]
    assert citizen.latin_only
    assert await AuditRecord.filter(action="citizen.handset", target=c.ticket).count() == 1

    lifecycle = client.app[LIFECYCLE]
    await lifecycle.add_note(c.id, "Pipe laid", actor="test")
    sms = await OutboundMessage.filter(complaint_id=c.id, template="complaint_status_update").get()
    assert sms.language == "hi_Latn" and sms.encoding == "gsm7"

    again = await client.post(path, data={"csrf": token, "shows": "own"}, allow_redirects=False)
    assert again.status == 303
    await lifecycle.add_note(c.id, "Tank cleaned", actor="test")
    last = await OutboundMessage.filter(complaint_id=c.id, template="complaint_status_update")
    assert [m.language for m in sorted(last, key=lambda m: m.id)] == ["hi_Latn", "hi"]


async def test_staff_who_may_not_act_on_the_complaint_cannot_mark_its_number(
    client: TestClient[Any, Any],
) -> None:
    await account(client, "reviewer", **ROLES["state_reviewer"])
    await account(client, "elsewhere", **ROLES["district_admin_elsewhere"])
    c = await complaint(client)
    await sign_in(client, "reviewer")
    token = await csrf(client)
    path = f"/console/complaints/{c.ticket}/handset"
    refused = await client.post(path, data={"csrf": token, "shows": "Latn"})
    assert refused.status == 403
    page = await (await client.get(f"/console/complaints/{c.ticket}")).text()
    assert 'name="shows"' not in page  # shown, not offered
    await client.post("/console/signout", data={"csrf": token})
    await sign_in(client, "elsewhere")
    token = await csrf(client)
    hidden = await client.post(path, data={"csrf": token, "shows": "Latn"})
    assert hidden.status == 404
    assert not (await Citizen.get(id=c.citizen_id)).latin_only  # type: ignore[attr-defined]


async def test_the_api_marks_a_number_as_the_console_does(client: TestClient[Any, Any]) -> None:
    agent = await make_staff_token(client, "agent", **ROLES["agent"])
    elsewhere = await make_staff_token(client, "elsewhere", **ROLES["district_admin_elsewhere"])
    c = await complaint(client)
    path = f"/api/v1/complaints/{c.ticket}/handset"
    marked = await client.post(path, json={"shows": "Latn"}, headers=auth(agent))
    assert marked.status == 200
    assert await marked.json() == {"ticket": c.ticket, "shows": "Latn", "choices": ["own", "Latn"]}
    wrong = await client.post(path, json={"shows": "Deva"}, headers=auth(agent))
    assert wrong.status == 400 and (await wrong.json())["error"]["field"] == "shows"
    hidden = await client.post(path, json={"shows": "own"}, headers=auth(elsewhere))
    assert hidden.status == 404
    assert (await Citizen.get(id=c.citizen_id)).latin_only  # type: ignore[attr-defined]


def test_a_language_babel_has_no_locale_for_must_name_the_one_it_follows() -> None:
    roman_santali = {"code": "sat_Latn", "name": "Santali (Roman)", "latin": True}
    with pytest.raises(ConfigError) as refused:
        scripted_config([*SCRIPTED, roman_santali])
    assert "languages[4].cldr_locale: babel has no CLDR locale 'sat_Latn'" in str(refused.value)
    config = scripted_config([*SCRIPTED, {**roman_santali, "cldr_locale": "sat"}])
    assert str(catalogs_for(config).locale("sat_Latn")) == "sat"


async def test_a_kashmiri_citizen_whose_phone_draws_devanagari_gets_kashmiri_in_it(
    client: TestClient[Any, Any],
) -> None:
    """Choosing Kashmiri (Devanagari) marks the number; so can an agent, for a citizen who
    chose Kashmiri in Perso-Arabic and then saw boxes."""
    services = client.app[COMPLAINTS]
    await services.set_language("+919812399001", "ks_Deva")
    chosen = await Citizen.get(phone="+919812399001")
    assert (chosen.language, chosen.script, chosen.latin_only) == ("ks_Deva", "Deva", False)
    await services.set_language("+919812399001", "ks")
    assert (await Citizen.get(phone="+919812399001")).script == "Arab"

    await account(client, "agent", **ROLES["agent"])
    c = await complaint(client, phone="+919812399002")
    await Complaint.filter(id=c.id).update(language="ks")
    await Citizen.filter(id=c.citizen_id).update(language="ks", script="Arab")  # type: ignore[attr-defined]
    await sign_in(client, "agent")
    page = await (await client.get(f"/console/complaints/{c.ticket}")).text()
    assert 'value="Deva">Devanagari</option>' in page
    token = await csrf(client)
    path = f"/console/complaints/{c.ticket}/handset"
    done = await client.post(path, data={"csrf": token, "shows": "Deva"}, allow_redirects=False)
    assert done.status == 303
    await client.app[LIFECYCLE].add_note(c.id, "Pipe laid", actor="test")
    sms = await OutboundMessage.filter(complaint_id=c.id, template="complaint_status_update").get()
    assert sms.language == "ks_Deva"

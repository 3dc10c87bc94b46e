"""Providers own their details: the registry builds them and the configuration from their
own settings, the domain never reads a provider's status words or codes, inbound messages
are recorded under the provider that received them, the DLT IDs reach the provider's send,
and a provider enforces the callback limits it is given (it does not read the database).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import CAMPAIGNS, PROVIDERS, callback_limits
from gateway.campaigns.audience import ComplaintFilter
from gateway.channels.africastalking.parse import parse_ussd_hop
from gateway.channels.africastalking.provider import AfricasTalking
from gateway.channels.africastalking.settings import AfricasTalkingSettings
from gateway.channels.base import CALLBACKS, InboundSms, PayloadError
from gateway.channels.registry import PROVIDERS as REGISTRY
from gateway.channels.registry import build_providers
from gateway.channels.simulator.provider import Simulator
from gateway.complaints.scope import scope_of
from gateway.config import ENV_OVERRIDES, Config, ConfigError, load_config
from gateway.storage import limits
from gateway.storage.models import InboundMessage, OutboundMessage, UssdSession
from gateway.web.callbacks import GatewayCallbacks
from tests.conftest import ROOT, SHIPPED_CONFIG, AppFactory, make_config, run_worker
from tests.test_campaigns import VARIABLES, complaint, district_admin, number, run_bulk
from tests.test_lifecycle import sms
from tests.test_outbox import CITIZEN, register

ENTITY_ID = "1101234567890123456"

# ------------------------------------------------------------------------------ registry


def test_every_registered_provider_is_built_under_its_own_name(config: Config) -> None:
    built = build_providers(config, limits=callback_limits())
    assert list(built) == list(REGISTRY)
    for name, provider in built.items():
        assert provider.name == name
    assert isinstance(built["simulator"], Simulator)
    assert isinstance(built["africastalking"], AfricasTalking)


def test_the_configuration_takes_each_providers_settings_and_variables_from_the_registry(
    config: Config,
) -> None:
    for name, entry in REGISTRY.items():
        if entry.settings is None:
            assert config.sms.settings_of(name) is None
            continue
        assert type(config.sms.settings_of(name)) is entry.settings
        for variable, setting in entry.env.items():
            assert ENV_OVERRIDES[variable] == (("sms", name, setting), str)
            assert setting in entry.settings.model_fields
        for setting in entry.required:
            assert setting in entry.settings.model_fields


def test_the_africastalking_provider_gets_its_settings_from_the_environment(
    config: Config,
) -> None:
    loaded = load_config(
        SHIPPED_CONFIG,
        environ={"AT_USERNAME": "hpgrievance", "AT_API_KEY": "k", "AT_SENDER_ID": "HPCMHL"},
    )
    at = build_providers(loaded, limits=callback_limits())["africastalking"]
    assert isinstance(at, AfricasTalking)
    assert at.api.username == "hpgrievance" and at.api.sender_id == "HPCMHL"
    assert at.messaging_url == "https://api.africastalking.com/version1/messaging"


def test_a_provider_that_sends_without_its_required_setting_names_the_variable() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(SHIPPED_CONFIG, environ={"SMS_PROVIDER": "africastalking"})
    assert str(raised.value).endswith(
        "sms: africastalking.api_key is required when provider is africastalking (AT_API_KEY)"
    )


def test_dlt_entity_id_comes_from_the_file_or_the_environment(tmp_path: Path) -> None:
    assert load_config(SHIPPED_CONFIG, environ={}).sms.dlt_entity_id is None
    loaded = load_config(SHIPPED_CONFIG, environ={"DLT_ENTITY_ID": ENTITY_ID})
    assert loaded.sms.dlt_entity_id == ENTITY_ID
    with pytest.raises(ConfigError, match=r"sms\.dlt_entity_id: .*environment variable DLT_ENT"):
        load_config(SHIPPED_CONFIG, environ={"DLT_ENTITY_ID": "HP-GOVT"})


def test_reading_the_configuration_does_not_load_a_provider() -> None:
    """The configuration reads the providers' settings; their HTTP client (aiohttp, most of
    a second to import) is loaded only by what builds a provider, not by every command."""
    code = (
        "import sys, gateway.config; "
        "loaded = sorted(m for m in sys.modules if m.startswith(('aiohttp', 'gateway.channels')));"
        "print(loaded)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "aiohttp" not in out
    assert "gateway.channels.africastalking.settings" in out
    assert "gateway.channels.africastalking.provider" not in out


# ------------------------------------------------------------ no provider words in the domain

DOMAIN = ("sms", "campaigns", "complaints", "web")
PROVIDER_WORDS = re.compile(r"userinblacklist|africastalking|\b406\b", re.IGNORECASE)


def test_the_domain_reads_no_provider_status_or_name() -> None:
    """Opting out, and which provider a message came by, are the providers' to say."""
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for room in DOMAIN
        for path in sorted((ROOT / "gateway" / room).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PROVIDER_WORDS.search(line)
    ]
    assert found == []


def test_the_channels_import_neither_storage_nor_the_domain() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in sorted((ROOT / "gateway" / "channels").rglob("*.py"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.match(
            r"\s*(from|import) gateway\.(storage|complaints|sms|campaigns|web|jobs|app)", line
        )
    ]
    assert found == []


# --------------------------------------------------------------------------- callback limits


def test_the_callback_limits_are_the_columns() -> None:
    got = callback_limits()
    assert got.ussd_session_id == limits.max_length(UssdSession, "session_id")
    assert got.inbound_message_id == limits.max_length(InboundMessage, "provider_message_id")
    assert got.outbound_message_id == limits.max_length(OutboundMessage, "provider_message_id")
    assert got.ussd_hops == limits.int_range(UssdSession, "hops")


def test_a_provider_enforces_the_limits_it_is_given() -> None:
    hop = {"sessionId": "S" * 20, "serviceCode": "*1100#", "phoneNumber": CITIZEN, "text": ""}
    assert parse_ussd_hop(hop, limits=callback_limits()).session_id == "S" * 20
    narrow = dataclasses.replace(callback_limits(), ussd_session_id=10)
    with pytest.raises(PayloadError) as raised:
        parse_ussd_hop(hop, limits=narrow)
    assert str(raised.value) == "sessionId: longer than 10 characters (20)"


async def test_the_provider_routes_answer_400_past_the_limits_they_are_given(
    aiohttp_client: Any,
) -> None:
    from aiohttp import web

    narrow = dataclasses.replace(callback_limits(), inbound_message_id=5)
    at = AfricasTalking(AfricasTalkingSettings(), region="IN", limits=narrow)
    app = web.Application()
    app.add_routes(at.routes())
    client = await aiohttp_client(app)
    form = {"from": CITIZEN, "to": "51100", "text": "HELP", "id": "ATXid_long"}
    resp = await client.post("/sms/africastalking/inbound", data=form)  # the bare routes
    assert (resp.status, await resp.text()) == (400, "id: longer than 5 characters (10)")


# ------------------------------------------------------------- inbound: who received it


async def test_an_inbound_sms_is_recorded_with_the_provider_that_received_it(
    app_client: TestClient[Any, Any],
) -> None:
    assert await sms(app_client, CITIZEN, "HELP", msg_id="MSG-1") == 200
    callbacks = cast(GatewayCallbacks, app_client.app[CALLBACKS])
    # Another provider's message with the same ID is another message, not a duplicate.
    await callbacks.inbound_sms(
        InboundSms("MSG-1", sender=CITIZEN, recipient="51100", text="HELP", provider="kaleyra")
    )
    rows = await InboundMessage.filter(provider_message_id="MSG-1").order_by("id")
    assert [(r.provider, r.intent) for r in rows] == [
        ("africastalking", "help"),
        ("kaleyra", "help"),
    ]


# --------------------------------------------------------------- DLT IDs reach the provider


@pytest.fixture
async def dlt_client(
    start_app: AppFactory, tmp_path: Path, database_url: str, redis_url: str
) -> TestClient[Any, Any]:
    config = make_config(
        tmp_path,
        database_url,
        redis_url,
        sms={"dlt_entity_id": ENTITY_ID},
        bulk={"segments_per_second": 1000, "quiet_hours": None},
    )
    return await start_app(config)


def simulator_of(client: TestClient[Any, Any]) -> Simulator:
    return cast(Simulator, client.app[PROVIDERS]["simulator"])


async def test_a_messages_dlt_template_and_entity_ids_reach_the_provider(
    dlt_client: TestClient[Any, Any],
) -> None:
    ack = await register(dlt_client)
    await run_worker(dlt_client.app)
    await ack.refresh_from_db()
    assert ack.status == "delivered" and ack.dlt_template_id == "1107000000000000001"
    (kept,) = simulator_of(dlt_client).sent_to(CITIZEN)
    assert kept["text"] == ack.text
    assert (kept["dlt_template_id"], kept["dlt_entity_id"]) == (ack.dlt_template_id, ENTITY_ID)


async def test_a_campaigns_dlt_ids_reach_the_provider_one_template_per_language(
    dlt_client: TestClient[Any, Any],
) -> None:
    await complaint(number(1), language="hi")
    await complaint(number(2), language="en_IN")
    admin, _ = await district_admin(dlt_client)
    campaigns = dlt_client.app[CAMPAIGNS]
    campaign = await campaigns.create(
        admin,
        scope_of(admin, campaigns.config),
        template="area_update",
        variables=VARIABLES,
        audience=ComplaintFilter(block="theog"),
        actor="t",
    )
    await campaigns.start(campaign, actor="t")
    await run_bulk(dlt_client)
    rendered = campaigns.render_all("area_update", VARIABLES)
    for phone, language in ((number(1), "hi"), (number(2), "en_IN")):
        (kept,) = simulator_of(dlt_client).sent_to(phone)
        assert kept["text"] == rendered[language].text
        assert kept["dlt_template_id"] == rendered[language].dlt_template_id
        assert kept["dlt_entity_id"] == ENTITY_ID
    assert rendered["hi"].dlt_template_id != rendered["en_IN"].dlt_template_id

"""Callbacks no one can forge: every provider callback path carries the provider's secret,
kept in the database; a wrong or missing one answers 404, is counted and changes nothing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from gateway.__main__ import main
from gateway.app import SIGNER
from gateway.channels.signing import CallbackSigner, provider_of, signed_path
from gateway.config import ConfigError
from gateway.storage.models import Complaint, InboundMessage
from tests.conftest import SHIPPED_CONFIG, AppFactory, Phone, make_config, signed

OFFICER = "+919800100001"  # Jal Shakti, Theog (config.yaml)
CITIZEN = "+919811112222"
INBOUND = "/sms/africastalking/inbound"


async def register(client: TestClient[Any, Any]) -> Complaint:
    phone = Phone(client, number=CITIZEN)
    await phone.dial()
    await phone.walk("2", "1", "2", "9", "2", "1", "1")  # English, Jal Shakti, Shimla, Theog
    assert phone.ended
    complaint = await Complaint.filter(citizen__phone=CITIZEN).first()
    assert complaint is not None and complaint.status == "assigned"
    return complaint


def done(ticket: str, message_id: str) -> dict[str, str]:
    """AT's inbound SMS form: the officer's "<ticket> DONE"."""
    return {
        "from": OFFICER,
        "to": "51100",
        "text": f"{ticket} DONE Pipeline repaired",
        "date": "2026-11-23 10:15:02",
        "id": message_id,
    }


async def test_a_forged_done_without_the_secret_changes_nothing_and_gets_404(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    complaint = await register(client)
    assert complaint.ticket is not None
    secret = signed(client, INBOUND).split("/")[3]
    signer = client.app[SIGNER]
    before = signer.refused["africastalking"]
    forged = [
        INBOUND,  # the old unsigned path
        signed_path(INBOUND, "x" * len(secret)),  # a guess
        signed_path(INBOUND, secret[:-1]),  # all but one character
        signed_path(INBOUND, secret + "x"),
    ]
    with caplog.at_level(logging.WARNING):
        for n, path in enumerate(forged):
            resp = await client.post(path, data=done(complaint.ticket, f"ATXid_forged{n}"))
            assert resp.status == 404, path
            assert await resp.text() == "404: Not Found"  # as for any unknown path
        empty = await client.post(signed_path(INBOUND, ""), data=done(complaint.ticket, "x"))
        assert empty.status == 404  # no route at all: not a callback, not counted
    await complaint.refresh_from_db()
    assert complaint.status == "assigned"
    assert not await InboundMessage.exists()
    assert signer.refused["africastalking"] == before + len(forged)
    refusals = [r.getMessage() for r in caplog.records if "callback refused" in r.getMessage()]
    assert len(refusals) == len(forged)
    assert all(secret[:-1] not in line for line in refusals)  # no secret, whole or in part

    resp = await client.post(signed(client, INBOUND), data=done(complaint.ticket, "ATXid_real"))
    assert resp.status == 200, await resp.text()
    await complaint.refresh_from_db()
    assert complaint.status == "resolved"


async def test_every_callback_path_has_its_secret(client: TestClient[Any, Any]) -> None:
    """The USSD hop, its end notice and the delivery report too: 404 without the secret."""
    for path in (
        "/ussd/africastalking",
        "/ussd/africastalking/events",
        "/sms/africastalking/delivery",
        INBOUND,
    ):
        assert (await client.post(path, data={})).status == 404, path
        assert (await client.post(signed_path(path, "wrong" * 8), data={})).status == 404, path
        garbled = URL(signed_path(path, "%ED%A0%80%00%FF"), encoded=True)
        assert (await client.post(garbled, data={})).status == 404, path
        # Signed, the route answers: 400 naming the first missing field.
        assert (await client.post(signed(client, path), data={})).status == 400, path


async def test_the_unsigned_paths_work_only_while_allowed(
    start_app: AppFactory, tmp_path: Path, database_url: str, redis_url: str
) -> None:
    config = make_config(tmp_path, database_url, redis_url, callbacks={"allow_unsigned": True})
    client = await start_app(config)
    screen = await client.post(
        "/ussd/africastalking",
        data={
            "sessionId": "ATUid_unsigned",
            "serviceCode": "*1100#",
            "phoneNumber": CITIZEN,
            "networkCode": "40445",
            "text": "",
        },
    )
    assert screen.status == 200 and (await screen.text()).startswith("CON ")
    assert client.app[SIGNER].unsigned["africastalking"] == 1
    # The signed path works as well, and a wrong secret is still refused.
    assert (await client.post(signed(client, INBOUND), data={})).status == 400
    assert (await client.post(signed_path(INBOUND, "wrong" * 8), data={})).status == 404


async def test_the_secret_is_generated_once_and_kept(
    start_app: AppFactory, tmp_path: Path, new_database: Any, redis_url: str, capsys: Any
) -> None:
    config = make_config(tmp_path, new_database(), redis_url)
    first = await start_app(config)
    path = signed(first, INBOUND)
    printed = capsys.readouterr().out
    assert f"http://127.0.0.1:8080{path}\n" in printed  # told once, with the URLs
    await first.close()
    again = await start_app(config)
    assert signed(again, INBOUND) == path  # kept in the database
    assert "Callback URLs" not in capsys.readouterr().out


async def test_a_configured_secret_is_used(
    start_app: AppFactory, tmp_path: Path, database_url: str, redis_url: str
) -> None:
    secret = "chosen-secret-0123456789"
    config = make_config(
        tmp_path, database_url, redis_url, callbacks={"secrets": {"africastalking": secret}}
    )
    client = await start_app(config)
    assert signed(client, INBOUND) == f"/sms/africastalking/{secret}/inbound"


@pytest.mark.parametrize(
    ("callbacks", "problem"),
    [
        ({"secrets": {"africastalking": "short"}}, "callbacks.secrets.africastalking"),
        ({"secrets": {"simulator": "s" * 20}}, "not a provider with callbacks"),
        ({"public_url": "ftp://example.in"}, "callbacks.public_url"),
        ({"allowed_networks": {"africastalking": ["10.0.0.300/8"]}}, "allowed_networks"),
        ({"allowed_networks": {"nobody": ["10.0.0.0/8"]}}, "not a provider with callbacks"),
    ],
)
def test_bad_callback_settings_are_refused(
    tmp_path: Path, callbacks: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        make_config(tmp_path, "sqlite:///x.db", "redis://x", callbacks=callbacks)


def test_the_callbacks_command_prints_every_url_one_a_line(
    new_database: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("DATABASE_URL", new_database())
    monkeypatch.setenv("PUBLIC_URL", "https://sampark.example.in/")
    main(["--config", str(SHIPPED_CONFIG), "migrate"])  # commands refuse a new database
    capsys.readouterr()
    main(["--config", str(SHIPPED_CONFIG), "callbacks"])
    lines = capsys.readouterr().out.splitlines()
    urls = [line for line in lines if line.startswith("https://")]
    at, exotel, imi = (urls[i].split("/")[5] for i in (0, 4, 6))
    assert len({at, exotel, imi}) == 3  # a secret per provider
    assert urls == [
        f"https://sampark.example.in/ussd/africastalking/{at}",
        f"https://sampark.example.in/ussd/africastalking/{at}/events",
        f"https://sampark.example.in/sms/africastalking/{at}/delivery",
        f"https://sampark.example.in/sms/africastalking/{at}/inbound",
        f"https://sampark.example.in/sms/exotel/{exotel}/delivery",
        f"https://sampark.example.in/calls/exotel/{exotel}/missed",
        f"https://sampark.example.in/ussd/imimobile/{imi}",
    ]
    # Again, the same URLs (the secret is kept), and one alone by its path.
    main(["--config", str(SHIPPED_CONFIG), "callbacks"])
    assert capsys.readouterr().out.splitlines() == urls
    main(["--config", str(SHIPPED_CONFIG), "callbacks", "--path", "/ussd/africastalking/events"])
    assert capsys.readouterr().out.splitlines() == [urls[1]]


def test_signed_paths() -> None:
    assert signed_path("/ussd/africastalking", "S") == "/ussd/africastalking/S"
    assert signed_path("/sms/exotel/delivery", "S") == "/sms/exotel/S/delivery"
    assert provider_of("/calls/exotel/missed") == "exotel"
    with pytest.raises(ValueError):
        provider_of("/healthz")
    signer = CallbackSigner(public_url="https://x.in/")
    assert signer.url("/sms/africastalking/inbound") is None  # not armed
    signer.arm({"africastalking": "abc"})
    assert (
        signer.url("/sms/africastalking/inbound") == "https://x.in/sms/africastalking/abc/inbound"
    )
    assert "abc" not in repr(signer)


@pytest.mark.parametrize(("networks", "status"), [(["10.0.0.0/8"], 404), (["127.0.0.0/8"], 400)])
async def test_a_provider_may_be_held_to_its_address_ranges(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    networks: list[str],
    status: int,
) -> None:
    """``callbacks.allowed_networks``: with the secret, from outside the ranges: 404."""
    config = make_config(
        tmp_path,
        database_url,
        redis_url,
        callbacks={"allowed_networks": {"africastalking": networks}},
    )
    client = await start_app(config)
    before = client.app[SIGNER].refused["africastalking"]
    assert (await client.post(signed(client, INBOUND), data={})).status == status
    assert client.app[SIGNER].refused["africastalking"] == before + (status == 404)
    # Another provider's callbacks are not held to AT's ranges.
    exotel = signed(client, "/sms/exotel/delivery")
    assert (await client.post(exotel, data={})).status == 400

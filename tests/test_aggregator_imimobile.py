"""The second USSD aggregator format, IMImobile's HTTP interface (as vumi implemented it):
``msisdn``, ``msg`` (the latest input only), ``code``, ``tid``, ``dcs``; the screen as the
body, ``X-USSD-SESSION`` 1 to continue or 0 to end; "Map Dialog User Abort" a hang-up. The
same menus run unchanged."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import CONFIG, callback_limits
from gateway.channels.base import PayloadError, UssdHop, UssdSessionEnd
from gateway.channels.imimobile.parse import parse_request, session_key
from gateway.cli.simulate import AGGREGATORS, run_simulator
from gateway.config import ConfigError, load_config
from gateway.storage.models import Complaint, UssdSession
from tests.conftest import SHIPPED_CONFIG, signed

USSD = "/ussd/imimobile"
ABORT = "Map Dialog User Abort User Reason"


@dataclass
class ImiPhone:
    """A phone dialling the gateway through IMImobile: each request carries only the
    newest input, the first the dialled string."""

    client: TestClient[Any, Any]
    msisdn: str = "919812300077"  # IMImobile writes numbers without the +
    code: str = "*1100#"
    method: str = "GET"
    tid: str = ""
    ended: bool = False
    screens: list[str] = field(default_factory=list)

    async def _request(self, msg: str) -> str:
        fields = {"msisdn": self.msisdn, "msg": msg, "code": self.code, "tid": self.tid}
        fields["dcs"] = "15"
        path = signed(self.client, USSD)
        if self.method == "GET":
            resp = await self.client.get(path, params=fields)
        else:
            resp = await self.client.post(path, data=fields)
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "text/plain"
        flag = resp.headers["X-USSD-SESSION"]
        assert flag in ("0", "1")
        self.ended = flag == "0"
        screen = await resp.text()
        self.screens.append(screen)
        return screen

    async def dial(self) -> str:
        self.tid = str(uuid.uuid4().int % 10**10)
        self.ended = False
        return await self._request(self.code)

    async def send(self, *inputs: str) -> str:
        screen = ""
        for value in inputs:
            assert not self.ended, "the session has ended"
            screen = await self._request(value)
        return screen

    async def hang_up(self) -> str:
        return await self._request(ABORT)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_whole_registration_with_a_hang_up_and_a_resume(
    client: TestClient[Any, Any], method: str
) -> None:
    phone = ImiPhone(client, method=method)
    first = await phone.dial()
    assert "English" in first and not phone.ended  # a new number: the language list
    # English, new complaint, Jal Shakti: the same menus as on Africa's Talking.
    screen = await phone.send("2", "1", "2")
    assert "Shimla" in screen
    dropped_tid = phone.tid
    assert await phone.hang_up() == "" and phone.ended

    session = await UssdSession.get(session_id=session_key(f"+{phone.msisdn}", dropped_tid))
    assert session.end_status == "Aborted" and session.phone == f"+{phone.msisdn}"
    assert not await Complaint.exists()

    # A new transaction: the unfinished complaint is offered, and continued.
    again = await phone.dial()
    assert "unfinished complaint" in again
    screen = await phone.send("1")
    assert "Shimla" in screen  # back where it stopped
    # Shimla, Theog, no water supply, submit: "1" twice in a row is two inputs.
    done = await phone.send("9", "2", "1", "1")
    assert phone.ended and "Ticket" in done, done
    complaint = await Complaint.get(citizen__phone=f"+{phone.msisdn}")
    assert (complaint.department, complaint.block) == ("jal_shakti", "theog")


async def test_a_code_dialled_with_inputs_goes_straight_there(
    client: TestClient[Any, Any],
) -> None:
    phone = ImiPhone(client, msisdn="919812300078", code="*1100*2#")
    screen = await phone.dial()  # language 2: English, straight to the main menu
    assert "New complaint" in screen and not phone.ended


async def test_a_request_without_the_secret_gets_404(client: TestClient[Any, Any]) -> None:
    fields = {"msisdn": "919812300079", "msg": "*1100#", "code": "*1100#", "tid": "1"}
    assert (await client.get(USSD, params=fields)).status == 404
    assert (await client.get(USSD + "/wrongsecret0123456789", params=fields)).status == 404


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"msg": "1", "code": "*1100#", "tid": "1"}, "msisdn"),
        ({"msisdn": "91abc", "msg": "1", "code": "*1100#", "tid": "1"}, "msisdn"),
        ({"msisdn": "919812300079", "code": "*1100#", "tid": "1"}, "msg"),
        ({"msisdn": "919812300079", "msg": "1", "tid": "1"}, "code"),
        ({"msisdn": "919812300079", "msg": "1", "code": "*1100#"}, "tid"),
        ({"msisdn": "919812300079", "msg": "1", "code": "*1100#", "tid": "x" * 300}, "tid"),
    ],
)
async def test_a_request_missing_a_field_gets_400_naming_it(
    client: TestClient[Any, Any], fields: dict[str, str], name: str
) -> None:
    resp = await client.get(signed(client, USSD), params=fields)
    assert resp.status == 400
    assert (await resp.text()).startswith(f"{name}: ")
    assert resp.headers["X-USSD-SESSION"] == "0"


@pytest.mark.parametrize(
    ("msg", "text", "latest_only"),
    [
        ("*1100#", "", False),
        ("*1100*2*1#", "2*1", False),
        ("1", "1", True),
        ("Paani nahi * aata", "Paani nahi * aata", True),
    ],
)
def test_parsing_the_dialled_string_and_the_latest_input(
    msg: str, text: str, latest_only: bool
) -> None:
    hop = parse_request(
        {"msisdn": "09812300077", "msg": msg, "code": "*1100#", "tid": "77", "dcs": "15"},
        limits=callback_limits(),
        region="IN",
    )
    assert isinstance(hop, UssdHop)
    assert (hop.session_id, hop.phone, hop.service_code) == (
        session_key("+919812300077", "77"),
        "+919812300077",
        "*1100#",
    )
    assert "9812300077" not in hop.session_id  # the session ID is logged: no number in it
    assert (hop.text, hop.latest_only, hop.provider) == (text, latest_only, "imimobile")


def test_parsing_a_hang_up() -> None:
    end = parse_request(
        {"msisdn": "919812300077", "msg": ABORT, "code": "*1100#", "tid": "77"},
        limits=callback_limits(),
        region="IN",
    )
    assert isinstance(end, UssdSessionEnd)
    assert (end.session_id, end.status) == (session_key("+919812300077", "77"), "Aborted")
    assert session_key("+919812300077", "78") != end.session_id
    with pytest.raises(PayloadError):
        parse_request({"msisdn": "919812300077"}, limits=callback_limits(), region="IN")


def test_an_aggregator_cannot_send_the_gateways_sms() -> None:
    with pytest.raises(ConfigError, match="imimobile is a USSD aggregator"):
        load_config(SHIPPED_CONFIG, environ={"SMS_PROVIDER": "imimobile"})


@pytest.mark.parametrize("aggregator", ["imimobile", "africastalking"])
async def test_the_phone_simulator_registers_through_either_aggregator(
    client: TestClient[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    aggregator: str,
) -> None:
    """``python -m gateway simulate --aggregator imimobile``: the same session, typed."""
    typed = iter(["", "2", "1", "2", "9", "2", "1", "1", "q"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(typed))
    dialler = AGGREGATORS[aggregator]
    status = await run_simulator(
        client.app[CONFIG],
        base_url=str(client.make_url("/")),
        phone="+919812300080",
        hop_path=signed(client, dialler.path),
        dialler=dialler,
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "Choose department" in out and "Ticket" in out
    assert await Complaint.filter(citizen__phone="+919812300080").count() == 1

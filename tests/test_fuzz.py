"""A seeded fuzzer at every callback route and staff API endpoint: whatever arrives, the
gateway answers below 500 and logs no ERROR.

Each request starts from a valid one and breaks a few of its parts: fields removed,
replaced by values at and past the columns' limits, NULs and other control characters,
numbers past the integer columns, lone surrogates (through JSON escapes), bytes that are
not UTF-8, other content types, deep nesting; tokens valid, wrong, or not UTF-8 at all.
Some requests go over a raw socket, as no well-behaved client would send them (control
characters in a header, after a valid token). The seed is fixed, so a failure reproduces:
the assertion names the requests that failed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from gateway.channels.base import CALLBACKS
from gateway.storage.models import MessageStatus, OutboundMessage, StaffRole
from gateway.web.callbacks import GatewayCallbacks
from tests.conftest import Phone, signed
from tests.staff_helpers import make_staff_token

SEED = 20261203
REQUESTS = 10_000
RAW_REQUESTS = 300
"""Of REQUESTS, how many go over a raw socket (each its own connection)."""

PHONE = "+919812345678"

# ------------------------------------------------------------------------------ values

LENGTHS = (15, 16, 17, 30, 31, 33, 40, 41, 60, 61, 100, 101, 128, 129, 161, 501, 1001, 2001)
ATOMS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x01\x02\x1f",
    "\t",
    "\r\n",
    "\u2028",
    "\ufeff",
    "\u200d",
    "9812345678",
    "9" * 30,
    "-1",
    "0",
    "32768",
    "2147483648",
    "-2147483649",
    "9223372036854775808",
    "1e400",
    "NaN",
    "inf",
    "3.0",
    "1.5",
    "पानी नहीं आता",
    "🙂" * 40,
    "' OR 1=1 --",
    "%00",
    "%",
    "*",
    "#",
    "1*2*3",
    "*" * 50,
    "null",
    "true",
    "[]",
    "{}",
    "+919812345678",
    "919812345678",
    "+91abc",
    "2026-13-01",
    "0000-01",
    "9999-12",
    "2026-11",
    "0001-01-01",
    "9999-12-31",
    "2026-11-23 10:15:02",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "\\",
    '"',
    "Success",
    "Failed",
    "jal_shakti",
    "shimla",
    "theog",
]
RAW_ATOMS = [b"%FF", b"%ED%A0%80", b"%00", b"%C0%AF", b"\xff\xfe", b"%E0%A4"]
"""Percent-encoded or raw bytes that are not UTF-8 (only in bodies built by hand)."""


def nasty(rng: random.Random) -> str:
    if rng.random() < 0.25:
        return rng.choice("xé9*\x00") * rng.choice(LENGTHS)
    return rng.choice(ATOMS)


# ------------------------------------------------------------------------------ payloads


def ussd_hop(session_id: str, text: str = "") -> dict[str, str]:
    return {
        "sessionId": session_id,
        "serviceCode": "*1100#",
        "phoneNumber": PHONE,
        "networkCode": "40445",
        "text": text,
    }


def ussd_end(session_id: str) -> dict[str, str]:
    return {
        "sessionId": session_id,
        "serviceCode": "*1100#",
        "networkCode": "40445",
        "phoneNumber": PHONE,
        "status": "Success",
        "cost": "INR 0.0200",
        "durationInMillis": "48213",
        "hopsCount": "4",
        "input": "1",
        "lastAppResponse": "END Registered",
        "errorMessage": "",
        "date": "2026-11-23 10:15:02",
    }


def delivery(message_id: str) -> dict[str, str]:
    return {
        "id": message_id,
        "status": "Success",
        "phoneNumber": PHONE,
        "networkCode": "40445",
        "retryCount": "0",
        "failureReason": "",
    }


def inbound(message_id: str, text: str) -> dict[str, str]:
    return {
        "from": PHONE,
        "to": "51100",
        "text": text,
        "date": "2026-11-23 10:15:02",
        "id": message_id,
        "linkId": "SampleLinkId123",
        "networkCode": "40445",
    }


REGISTER = {
    "phone": "+919800200001",
    "department": "jal_shakti",
    "district": "shimla",
    "block": "theog",
    "issue_type": "pipeline_leak",
    "description": "No water for three days",
    "language": "en_IN",
}
CAMPAIGN = {
    "template": "area_update",
    "variables": {"service": "Water supply", "place": "Theog", "update": "restored"},
    "audience": {"filter": {"department": "jal_shakti", "block": "theog", "open_only": True}},
}
CAMPAIGN_CSV = {**CAMPAIGN, "audience": {"csv": "phone\n+919800200002\n9800200003\n"}}
LIST_QUERY = {
    "status": "registered",
    "department": "jal_shakti",
    "district": "shimla",
    "block": "theog",
    "level": "1",
    "overdue": "false",
    "from": "2026-01-01",
    "to": "2026-12-31",
    "q": "water",
    "limit": "10",
}
MONTH_QUERY = {"month": "2026-11", "district": "shimla", "department": "jal_shakti"}


# ------------------------------------------------------------------------------ requests


@dataclass
class Request:
    method: str
    path: str
    """Already percent-encoded where it must be."""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None

    def describe(self) -> str:
        body = (self.body or b"")[:160]
        return f"{self.method} {self.path[:160]} {self.headers} {body!r}"


def _mutate_mapping(rng: random.Random, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with one to three fields removed or replaced, and maybe an unknown one."""
    out = dict(base)
    for _ in range(rng.randint(1, 3)):
        if not out:
            break
        name = rng.choice(list(out))
        roll = rng.random()
        if roll < 0.15:
            del out[name]
        elif roll < 0.25 and isinstance(out[name], dict):
            out[name] = _mutate_mapping(rng, out[name])
        else:
            out[name] = nasty(rng)
    if rng.random() < 0.1:
        out[nasty(rng)] = nasty(rng)
    return out


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.2:
        return rng.choice([None, True, 0, -1, 2**31, 2**63, 1.5, 10**30, -(10**20)])
    if roll < 0.3 and depth < 3:
        return [_json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.4 and depth < 3:
        return {nasty(rng): _json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if roll < 0.5:
        return rng.choice(["\ud800", "a\udc80b", "\udfff\ud800"])  # lone surrogates
    return nasty(rng)


@dataclass
class Known:
    """What the gateway holds before the fuzzing starts, for requests to aim at."""

    tickets: list[str]
    campaigns: list[int]
    tokens: dict[str, str]
    """A token per role."""
    message_ids: list[str]
    """Provider IDs of messages sent, for delivery reports."""


class Fuzzer:
    """Makes the requests, from one seed, aimed at what ``known`` holds."""

    def __init__(self, rng: random.Random, known: Known) -> None:
        self.rng = rng
        self.tickets = known.tickets
        self.campaigns = [str(c) for c in known.campaigns]
        self.tokens = known.tokens
        self.message_ids = known.message_ids
        self.sessions: list[tuple[str, str]] = []
        self.makers: list[tuple[float, Callable[[], Request]]] = [
            (0.20, self.ussd_hop),
            (0.06, self.ussd_end),
            (0.08, self.delivery),
            (0.10, self.inbound),
            (0.04, self.callback_garbage),
            (0.07, self.complaint_action),
            (0.06, self.complaint_read),
            (0.05, self.complaint_list),
            (0.05, self.register),
            (0.06, self.campaign_write),
            (0.04, self.campaign_read),
            (0.03, self.campaign_upload),
            (0.06, self.report),
            (0.03, self.json_garbage),
            (0.03, self.auth_garbage),
            (0.02, self.other),
            (0.02, self.simulator),
        ]

    def request(self) -> Request:
        roll = self.rng.random() * sum(w for w, _ in self.makers)
        for weight, make in self.makers:
            roll -= weight
            if roll <= 0:
                return make()
        return self.makers[-1][1]()

    # --- encodings

    def form(self, path: str, fields: dict[str, Any]) -> Request:
        """``fields`` as a form, usually urlencoded; sometimes as bytes that are not UTF-8,
        multipart, JSON, or with a wrong content type."""
        rng = self.rng
        pairs = [(str(k), str(v)) for k, v in fields.items()]
        roll = rng.random()
        if roll < 0.75:
            body = urlencode(pairs, errors="surrogatepass").encode()
            content_type = "application/x-www-form-urlencoded"
        elif roll < 0.85:
            raw = [quote(k, safe="").encode() + b"=" + rng.choice(RAW_ATOMS) for k, _ in pairs]
            body = b"&".join(raw)
            content_type = rng.choice(
                [
                    "application/x-www-form-urlencoded",
                    "application/x-www-form-urlencoded; charset=latin-1",
                    "application/x-www-form-urlencoded; charset=klingon",
                ]
            )
        elif roll < 0.92:
            body, content_type = _multipart(pairs)
        else:
            body = json.dumps(fields).encode()
            content_type = rng.choice(["application/json", "text/plain", ""])
        headers = {"Content-Type": content_type} if content_type else {}
        return Request("POST", path, headers, body)

    def api(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> Request:
        headers = {"Authorization": f"Bearer {self.rng.choice(list(self.tokens.values()))}"}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()  # ensure_ascii: surrogates go as \\udXXX escapes
            headers["Content-Type"] = "application/json"
        return Request(method, "/api/v1" + path, headers, data)

    def query(self, base: dict[str, str]) -> str:
        pairs = list(_mutate_mapping(self.rng, base).items())
        text = urlencode([(str(k), str(v)) for k, v in pairs], errors="surrogatepass")
        if self.rng.random() < 0.1:
            text += (
                "&"
                + self.rng.choice(list(base))
                + "="
                + self.rng.choice(RAW_ATOMS).decode("latin-1")
            )
        return text

    def path_value(self, known: list[str]) -> str:
        if known and self.rng.random() < 0.6:
            return self.rng.choice(known)
        if self.rng.random() < 0.1:
            return self.rng.choice(RAW_ATOMS).decode("latin-1")
        return quote(nasty(self.rng), safe="") or "x"

    # --- callbacks

    def ussd_hop(self) -> Request:
        rng = self.rng
        if self.sessions and rng.random() < 0.6:
            session_id, text = rng.choice(self.sessions)
            step = rng.choice(["1", "2", "9", "0", "98", "00", nasty(rng)])
            text = f"{text}*{step}" if text else step
        else:
            session_id, text = f"ATUid_{rng.getrandbits(64):x}", ""
        self.sessions.append((session_id, text))
        if len(self.sessions) > 50:
            self.sessions.pop(0)
        fields: dict[str, Any] = ussd_hop(session_id, text)
        if rng.random() < 0.35:
            fields = _mutate_mapping(rng, fields)
        return self.form("/ussd/africastalking", fields)

    def ussd_end(self) -> Request:
        session_id = self.rng.choice(self.sessions)[0] if self.sessions else "ATUid_none"
        return self.form(
            "/ussd/africastalking/events", _mutate_mapping(self.rng, ussd_end(session_id))
        )

    def delivery(self) -> Request:
        rng = self.rng
        fields = delivery(rng.choice(self.message_ids))
        fields["status"] = rng.choice(["Success", "Failed", "Rejected", "Sent", "Buffered"])
        fields["failureReason"] = rng.choice(["", "UserInBlacklist", nasty(rng)])
        if rng.random() < 0.6:
            fields = _mutate_mapping(rng, fields)
        return self.form("/sms/africastalking/delivery", fields)

    def inbound(self) -> Request:
        rng = self.rng
        ticket = rng.choice(self.tickets)
        text = rng.choice(
            [f"{ticket} DONE fixed", f"STATUS {ticket}", "HELP", f"{ticket} NOT SOLVED", nasty(rng)]
        )
        message_id = f"ATXid_{rng.getrandbits(64):x}"
        return self.form(
            "/sms/africastalking/inbound", _mutate_mapping(rng, inbound(message_id, text))
        )

    def callback_garbage(self) -> Request:
        rng = self.rng
        path = rng.choice(
            [
                "/ussd/africastalking",
                "/ussd/africastalking/events",
                "/sms/africastalking/delivery",
                "/sms/africastalking/inbound",
            ]
        )
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
        content_type = rng.choice(
            ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"]
        )
        return Request(
            rng.choice(["POST", "POST", "GET", "PUT"]), path, {"Content-Type": content_type}, body
        )

    # --- staff API

    def complaint_action(self) -> Request:
        rng = self.rng
        ticket = self.path_value(self.tickets)
        action, body = rng.choice(
            [
                ("notes", {"remark": "Pipe replaced"}),
                ("resolve", {"remark": "Hand pump repaired"}),
                ("transfer", {"remark": "Not ours", "department": "electricity"}),
                ("transfer", {"remark": "Other block", "block": "kotkhai"}),
                ("reassign", {"officer": "js_theog_je", "remark": "On leave"}),
            ]
        )
        if rng.random() < 0.8:
            body = _mutate_mapping(rng, body)
        if rng.random() < 0.2:
            body = {k: _json_value(rng) for k in body}
        return self.api("POST", f"/complaints/{ticket}/{action}", body)

    def complaint_read(self) -> Request:
        return self.api("GET", f"/complaints/{self.path_value(self.tickets)}")

    def complaint_list(self) -> Request:
        return self.api("GET", "/complaints?" + self.query(LIST_QUERY))

    def register(self) -> Request:
        rng = self.rng
        body = dict(REGISTER, phone=f"+9198002{rng.randint(0, 99999):05d}")
        if rng.random() < 0.85:
            body = _mutate_mapping(rng, body)
        request = self.api("POST", "/complaints", body)
        if rng.random() < 0.3:
            request.headers["Idempotency-Key"] = _sendable(nasty(rng))
        return request

    def campaign_write(self) -> Request:
        rng = self.rng
        if rng.random() < 0.5:
            base = rng.choice([CAMPAIGN, CAMPAIGN_CSV])
            body = _mutate_mapping(rng, base) if rng.random() < 0.85 else base
            return self.api("POST", rng.choice(["/campaigns", "/campaigns/preview"]), body)
        cid = self.path_value(self.campaigns)
        return self.api(
            "POST", f"/campaigns/{cid}/{rng.choice(['start', 'pause', 'resume', 'cancel'])}"
        )

    def campaign_read(self) -> Request:
        if self.rng.random() < 0.1:  # the listing reads every campaign: the costliest read
            return self.api("GET", "/campaigns")
        return self.api("GET", f"/campaigns/{self.path_value(self.campaigns)}")

    def campaign_upload(self) -> Request:
        rng = self.rng
        lines = [rng.choice(["+919800200004", "9800200005", nasty(rng)]) for _ in range(5)]
        raw = "\n".join(lines).encode("utf-8", "surrogatepass")
        if rng.random() < 0.3:
            raw += rng.choice(RAW_ATOMS)
        cid = self.path_value(self.campaigns)
        request = self.api("POST", f"/campaigns/{cid}/numbers", raw=raw)
        request.headers["Content-Type"] = rng.choice(["text/csv", "text/plain", "application/json"])
        return request

    def report(self) -> Request:
        suffix = self.rng.choice(["", ".csv", ".html"])
        return self.api("GET", f"/reports/monthly{suffix}?" + self.query(MONTH_QUERY))

    def json_garbage(self) -> Request:
        rng = self.rng
        depth = rng.choice([50, 1000, 5000, 100_000])
        raw = rng.choice(
            [
                b"[" * depth + b"]" * depth,
                b'{"remark":' * depth + b"1" + b"}" * depth,
                b'{"remark": "' + b"\\ud800" + b'"}',
                b'{"remark": 1' + b"0" * 5000 + b"}",
                b'{"remark": "x"',
                b"\xff\xfe{}",
                b"",
                b"null",
                b"[]",
                b'{"remark": NaN}',
            ]
        )
        path = rng.choice(
            [
                f"/complaints/{rng.choice(self.tickets)}/notes",
                "/complaints",
                "/campaigns/preview",
            ]
        )
        request = self.api("POST", path, raw=raw)
        request.headers["Content-Type"] = rng.choice(
            ["application/json", "application/json; charset=klingon", "text/plain"]
        )
        return request

    def auth_garbage(self) -> Request:
        rng = self.rng
        token = rng.choice(list(self.tokens.values()))
        header = rng.choice(
            [
                "",
                "Bearer",
                "Bearer ",
                "Bearer spk_",
                "bearer " + token,
                "Bearer " + token + "x",
                "Bearer " + token[:-1],
                "Bearer  " + token,
                "Basic dXNlcjpwYXNz",
                "Bearer " + "é" * 20,
                "Bearer spk_" + "x" * 3000,
                "Bearer " + nasty(rng),
            ]
        )
        header = _sendable(header)
        path = rng.choice(["/me", "/complaints", f"/complaints/{rng.choice(self.tickets)}"])
        return Request("GET", "/api/v1" + path, {"Authorization": header})

    def other(self) -> Request:
        rng = self.rng
        path = rng.choice(
            [
                "/api/v1/openapi.json",
                "/api/v1/me",
                "/api/v1/nothing",
                "/nothing",
                "/api/v1/complaints/" + "x" * 5000,
            ]
        )
        request = self.api(rng.choice(["GET", "POST", "DELETE", "PATCH"]), "")
        request.path = path
        return request

    def simulator(self) -> Request:
        value = self.rng.choice(["+919812345678", "09812345678", nasty(self.rng)])
        return Request("GET", "/simulator/sms?" + urlencode({"to": value}, errors="surrogatepass"))

    # --- raw

    def raw(self) -> bytes:
        """A request no HTTP client library would send: control characters and bytes that
        are not UTF-8 in its headers, often right after a valid token."""
        rng = self.rng
        token = rng.choice(list(self.tokens.values())).encode()
        junk = rng.choice(
            [b"\x01", b"\x00", b"\x7f", b"\xff\xfe", b"\r", b"\x1b[31m", b" \xc0\xaf"]
        )
        header = rng.choice(
            [
                b"Authorization: Bearer " + token + junk + b"x",
                b"Authorization: Bearer " + junk + token,
                b"Authorization: Bearer spk_" + junk,
                b"Authorization: Bearer " + token + b"\xff",
                b"Authorization: Bearer \xed\xa0\x80" + token,
                b"X-Note: " + token + junk,
                b"Authorization: Bearer " + token + b"x" * 9000,
                b"Idempotency-Key: \xff" + junk,
            ]
        )
        target = rng.choice(
            [b"/api/v1/me", b"/api/v1/complaints", b"/ussd/africastalking", b"/x\x01"]
        )
        method = rng.choice([b"GET", b"POST", b"G\x01T"])
        return (
            method + b" " + target + b" HTTP/1.1\r\nHost: localhost\r\n" + header
            + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )  # fmt: skip


def _sendable(header: str) -> str:
    """``header`` without what aiohttp's client refuses to send (control characters: the
    raw requests send those)."""
    return "".join(c for c in header if c >= " " and c != "\x7f")


def _multipart(pairs: list[tuple[str, str]]) -> tuple[bytes, str]:
    """``pairs`` as a multipart/form-data body, values as bytes (surrogates kept as such)."""
    boundary = "fuzzboundary7MA4YWxk"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{quote(k)}"\r\n\r\n'.encode()
        + v.encode("utf-8", "surrogatepass")
        + b"\r\n"
        for k, v in pairs
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


# ------------------------------------------------------------------------------ the test


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def saw(self, status: int, request: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status >= 500:
            self.failures.append(f"{status} for {request}")


async def _setup(client: TestClient[Any, Any]) -> Known:
    tokens = {
        "state_admin": await make_staff_token(client, "fz_admin", role=StaffRole.STATE_ADMIN),
        "officer": await make_staff_token(
            client,
            "fz_je",
            role=StaffRole.OFFICER,
            department="jal_shakti",
            level="block",
            area="theog",
            officer_code="js_theog_je",
        ),
        "agent": await make_staff_token(
            client, "fz_agent", role=StaffRole.AGENT, district="shimla"
        ),
        "reviewer": await make_staff_token(client, "fz_reviewer", role=StaffRole.STATE_REVIEWER),
    }
    phone = Phone(client, number="+919822000001")
    await phone.dial()
    await phone.walk("2", "1", "2", "9", "2", "1", "1")
    admin = {"Authorization": f"Bearer {tokens['state_admin']}"}
    tickets = []
    for n in range(3):
        resp = await client.post(
            "/api/v1/complaints", json=dict(REGISTER, phone=f"+91980030000{n}"), headers=admin
        )
        assert resp.status == 201, await resp.text()
        tickets.append((await resp.json())["ticket"])
    campaigns = []
    for body in (CAMPAIGN, CAMPAIGN_CSV):
        resp = await client.post("/api/v1/campaigns", json=body, headers=admin)
        assert resp.status == 201, await resp.text()
        campaigns.append((await resp.json())["id"])
    # Their SMS as the provider took them: delivery reports find them.
    message_ids = []
    for message in await OutboundMessage.all():
        message_id = f"ATXid_fuzz{message.id}"
        await OutboundMessage.filter(id=message.id).update(
            status=MessageStatus.SENT, provider_message_id=message_id
        )
        message_ids.append(message_id)
    return Known(tickets, campaigns, tokens, message_ids)


CALLBACK_PATHS = frozenset(
    {
        "/ussd/africastalking",
        "/ussd/africastalking/events",
        "/sms/africastalking/delivery",
        "/sms/africastalking/inbound",
    }
)


async def _send(client: TestClient[Any, Any], request: Request) -> int:
    # A callback goes to its signed path, as the provider would send it.
    path = signed(client, request.path) if request.path in CALLBACK_PATHS else request.path
    resp = await client.request(
        request.method,
        URL(path, encoded=True),
        headers=request.headers,
        data=request.body,
        skip_auto_headers=("Content-Type",),
    )
    async with resp:
        await resp.read()
    return resp.status


async def _send_raw(client: TestClient[Any, Any], raw: bytes) -> int:
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(raw)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    status_line = answer.split(b"\r\n", 1)[0].split()
    return int(status_line[1]) if len(status_line) > 1 else 0


async def test_no_input_answers_5xx_or_logs_an_error(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    fuzzer = Fuzzer(random.Random(SEED), await _setup(client))
    outcome = Outcome()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        for n in range(REQUESTS):
            if n % (REQUESTS // RAW_REQUESTS) == 0:
                raw = fuzzer.raw()
                outcome.saw(await _send_raw(client, raw), f"raw {raw[:200]!r}")
                continue
            request = fuzzer.request()
            outcome.saw(await _send(client, request), request.describe())
    callbacks = client.app[CALLBACKS]
    assert isinstance(callbacks, GatewayCallbacks) and callbacks.sessions is not None
    await callbacks.sessions.flush()  # the last sessions' rows, written within the watch
    errors = [
        f"{r.name}: {r.getMessage()[:300]}" for r in caplog.records if r.levelno >= logging.ERROR
    ]
    assert sum(outcome.statuses.values()) == REQUESTS
    assert not outcome.failures, f"{len(outcome.failures)} answered 5xx:\n" + "\n".join(
        outcome.failures[:40]
    )
    assert not errors, f"{len(errors)} ERROR records:\n" + "\n".join(errors[:40])
    # The fuzzer reached past the front door: most answers were not refusals.
    assert outcome.statuses.get(200, 0) + outcome.statuses.get(201, 0) > REQUESTS // 4

"""A fake Africa's Talking SMS API: a small aiohttp app that answers as AT does.

Usable from pytest fixtures and from scripts (benchmarks, end-to-end runs)::

    fake = FakeAfricasTalking(username="sampark", api_key="k")
    base_url = await fake.start()          # http://127.0.0.1:<port>
    fake.outcomes["+919800000406"] = 406    # that number answers UserInBlacklist
    fake.fail_next(status=503, times=2)     # the next two requests get 503
    fake.delay = 2.0                        # every answer waits 2 s (timeouts)
    fake.fault_next(Fault.RESET)            # the next request: accepted, then reset
    fake.faults["+919800000001"] = Fault.GARBAGE  # any request to that number: accepted,
                                            # then answered 201 with a body that is not JSON
    ...
    fake.requests[-1].form["to"]            # what reached it
    await fake.send_delivery_report(callback_url, message_id, "Success")
    await fake.close()

``make_app()`` gives the bare application, e.g. for pytest-aiohttp's ``aiohttp_server``.
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import secrets
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import aiohttp
from aiohttp import web

__all__ = [
    "RECIPIENT_STATUSES",
    "FakeAfricasTalking",
    "Fault",
    "RecordedRequest",
    "SentMessage",
]

RECIPIENT_STATUSES: Final[Mapping[int, str]] = {
    100: "Processed",
    101: "Success",
    102: "Queued",
    401: "RiskHold",
    402: "InvalidSenderId",
    403: "InvalidPhoneNumber",
    404: "UnsupportedNumberType",
    405: "InsufficientBalance",
    406: "UserInBlacklist",
    407: "CouldNotRoute",
    409: "DoNotDisturbRejection",
    500: "InternalServerError",
    501: "GatewayError",
    502: "RejectedByGateway",
}
"""AT's per-recipient statusCode -> status word, as it appears in a send answer."""

AUTH_FAILED: Final = "The supplied authentication is invalid"
_E164: Final = re.compile(r"^\+[1-9][0-9]{6,14}$")


class Fault(enum.StrEnum):
    """What happens to the answer of a request the fake has accepted (its messages are in
    :attr:`FakeAfricasTalking.sent`): the sender cannot know they were taken."""

    SLOW = "slow"
    """The answer comes after :attr:`FakeAfricasTalking.slow_seconds` (past the client's
    timeout)."""
    RESET = "reset"
    """The connection is reset (TCP RST) instead of answered."""
    GARBAGE = "garbage"
    """HTTP 201 with a body that is not AT's JSON."""


GARBAGE_BODY: Final = "<html><body>upstream hiccup</body></html>"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it reached the fake."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Header names as sent (look them up case-insensitively with :meth:`header`)."""
    form: dict[str, str]
    """Parsed form fields (first value of each)."""
    body: bytes
    query: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


@dataclass(frozen=True)
class SentMessage:
    """A message the fake accepted for one recipient (to drive delivery reports)."""

    message_id: str
    number: str
    text: str
    sender_id: str | None


@dataclass
class _Failure:
    status: int
    body: str
    content_type: str
    times: int


class FakeAfricasTalking:
    """A loopback stand-in for ``POST /version1/messaging``.

    Per-number outcomes go in :attr:`outcomes` (number -> AT statusCode); numbers in
    :attr:`omitted` are left out of the answer; :attr:`renumber` changes how a number is
    spelled in the answer (AT may not echo the exact spelling it was sent).
    """

    def __init__(
        self,
        *,
        username: str = "sandbox",
        api_key: str = "atsk_fake_key",
        cost: str = "KES 0.8000",
        default_status_code: int = 101,
    ) -> None:
        self.username = username
        self.api_key = api_key
        self.cost = cost
        self.default_status_code = default_status_code
        self.outcomes: dict[str, int] = {}
        self.omitted: set[str] = set()
        self.renumber: dict[str, str] = {}
        self.delay: float = 0.0
        self.faults: dict[str, Fault] = {}
        """Number -> the fault of every accepted request that includes it."""
        self.slow_seconds: float = 5.0
        self.requests: list[RecordedRequest] = []
        self.sent: list[SentMessage] = []
        self.base_url: str | None = None
        self._failures: list[_Failure] = []
        self._next_faults: list[Fault] = []
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    # ----------------------------------------------------------------- scripting

    def fail_next(
        self,
        *,
        status: int,
        times: int = 1,
        body: str | None = None,
        content_type: str = "text/plain",
    ) -> None:
        """Answer the next ``times`` requests with ``status`` and ``body`` instead of serving
        them (a 2xx status with a garbage body works too)."""
        if body is None:
            body = AUTH_FAILED if status == 401 else f"fake: scripted HTTP {status}"
        self._failures.append(_Failure(status, body, content_type, times))

    def fault_next(self, fault: Fault, *, times: int = 1) -> None:
        """Accept the next ``times`` requests (their messages count as sent), then lose
        their answers as ``fault`` says."""
        self._next_faults.extend([fault] * times)

    def reset(self) -> None:
        """Forget recorded requests, sent messages and scripted behaviour."""
        self.outcomes.clear()
        self.omitted.clear()
        self.renumber.clear()
        self.faults.clear()
        self.delay = 0.0
        self.requests.clear()
        self.sent.clear()
        self._failures.clear()
        self._next_faults.clear()

    def received(self, number: str) -> int:
        """How many requests reached the fake with ``number`` among their recipients."""
        return sum(
            1
            for r in self.requests
            if number in (n.strip() for n in r.form.get("to", "").split(","))
        )

    def message_id_for(self, number: str) -> str:
        """The message id of the last message accepted for ``number``."""
        for message in reversed(self.sent):
            if message.number == number:
                return message.message_id
        raise KeyError(number)

    # ----------------------------------------------------------------- server

    def make_app(self) -> web.Application:
        """The fake as an aiohttp application (serve it however you like)."""
        app = web.Application()
        app.router.add_route("*", "/version1/messaging", self._messaging)
        return app

    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: any free port); returns the base URL."""
        if self._runner is not None:
            raise RuntimeError("already started")
        self._closing = asyncio.Event()
        runner = web.AppRunner(self.make_app(), shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.base_url = f"http://{bound_host}:{bound_port}"
        return self.base_url

    async def close(self) -> None:
        """Stop serving; requests held by :attr:`delay` are released first."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAfricasTalking:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- handler

    async def _messaging(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        form: dict[str, str] = {}
        if request.content_type == "application/x-www-form-urlencoded":
            for key, value in (await request.post()).items():
                if isinstance(value, str):
                    form.setdefault(key, value)
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                headers=dict(request.headers),
                form=form,
                body=body,
                query=dict(request.query),
            )
        )
        if self.delay > 0:
            try:
                await asyncio.wait_for(self._closing.wait(), self.delay)
            except TimeoutError:
                pass

        if self._failures:
            failure = self._failures[0]
            failure.times -= 1
            if failure.times <= 0:
                self._failures.pop(0)
            return web.Response(
                status=failure.status,
                body=failure.body.encode(),
                headers={"Content-Type": failure.content_type},
            )

        if request.method != "POST":
            return web.Response(status=405, text="Method not allowed")
        if request.headers.get("apiKey") != self.api_key:
            return web.Response(status=401, text=AUTH_FAILED)
        if form.get("username") != self.username:
            return web.Response(status=401, text=AUTH_FAILED)
        for required in ("to", "message"):
            if not form.get(required):
                return web.Response(
                    status=400, text=f"Request is missing required form field '{required}'"
                )

        sender_id = form.get("from")
        recipients = []
        accepted = 0
        for number in (n.strip() for n in form["to"].split(",")):
            if not number or number in self.omitted:
                continue
            code = self.outcomes.get(number, self.default_status_code)
            if not _E164.match(number):
                code = 403
            ok = code in (100, 101, 102)
            message_id = f"ATXid_{secrets.token_hex(16)}" if ok else "None"
            if ok:
                accepted += 1
                self.sent.append(SentMessage(message_id, number, form["message"], sender_id))
            recipients.append(
                {
                    "cost": self.cost if ok else "0",
                    "messageId": message_id,
                    "messageParts": 1,
                    "number": self.renumber.get(number, number),
                    "status": RECIPIENT_STATUSES.get(code, "Failed"),
                    "statusCode": code,
                }
            )
        fault = self._fault_for(form["to"])
        if fault is Fault.RESET:
            return await _reset(request)
        if fault is Fault.GARBAGE:
            return web.Response(status=201, text=GARBAGE_BODY, content_type="text/html")
        if fault is Fault.SLOW:
            try:
                await asyncio.wait_for(self._closing.wait(), self.slow_seconds)
            except TimeoutError:
                pass
        total = len(form["to"].split(","))
        answer = {
            "SMSMessageData": {
                "Message": f"Sent to {accepted}/{total} Total Cost: "
                + (self.cost if accepted else "0"),
                "Recipients": recipients,
            }
        }
        # Exactly "application/json": the SDK only parses JSON on that exact content type.
        return web.Response(
            status=201,
            body=json.dumps(answer).encode(),
            headers={"Content-Type": "application/json"},
        )

    def _fault_for(self, to: str) -> Fault | None:
        if self._next_faults:
            return self._next_faults.pop(0)
        for number in to.split(","):
            fault = self.faults.get(number.strip())
            if fault is not None:
                return fault
        return None

    # ----------------------------------------------------------------- callbacks

    async def send_delivery_report(
        self,
        callback_url: str,
        message_id: str,
        status: str,
        failure_reason: str | None = None,
        *,
        phone: str = "+919812345678",
        network_code: str = "40445",
        retry_count: int = 0,
        session: aiohttp.ClientSession | None = None,
    ) -> tuple[int, str]:
        """POST a delivery report to ``callback_url`` in AT's form format.

        Returns the callback's HTTP status and body text.
        """
        form = {
            "id": message_id,
            "status": status,
            "phoneNumber": phone,
            "networkCode": network_code,
            "retryCount": str(retry_count),
        }
        if failure_reason is not None:
            form["failureReason"] = failure_reason
        if session is None:
            async with aiohttp.ClientSession() as own:
                return await _post_form(own, callback_url, form)
        return await _post_form(session, callback_url, form)


async def _post_form(
    session: aiohttp.ClientSession, url: str, form: Mapping[str, str]
) -> tuple[int, str]:
    async with session.post(url, data=dict(form)) as response:
        return response.status, await response.text()


async def _reset(request: web.Request) -> web.StreamResponse:
    """Reset the request's connection (RST, no answer): linger 0, then abort."""
    transport = request.transport
    assert transport is not None
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    raise asyncio.CancelledError  # nothing to answer on: aiohttp drops the handler quietly

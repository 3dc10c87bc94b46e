"""A fake Exotel SMS API: a small aiohttp app that answers as Exotel's public API documents.

::

    fake = FakeExotel(sid="sampark1", api_key="k", api_token="t")
    base_url = await fake.start()             # http://127.0.0.1:<port> (EXOTEL_BASE_URL)
    fake.fail_next(status=429, retry_after="2")  # the next request: 429 Retry-After: 2
    fake.statuses["+919800000999"] = "failed_dnd"  # that number's answer and report
    fake.requests[-1].form["DltTemplateId"]   # what reached it
    await fake.deliver_all()                  # every accepted message's StatusCallback
    await fake.close()

Send: ``POST /v1/Accounts/<sid>/Sms/send.json``, HTTP Basic ``api_key:api_token``, a form
(``From``, ``To`` comma-separated, ``Body``, ``EncodingType``, ``SmsType``, ``DltEntityId``,
``DltTemplateId``, ``StatusCallback``, ``CustomField`` ...). Answer 200
``{"SMSMessage": {...}}`` for one number, ``{"SMSMessage": [...]}`` for several (or, with
``list_of_wrappers``, ``[{"SMSMessage": {...}}, ...]``); errors are non-2xx with
``{"RestException": {"Status", "Message"}}``. Delivery callbacks: a form POST to the
message's ``StatusCallback`` with ``SmsSid``, ``To`` (0-prefixed), ``Status``,
``DetailedStatus``, ``DetailedStatusCode``, ``SmsUnits``, ``DateSent``, ``CustomField``.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Final

import aiohttp
from aiohttp import web

__all__ = ["ExotelMessage", "ExotelRequest", "FakeExotel"]

_DETAILED: Final = {
    "sent": ("DELIVERED_TO_HANDSET", "20005"),
    "failed": ("UNKNOWN_ERROR", "30010"),
    "failed_dnd": ("DND_NUMBER", "30008"),
}


@dataclass(frozen=True)
class ExotelRequest:
    """One request as it reached the fake, at the time it did (``time.monotonic``)."""

    path: str
    authorization: str | None
    form: dict[str, str]
    at: float


@dataclass(frozen=True)
class ExotelMessage:
    """A message the fake accepted for one number."""

    sid: str
    to: str
    body: str
    status_callback: str | None
    custom_field: str | None
    form: dict[str, str] = field(repr=False)


@dataclass
class _Failure:
    status: int
    message: str
    retry_after: str | None
    times: int


class FakeExotel:
    """Exotel's SMS API for one account, on loopback."""

    def __init__(
        self, *, sid: str, api_key: str, api_token: str, list_of_wrappers: bool = False
    ) -> None:
        self.sid = sid
        self._auth = "Basic " + base64.b64encode(f"{api_key}:{api_token}".encode()).decode()
        self.list_of_wrappers = list_of_wrappers
        self.requests: list[ExotelRequest] = []
        self.sent: list[ExotelMessage] = []
        self.statuses: dict[str, str] = {}
        """Number (E.164) -> the status its messages end in (``sent`` otherwise); a
        ``failed_dnd`` number is refused in the send answer too."""
        self._failures: list[_Failure] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def fail_next(
        self, *, status: int, message: str = "", retry_after: str | None = None, times: int = 1
    ) -> None:
        """The next ``times`` requests get HTTP ``status`` (with ``Retry-After``)."""
        self._failures.append(_Failure(status, message or f"HTTP {status}", retry_after, times))

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(f"/v1/Accounts/{self.sid}/Sms/send.json", self._send)
        return app

    async def start(self, *, port: int = 0) -> str:
        """Serve on loopback (``port``, else a free one); the base URL."""
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = int(self._runner.addresses[0][1])
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeExotel:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _send(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(
            ExotelRequest(
                request.path, request.headers.get("Authorization"), form, time.monotonic()
            )
        )
        if request.headers.get("Authorization") != self._auth:
            return _error(401, "Authentication failed")
        if self._failures:
            failure = self._failures[0]
            failure.times -= 1
            if failure.times <= 0:
                self._failures.pop(0)
            response = _error(failure.status, failure.message)
            if failure.retry_after is not None:
                response.headers["Retry-After"] = failure.retry_after
            return response
        for name in ("From", "To", "Body"):
            if not form.get(name):
                return _error(400, f"Missing parameter {name}")
        answers = [self._accept(to.strip(), form) for to in form["To"].split(",")]
        if len(answers) == 1:
            data: object = {"SMSMessage": answers[0]}
        elif self.list_of_wrappers:
            data = [{"SMSMessage": answer} for answer in answers]
        else:
            data = {"SMSMessage": answers}
        return web.json_response(data)

    def _accept(self, to: str, form: dict[str, str]) -> dict[str, object]:
        sid = secrets.token_hex(16)
        refused = self.statuses.get(to) == "failed_dnd"
        if not refused:
            self.sent.append(
                ExotelMessage(
                    sid, to, form["Body"], form.get("StatusCallback"), form.get("CustomField"), form
                )
            )
        return {
            "Sid": sid,
            "AccountSid": self.sid,
            "From": form["From"],
            "To": "0" + to[3:] if to.startswith("+91") else to,
            "Body": form["Body"],
            "Status": "failed_dnd" if refused else "queued",
            "DetailedStatus": "DND_NUMBER" if refused else "PENDING_TO_OPERATOR",
            "DetailedStatusCode": 30008 if refused else 21010,
            "Price": None,
            "Uri": f"/v1/Accounts/{self.sid}/SMS/Messages/{sid}.json",
        }

    async def report(
        self, message: ExotelMessage, status: str | None = None, *, base: str | None = None
    ) -> int:
        """Post ``message``'s delivery callback (its number's status, else ``sent``) to its
        ``StatusCallback`` (on ``base`` instead of its scheme and host, when given: a test
        server's); the HTTP status our gateway answered."""
        assert message.status_callback, "the message had no StatusCallback"
        url = message.status_callback
        if base is not None:
            url = base.rstrip("/") + "/" + url.split("/", 3)[3]
        final = status or self.statuses.get(message.to, "sent")
        detailed, code = _DETAILED.get(final, ("UNKNOWN", "0"))
        form = {
            "SmsSid": message.sid,
            "To": "0" + message.to[3:] if message.to.startswith("+91") else message.to,
            "Status": final,
            "DetailedStatus": detailed,
            "DetailedStatusCode": code,
            "SmsUnits": "1",
            "DateSent": "2026-11-23 10:15:02",
            "CustomField": message.custom_field or "",
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, data=form) as response,
        ):
            await response.read()
            return response.status

    async def deliver_all(self, *, base: str | None = None) -> list[int]:
        """Every accepted message's delivery callback; the statuses our gateway answered."""
        return [await self.report(message, base=base) for message in self.sent]


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"RestException": {"Status": status, "Message": message}}, status=status
    )

"""The fake Africa's Talking (:mod:`tests.fakes.africastalking`) as an OS process of its own,
for the fault tests (``tests/test_faults.py``) and ``make faults``::

    python -m tests.fakes.africastalking_process PORT

It stands for the phones as well as the provider: it counts what each number received
(every message it accepted, per number and text, including those whose answer it then
lost), and sends the delivery report of each to the gateway's callback a moment later,
again after a non-2xx answer, as AT does with a callback that failed. Driven over HTTP:

- ``POST /control`` (JSON, every key optional): ``faults`` (the share of requests whose
  answer is lost, per :class:`~tests.fakes.africastalking.Fault`, spread evenly over the
  requests: ``{"slow": 0.1, "reset": 0.1, "garbage": 0.1}``), ``slow_seconds``, ``delay``
  (seconds every request waits before it is taken: sends in flight), ``reports`` (the
  callback URL; null: none), ``report_delay``, ``reports_after_lost_answer`` (the share
  of messages whose answer was lost that still get their report, drawn with ``seed``).
- ``GET /stats``: ``requests``, ``accepted``, ``in_flight`` (requests not yet answered),
  ``lost_answers`` (messages accepted whose answer was lost, per fault), ``reports``
  (``sent``, ``refused``: non-2xx answers, each tried again; ``pending``; ``withheld``) and
  ``received``: ``[[number, text, count], ...]``.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.africastalking import FakeAfricasTalking, Fault, SentMessage

__all__ = ["API_KEY", "USERNAME", "PhoneCountingFake"]

USERNAME, API_KEY = "sampark", "atsk_faults_key"
REPORT_RETRY_SECONDS = 1.0
REPORT_TRIES = 120


class _Accepted(list[SentMessage]):
    """Stands in for :attr:`FakeAfricasTalking.sent`: hands each accepted message to its
    owner instead of keeping it."""

    def __init__(self, owner: PhoneCountingFake) -> None:
        super().__init__()
        self.owner = owner

    def append(self, message: SentMessage) -> None:
        self.owner.accepted(message)


class _Requests(list[Any]):
    """Stands in for :attr:`FakeAfricasTalking.requests`: counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def append(self, request: Any) -> None:
        self.seen += 1


class PhoneCountingFake(FakeAfricasTalking):
    """The fake provider with the phones behind it: see the module's docstring."""

    def __init__(self) -> None:
        super().__init__(username=USERNAME, api_key=API_KEY)
        self.sent = _Accepted(self)
        self.requests = _Requests()
        self.tally: Counter[tuple[str, str]] = Counter()
        """(number, text) -> how often the fake accepted it: what each phone received."""
        self.shares: dict[Fault, float] = {}
        self._credit: dict[Fault, float] = {}
        self.random = random.Random(0)
        self.in_flight = 0
        self.lost_answers: Counter[Fault] = Counter()
        self.callback: str | None = None
        self.report_delay = 0.5
        self.reports_after_lost_answer = 1.0
        self.reports: Counter[str] = Counter()
        self._taken: list[SentMessage] = []
        """Accepted by the request being answered (its fault not yet chosen)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/version1/messaging", self._counted)
        app.router.add_post("/control", self._control)
        app.router.add_get("/stats", self._stats)
        return app

    async def _counted(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        try:
            return await self._messaging(request)
        finally:
            self.in_flight -= 1

    def accepted(self, message: SentMessage) -> None:
        self.tally[(message.number, message.text)] += 1
        self._taken.append(message)

    def _fault_for(self, to: str) -> Fault | None:
        # Called once the request's messages are accepted, before it is answered.
        fault = super()._fault_for(to) or self._by_share()
        taken, self._taken = self._taken, []
        if fault is not None:
            self.lost_answers[fault] += len(taken)
        for message in taken:
            lost = fault is not None
            if lost and self.random.random() >= self.reports_after_lost_answer:
                self.reports["withheld"] += 1
                continue
            self._spawn(self._report(message))
        return fault

    def _by_share(self) -> Fault | None:
        """Each fault for its share of the requests, spread evenly: every request adds its
        share to a fault's credit, and a request comes with the first fault owed one."""
        for kind, share in self.shares.items():
            self._credit[kind] += share
        for kind in self.shares:
            if self._credit[kind] >= 1:
                self._credit[kind] -= 1
                return kind
        return None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, message: SentMessage) -> None:
        """The message's delivery report, sent until the gateway takes it (2xx)."""
        if self.callback is None:
            return
        if self._http is None:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=20))
        await asyncio.sleep(self.report_delay)
        for _ in range(REPORT_TRIES):
            try:
                status, _ = await self.send_delivery_report(
                    self.callback,
                    message.message_id,
                    "Success",
                    phone=message.number,
                    session=self._http,
                )
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            if 200 <= status < 300:
                self.reports["sent"] += 1
                return
            self.reports["refused"] += 1
            await asyncio.sleep(REPORT_RETRY_SECONDS)
        self.reports["given_up"] += 1

    async def _control(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "faults" in body:
            self.shares = {Fault(k): float(v) for k, v in body["faults"].items()}
            self._credit = dict.fromkeys(self.shares, 0.5)
        for key in ("slow_seconds", "delay", "report_delay", "reports_after_lost_answer"):
            if key in body:
                setattr(self, key, float(body[key]))
        if "reports" in body:
            self.callback = body["reports"]
        if "seed" in body:
            self.random.seed(body["seed"])
        return web.json_response({"ok": True})

    async def _stats(self, request: web.Request) -> web.Response:
        requests = self.requests
        assert isinstance(requests, _Requests)
        return web.json_response(
            {
                "requests": requests.seen,
                "accepted": sum(self.tally.values()),
                "in_flight": self.in_flight,
                "lost_answers": {k.value: v for k, v in self.lost_answers.items()},
                "reports": {**self.reports, "pending": len(self._tasks)},
                "received": [[n, t, c] for (n, t), c in self.tally.items()],
            }
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        await super().close()


async def serve(port: int) -> None:
    fake = PhoneCountingFake()
    await fake.start(port=port)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.close()


if __name__ == "__main__":
    try:
        asyncio.run(serve(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass

"""The fake Africa's Talking server (tests/fakes/africastalking.py) as its own process, so
that the benchmark's senders do not share its CPU time: ``python bench/fake_provider.py PORT``.
It keeps no record of what it was sent (a long run would fill memory), only counts:
``GET /stats`` answers ``{"requests": n, "accepted": recipients, "first_form": {...}}``
(the first request's form, for a plain client to post the same)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Protocol

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.africastalking import FakeAfricasTalking

USERNAME, API_KEY = "sampark", "atsk_bench_key"


class Counter(list[object]):
    """Counts what would have been recorded, and keeps the first of it (a request's form,
    which a plain client then posts as the gateway did)."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded = 0
        self.first: object = None

    def append(self, item: object) -> None:
        if not self.recorded:
            self.first = item
        self.recorded += 1


class CountingFake(FakeAfricasTalking):
    def make_app(self) -> web.Application:
        app = super().make_app()
        app.router.add_get("/stats", self._stats)
        return app

    async def _stats(self, request: web.Request) -> web.Response:
        requests, sent = self.requests, self.sent
        assert isinstance(requests, Counter) and isinstance(sent, Counter)
        first = getattr(requests.first, "form", None)
        return web.json_response(
            {
                "requests": requests.recorded,
                "accepted": sent.recorded,
                "first_form": dict(first) if first is not None else None,
            }
        )


class Fake(Protocol):
    """What the fakes of tests/fakes share: started on a port, closed."""

    async def start(self, *, port: int = 0) -> str: ...
    async def close(self) -> None: ...


async def serve_forever(fake: Fake, port: int) -> None:
    """Run ``fake`` on ``port`` until the process is stopped (the fake servers' main)."""
    await fake.start(port=port)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.close()


async def serve(port: int) -> None:
    fake = CountingFake(username=USERNAME, api_key=API_KEY)
    fake.requests = Counter()  # type: ignore[assignment]
    fake.sent = Counter()  # type: ignore[assignment]
    await serve_forever(fake, port)


if __name__ == "__main__":
    try:
        asyncio.run(serve(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass

"""The fake Exotel server (tests/fakes/exotel.py) as its own process, so that the
benchmark's senders do not share its CPU time: ``python bench/fake_exotel.py PORT``.

It keeps no record of what it was sent (a long run would fill memory), only counts:
``GET /stats`` answers ``{"requests": n, "accepted": recipients, "busiest_minute": n}``,
the last being the most send requests that reached it within any 60 seconds (what
Exotel's 200 a minute per account is measured against).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from pathlib import Path
from typing import Final

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fake_provider import Counter, serve_forever

from tests.fakes.exotel import ExotelRequest, FakeExotel

SID, API_KEY, API_TOKEN = "sampark1", "exotel_bench_key", "exotel_bench_token"
SENDER, DLT_ENTITY_ID = "HPSEVA", "1101234567890123456"
WINDOW: Final = 60.0


class _Minutes(Counter):
    """Counts requests, and the most of them within any :data:`WINDOW` seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.recent: deque[float] = deque()
        self.busiest = 0

    def append(self, item: object) -> None:
        super().append(item)
        at = item.at if isinstance(item, ExotelRequest) else time.monotonic()
        self.recent.append(at)
        while self.recent and self.recent[0] <= at - WINDOW:
            self.recent.popleft()
        self.busiest = max(self.busiest, len(self.recent))


class CountingFake(FakeExotel):
    def make_app(self) -> web.Application:
        app = super().make_app()
        app.router.add_get("/stats", self._stats)
        return app

    async def _stats(self, request: web.Request) -> web.Response:
        requests, sent = self.requests, self.sent
        assert isinstance(requests, _Minutes) and isinstance(sent, Counter)
        return web.json_response(
            {
                "requests": requests.recorded,
                "accepted": sent.recorded,
                "busiest_minute": requests.busiest,
            }
        )


async def serve(port: int) -> None:
    fake = CountingFake(sid=SID, api_key=API_KEY, api_token=API_TOKEN)
    fake.requests = _Minutes()  # type: ignore[assignment]
    fake.sent = Counter()  # type: ignore[assignment]
    await serve_forever(fake, port)


if __name__ == "__main__":
    try:
        asyncio.run(serve(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass

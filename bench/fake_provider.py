"""The fake Africa's Talking server (tests/fakes/africastalking.py) as its own process, so
that the benchmark's senders do not share its CPU time: ``python bench/fake_provider.py PORT``.
It keeps no record of what it was sent (a long run would fill memory)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.africastalking import FakeAfricasTalking

USERNAME, API_KEY = "sampark", "atsk_bench_key"


class _Forgetful(list[object]):
    def append(self, item: object) -> None:
        pass


async def serve(port: int) -> None:
    fake = FakeAfricasTalking(username=USERNAME, api_key=API_KEY)
    fake.requests = _Forgetful()  # type: ignore[assignment]
    fake.sent = _Forgetful()  # type: ignore[assignment]
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

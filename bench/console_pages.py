"""The staff console's pages at state size: how long each takes to render.

Fills a scratch database with N complaints (default 100,000; :func:`review.fill`: three
months of a state's complaints with their events), starts the gateway (no worker) on a
loopback port, signs in as a state administrator, a district administrator and a block
officer over HTTP (the real sign-in, session and CSRF), and times each page as a browser
asks for it: the landing list, a filtered list, a later page, a text search and one
complaint's page. Prints the median, 95th percentile and worst per page against the
200 ms target. ``DATABASE_URL`` (a PostgreSQL server: a scratch database on it) and
``REDIS_URL`` point it elsewhere. Run: ``python bench/console_pages.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from review import fill
from scratch import scratch_config

from gateway.app import CONFIG, create_app
from gateway.config import Config
from gateway.staff.accounts import NewStaff, add_staff
from gateway.staff.passwords import set_password
from gateway.storage.models import Complaint, StaffRole

TARGET_MS = 200.0
PASSWORD = "bench password 1"
ACCOUNTS = {
    "state_admin": NewStaff(username="state_admin", name="State", role=StaffRole.STATE_ADMIN),
    "district_admin": NewStaff(
        username="district_admin", name="DC", role=StaffRole.DISTRICT_ADMIN, district="shimla"
    ),
    "officer": NewStaff(
        username="officer",
        name="JE",
        role=StaffRole.OFFICER,
        department="jal_shakti",
        level="block",
        area="theog",
    ),
}


@dataclass(frozen=True)
class Timing:
    who: str
    page: str
    times_ms: list[float]

    def pct(self, p: float) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)


async def _signed_in(server: TestServer, username: str) -> TestClient:  # type: ignore[type-arg]
    client: TestClient = TestClient(server)  # type: ignore[type-arg]
    await client.start_server()
    page = await (await client.get("/console/signin")).text()
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token on the sign-in page"
    answer = await client.post(
        "/console/signin",
        data={"csrf": found.group(1), "username": username, "password": PASSWORD},
        allow_redirects=False,
    )
    assert answer.status == 303, f"{username}: sign-in answered {answer.status}"
    return client


async def _time(client: TestClient, path: str, rounds: int) -> list[float]:  # type: ignore[type-arg]
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        answer = await client.get(path)
        await answer.read()
        times.append((time.perf_counter() - t0) * 1000)
        assert answer.status == 200, f"{path}: {answer.status}"
    return times


async def _pages(username: str) -> dict[str, str]:
    scope_filter = {"district_admin": {"district": "shimla"},
                    "officer": {"department": "jal_shakti", "block": "theog"}}  # fmt: skip
    one = await Complaint.filter(level=1, **scope_filter.get(username, {})).order_by("-id").first()
    assert one is not None
    return {
        "list": "/console/",
        "list, filtered": "/console/?department=jal_shakti&overdue=true&level=block",
        "list, page 5": "/console/?page=5",
        "list, text search": "/console/?q=T00000",
        "complaint": f"/console/complaints/{one.ticket}",
    }


async def measure(config: Config, complaints: int, rounds: int) -> list[Timing]:
    app = create_app(config, with_worker=False)
    server = TestServer(app)
    await server.start_server()
    clients = []
    try:
        t0 = time.perf_counter()
        await fill(complaints)
        written = time.perf_counter() - t0
        database = config.database.url.split(":")[0]
        print(f"Console pages, database {database}: {complaints:,} complaints "
              f"(written in {written:.0f} s)")  # fmt: skip
        for new in ACCOUNTS.values():
            staff = await add_staff(app[CONFIG], new, actor="bench")
            await set_password(staff, PASSWORD, actor="bench")
        timings = []
        for username in ACCOUNTS:
            client = await _signed_in(server, username)
            clients.append(client)
            for name, path in (await _pages(username)).items():
                await _time(client, path, 2)  # warm: caches, the first compile of a template
                times = await _time(client, path, rounds)
                timing = Timing(username, name, times)
                timings.append(timing)
                print(f"  {username:15} {name:18} p50 {timing.median:6.1f} ms  "
                      f"p95 {timing.pct(0.95):6.1f} ms  max {max(times):6.1f} ms")  # fmt: skip
        return timings
    finally:
        for client in clients:
            await client.close()
        await server.close()


async def main(complaints: int, rounds: int) -> list[Timing]:
    async with scratch_config("console") as config:
        timings = await measure(config, complaints, rounds)
    worst = max(timings, key=lambda t: t.pct(0.95))
    verdict = "yes" if worst.pct(0.95) < TARGET_MS else "NO"
    print(f"  slowest: {worst.who} {worst.page}, p95 {worst.pct(0.95):.1f} ms "
          f"(target < {TARGET_MS:.0f} ms: {verdict})")  # fmt: skip
    return timings


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--complaints", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.complaints, args.rounds))

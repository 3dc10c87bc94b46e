"""USSD hops through one web process, then two, on one PostgreSQL and one Redis: how the
gateway scales out (``docs/deploy.md``, "How to grow").

For each count, that many ``server.py --no-worker`` processes on a scratch PostgreSQL
database (``DATABASE_URL``, else ``TEST_POSTGRES_URL``, names the server) and one Redis
(``REDIS_URL``, else a redis-server of this run's own), driven as ``bench/ussd_hops.py``
drives one (the same walk, a closed loop), the sessions spread evenly over the
processes as a load balancer would. Prints hops a second and latency for each count, and
the ratio to one process. The driver shares the machine: on two CPUs the second process
competes with it, so the ratio is a floor.

Run: ``python bench/multiprocess_hops.py [--seconds 5] [--sessions 200] [--processes 1,2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch import BENCH_CALLBACK_SECRET, private_config_file, scratch_workspace
from ussd_hops import Result, drive, free_port, start, stop, wait_ready

ROOT = Path(__file__).resolve().parent.parent


@asynccontextmanager
async def redis_url() -> AsyncIterator[str]:
    """``REDIS_URL``, else a redis-server of this run's own (nothing saved), stopped after."""
    if os.environ.get("REDIS_URL", "embedded") != "embedded":
        yield os.environ["REDIS_URL"]
        return
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        args = ("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory)
        proc = start(["redis-server", *args], dict(os.environ))
        try:
            await asyncio.sleep(0.5)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop(proc)


async def spread(urls: list[str], sessions: int, seconds: float) -> Result:
    """``sessions`` closed-loop sessions shared evenly over ``urls``, merged."""
    shares = [sessions // len(urls) + (i < sessions % len(urls)) for i in range(len(urls))]
    parts = await asyncio.gather(*(drive(u, n, seconds) for u, n in zip(urls, shares, strict=True)))
    return Result(
        sum(p.requests for p in parts),
        max(p.seconds for p in parts),
        [ms for p in parts for ms in p.latencies_ms],
    )


async def measure(count: int, sessions: int, seconds: float, env: dict[str, str]) -> Result:
    """Hops through ``count`` web processes started for this run, stopped after."""
    ports = [free_port() for _ in range(count)]
    procs = []
    tmp = Path(env["SAMPARK_CONFIG"]).parent
    try:
        for port in ports:  # one at a time: the first migrates a new database
            penv = dict(env, PORT=str(port))
            procs.append(
                start(
                    [sys.executable, "server.py", "--no-worker"], penv, log=tmp / f"web-{port}.log"
                )
            )
            await wait_ready(f"http://127.0.0.1:{port}/healthz/ready", lambda s: s == 200)
        urls = [f"http://127.0.0.1:{p}/ussd/africastalking/{BENCH_CALLBACK_SECRET}" for p in ports]
        await spread(urls, sessions, min(seconds, 2.0))  # warm up: connections, caches
        return await spread(urls, sessions, seconds)
    finally:
        for proc in procs:
            stop(proc)


async def main(counts: list[int], sessions: int, seconds: float) -> dict[int, Result]:
    if not (os.environ.get("DATABASE_URL") or "").startswith("postgres"):
        os.environ["DATABASE_URL"] = os.environ.get("TEST_POSTGRES_URL", "")
    if not os.environ["DATABASE_URL"].startswith("postgres"):
        raise SystemExit(
            "several web processes share one database: set DATABASE_URL or "
            "TEST_POSTGRES_URL to a PostgreSQL server"
        )
    results: dict[int, Result] = {}
    async with redis_url() as redis, scratch_workspace("multiprocess-hops") as (tmp, database):
        env = {k: v for k, v in os.environ.items() if k not in ("PORT", "SAMPARK_CONFIG")}
        env.update(
            SAMPARK_CONFIG=str(private_config_file(tmp)),
            DATABASE_URL=database,
            REDIS_URL=redis,
            SAMPARK__WORKER__EMBEDDED="false",
        )
        for count in counts:
            results[count] = await measure(count, sessions, seconds, env)
    one = results.get(1)
    print(
        f"USSD hops through several web processes, {sessions} sessions in a closed loop, "
        f"{seconds:.0f} s, {os.cpu_count()} CPUs (the driver among them), PostgreSQL, Redis"
    )
    print(f"{'processes':>9} | {'hops/s':>7} {'p50 ms':>7} {'p99 ms':>7} | {'vs one':>6}")
    for count, r in results.items():
        ratio = f"{r.rps / one.rps:>6.2f}" if one else "     -"
        print(f"{count:>9} | {r.rps:>7.0f} {r.pct(0.5):>7.1f} {r.pct(0.99):>7.1f} | {ratio}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args()
    asyncio.run(main([int(x) for x in args.processes.split(",")], args.sessions, args.seconds))

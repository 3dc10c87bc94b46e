"""USSD hops: the gateway walking its real menus against a bare aiohttp ceiling.

Both servers run as their own processes on loopback; this process drives them through
Africa's Talking's USSD callback with N concurrent sessions and reports requests per
second and latency percentiles at each concurrency, side by side, so the ratio holds on
a noisy machine. Run: ``make bench`` (or ``python bench/ussd_hops.py --seconds 5``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from scratch import BENCH_CALLBACK_SECRET, private_config_file, scratch_workspace

ROOT = Path(__file__).resolve().parent.parent
# A session as a citizen walks it: language, new complaint, Jal Shakti, Shimla, Theog,
# "no water supply" -> the confirm screen (not submitted: this measures hops).
WALK = ("2", "1", "2", "9", "2", "1")
# The same, submitted: the complaint is written and its acknowledgement queued.
REGISTER = (*WALK, "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    requests: int
    seconds: float
    latencies_ms: list[float]
    walks: int = 0
    """Sessions that walked the whole way (registrations, with REGISTER)."""

    @property
    def walks_per_second(self) -> float:
        return self.walks / self.seconds

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(
    url: str,
    concurrency: int,
    seconds: float,
    walk: tuple[str, ...] = WALK,
    *,
    ends: bool = False,
    think: tuple[float, float] | None = None,
) -> Result:
    """``concurrency`` sessions, each walking ``walk`` then starting again, for ``seconds``.

    With ``ends`` the walk's last screen must be an END (a registration, its ticket). With
    ``think`` each session waits between ``think[0]`` and ``think[1]`` seconds before each
    answer, as a person reading the screen and typing does (not counted in the latency);
    without it, sessions answer at once: a closed loop, the server's saturation."""
    latencies: list[float] = []
    walks = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)

    async def session_loop(http: aiohttp.ClientSession) -> None:
        nonlocal walks
        while time.perf_counter() < deadline:
            sid, phone = f"B{uuid.uuid4().hex[:16]}", f"+9197{uuid.uuid4().int % 10**8:08d}"
            inputs: list[str] = []
            for i, step in enumerate(("", *walk)):
                if step:
                    inputs.append(step)
                if think is not None:
                    await asyncio.sleep(random.uniform(*think))
                form = {
                    "sessionId": sid,
                    "serviceCode": "*1100#",
                    "phoneNumber": phone,
                    "networkCode": "40445",
                    "text": "*".join(inputs),
                }
                t0 = time.perf_counter()
                async with http.post(url, data=form) as resp:
                    body = await resp.text()
                if time.perf_counter() >= deadline:
                    return
                latencies.append((time.perf_counter() - t0) * 1000)
                expected = "END" if ends and i == len(walk) else "CON"
                if resp.status != 200 or not body.startswith(expected):
                    raise RuntimeError(f"unexpected answer {resp.status}: {body[:80]!r}")
            walks += 1

    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(session_loop(http) for _ in range(concurrency)))
    return Result(len(latencies), time.perf_counter() - start, latencies, walks)


def start(
    cmd: list[str], env: dict[str, str], *, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a process in its own group; its output goes to ``log`` (or nowhere: an unread
    pipe would fill and stop it)."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=out,
        start_new_session=True,
    )


async def wait_ready(url: str, check: Callable[[int], bool], *, within: float = 30) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as resp:
                    if check(resp.status):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process as Ctrl-C would, then its group: the gateway stops its own embedded
    Redis once its jobs under way are done, which a signal to the group would cut short."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


PACED_SESSIONS = 200
PACE = (1.0, 3.0)
"""Seconds a person takes to read a screen and answer (a quick one): the paced run."""


@dataclass
class HopFigures:
    levels: list[tuple[int, Result, Result]]
    """(sessions, ceiling, gateway) in a closed loop: each answer sent at once."""
    paced: tuple[Result, Result]
    """(ceiling, gateway) at :data:`PACED_SESSIONS` sessions answering at :data:`PACE`."""
    registrations: tuple[Result, Result]


async def main(levels: list[int], seconds: float) -> HopFigures:
    """The hop, paced and registration runs, the gateway on a scratch database."""
    async with scratch_workspace("bench") as (tmp, database_url):
        return await _measure(levels, seconds, tmp, database_url)


async def _measure(levels: list[int], seconds: float, tmp: Path, database_url: str) -> HopFigures:
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "SAMPARK_CONFIG")}
    ceiling_port, gateway_port = free_port(), free_port()
    ceiling = start([sys.executable, str(ROOT / "bench" / "ceiling.py"), str(ceiling_port)], env)
    genv = dict(env, PORT=str(gateway_port), SAMPARK_CONFIG=str(private_config_file(tmp)))
    genv["DATABASE_URL"] = database_url
    genv.setdefault("REDIS_URL", "embedded")
    gateway = start([sys.executable, "server.py"], genv, log=tmp / "gateway.log")
    ceiling_url = f"http://127.0.0.1:{ceiling_port}/ussd/africastalking"
    gateway_url = f"http://127.0.0.1:{gateway_port}/ussd/africastalking/{BENCH_CALLBACK_SECRET}"
    try:
        await wait_ready(f"http://127.0.0.1:{ceiling_port}/healthz", lambda s: s == 200)
        await wait_ready(f"http://127.0.0.1:{gateway_port}/healthz", lambda s: s == 200)
        rows = []
        for n in levels:
            bare = await drive(ceiling_url, n, seconds)
            real = await drive(gateway_url, n, seconds)
            rows.append((n, bare, real))
        paced_seconds = max(2 * seconds, 10.0)
        paced = (
            await drive(ceiling_url, PACED_SESSIONS, paced_seconds, think=PACE),
            await drive(gateway_url, PACED_SESSIONS, paced_seconds, think=PACE),
        )
        reg_n = 50
        reg_bare = await drive(ceiling_url, reg_n, seconds, REGISTER)
        reg = await drive(gateway_url, reg_n, seconds, REGISTER, ends=True)
        print(
            f"USSD hops, {seconds:.0f} s per run, {os.cpu_count()} CPUs, "
            f"database {genv['DATABASE_URL'].split(':')[0]}, "
            f"redis {genv['REDIS_URL'].split(':')[0]}"
        )
        print(
            f"{'sessions':>8} | {'ceiling rps':>11} {'p50 ms':>7} {'p99 ms':>7} | "
            f"{'gateway rps':>11} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5}"
        )
        for n, bare, real in rows:
            print(
                f"{n:>8} | {bare.rps:>11.0f} {bare.pct(0.5):>7.1f} {bare.pct(0.99):>7.1f} | "
                f"{real.rps:>11.0f} {real.pct(0.5):>7.1f} {real.pct(0.99):>7.1f} | "
                f"{real.rps / bare.rps:>5.2f}"
            )
        print(
            f"\n{PACED_SESSIONS} sessions answering as people do ({PACE[0]:.0f}-{PACE[1]:.0f} s "
            f"a screen), {paced_seconds:.0f} s"
        )
        print(f"{'':>8} | {'hops/s':>11} {'p50 ms':>7} {'p99 ms':>7}")
        for name, r in (("ceiling", paced[0]), ("gateway", paced[1])):
            print(f"{name:>8} | {r.rps:>11.0f} {r.pct(0.5):>7.1f} {r.pct(0.99):>7.1f}")
        print(
            f"\nRegistrations ({len(REGISTER) + 1} hops each, the complaint written, its "
            f"acknowledgement queued), {reg_n} concurrent sessions"
        )
        print(f"{'':>8} | {'walks/s':>11} {'p50 ms':>7} {'p99 ms':>7}   (per hop)")
        for name, r in (("ceiling", reg_bare), ("gateway", reg)):
            print(f"{name:>8} | {r.walks_per_second:>11.1f} {r.pct(0.5):>7.1f} {r.pct(0.99):>7.1f}")
        print(f"{'ratio':>8} | {reg.walks_per_second / reg_bare.walks_per_second:>11.2f}")
        return HopFigures(rows, paced, (reg_bare, reg))
    finally:
        stop(gateway)
        stop(ceiling)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sessions", default="50,200,500")
    args = parser.parse_args()
    asyncio.run(main([int(x) for x in args.sessions.split(",")], args.seconds))

"""Bulk from the browser: a CSV campaign composed, started and watched in the staff console.

The gateway (``server.py``, embedded workers) and the fake Africa's Talking each run as
their own process, as in :mod:`campaign`. A state administrator (made with the staff CLI,
its password set) signs in as a browser does (the sign-in page's CSRF token and cookie,
then the form), uploads a CSV file of N numbers through the notices compose form
(multipart, within the form's 4 MiB limit), which answers with the preview, and starts it.
Until the campaign is done, every second: the progress counts ``notices.js`` polls
(``/console/notices/{id}/progress``) and the notice's page, each timed. Reports the time
to done, both latencies (p50, p95, worst) against :data:`LIVE_MS`, how often the counts
moved, and the gateway's peak memory (psutil's RSS sampled, and the kernel's high-water
mark) against the campaign benchmark's 300 MB. Rate limit and quiet hours as there.
Run: ``python bench/console_campaign.py --recipients 100000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import bench_config, peak_mb
from fake_provider import API_KEY, USERNAME
from scratch import scratch_workspace
from ussd_hops import free_port, start, stop, wait_ready

ROOT = Path(__file__).resolve().parent.parent
LIVE_MS = 500.0
"""Every poll (the counts and the page) answers within this while the campaign runs."""
MEMORY_MB = 300.0
"""The campaign benchmark's target for the gateway process."""
PASSWORD = "bench password 1"
VARIABLES = {"service": "Water supply", "place": "Theog", "update": "restored"}


@dataclass
class Run:
    """What one campaign's watching saw."""

    json_ms: list[float] = field(default_factory=list)
    page_ms: list[float] = field(default_factory=list)
    settled: list[int] = field(default_factory=list)
    """Settled messages (sent, delivered, failed...) at each poll."""
    rss_mb: float = 0.0

    @staticmethod
    def pct(times: list[float], p: float) -> float:
        ordered = sorted(times)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")

    @property
    def moves(self) -> int:
        """Polls whose counts differed from the one before."""
        return sum(1 for a, b in zip(self.settled, self.settled[1:], strict=False) if b != a)

    @property
    def worst_ms(self) -> float:
        return max(self.json_ms + self.page_ms, default=float("nan"))

    @property
    def live(self) -> bool:
        """Every poll within :data:`LIVE_MS`, and new counts at least every other poll
        (a staff member watching sees it move, not a bar that jumps at the end)."""
        return self.worst_ms < LIVE_MS and 2 * self.moves >= len(self.settled) - 1


def csv_file(count: int) -> bytes:
    """A CSV file of ``count`` distinct Indian mobile numbers, with a header row."""
    return ("phone\n" + "".join(f"+9196{i:08d}\n" for i in range(count))).encode()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _staff(genv: dict[str, str]) -> None:
    """A state administrator with a console password, as an operator makes one."""
    cli = [sys.executable, "-m", "gateway", "staff"]
    add = ["add", "--username", "bench", "--name", "Bench", "--role", "state_admin"]
    for args, stdin in ((add, None), (["password", "bench", "--password-stdin"], PASSWORD)):
        subprocess.run(
            [*cli, *args], cwd=ROOT, env=genv, input=stdin, text=True, check=True,
            capture_output=True,
        )  # fmt: skip


async def sign_in(http: aiohttp.ClientSession, base: str) -> None:
    """The browser's sign-in: the page (its token, the session cookie), then the form."""
    async with http.get(f"{base}/console/signin") as resp:
        token = _csrf(await resp.text())
    form = {"csrf": token, "username": "bench", "password": PASSWORD}
    async with http.post(f"{base}/console/signin", data=form, allow_redirects=False) as resp:
        assert resp.status == 303, f"sign-in answered {resp.status}"


async def compose(http: aiohttp.ClientSession, base: str, count: int) -> int:
    """The compose form with the CSV file; the previewed draft's id."""
    async with http.get(f"{base}/console/notices/new") as resp:
        token = _csrf(await resp.text())
    data = aiohttp.FormData()
    fields = {"csrf": token, "template": "area_update", "audience": "csv"}
    fields.update({f"var_{k}": v for k, v in VARIABLES.items()})
    for name, value in fields.items():
        data.add_field(name, value)
    data.add_field("csv", csv_file(count), filename="numbers.csv", content_type="text/csv")
    async with http.post(f"{base}/console/notices", data=data) as resp:
        html = await resp.text()
        assert resp.status == 200, (resp.status, html[:500])
    found = re.search(r'action="/console/notices/(\d+)/start"', html)
    assert found, f"no start button on the preview: {html[:500]}"
    return int(found.group(1))


async def begin(http: aiohttp.ClientSession, base: str, campaign: int) -> None:
    page = f"{base}/console/notices/{campaign}"
    async with http.get(page) as resp:
        token = _csrf(await resp.text())
    form = {"csrf": token, "when": "now"}
    async with http.post(f"{page}/start", data=form, allow_redirects=False) as resp:
        assert resp.status == 303, f"start answered {resp.status}"


async def _timed(http: aiohttp.ClientSession, url: str, into: list[float]) -> bytes:
    t0 = time.perf_counter()
    async with http.get(url) as resp:
        body = await resp.read()
        assert resp.status == 200, f"{url}: {resp.status}"
    into.append((time.perf_counter() - t0) * 1000)
    return body


async def watch(http: aiohttp.ClientSession, base: str, campaign: int, *, limit_s: float) -> Run:
    """Poll the counts and the page every second until the campaign is done."""
    run, page = Run(), f"{base}/console/notices/{campaign}"
    t0 = time.perf_counter()
    while True:
        tick = time.perf_counter()
        async with http.get(f"{page}/progress") as resp:
            got = await resp.json()
        run.json_ms.append((time.perf_counter() - tick) * 1000)
        settled = sum(got[k] for k in ("sent", "delivered", "failed", "cancelled", "unknown"))
        run.settled.append(settled)
        await _timed(http, page, run.page_ms)
        if got["status"] == "done":
            return run
        if time.perf_counter() - t0 > limit_s:
            raise RuntimeError(f"not done after {limit_s:.0f} s: {got}")
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - tick)))


async def sample_rss(pid: int, run: Run) -> None:
    """The gateway's resident memory, every 0.1 s (psutil), its highest kept in ``run``."""
    proc = psutil.Process(pid)
    while True:
        with contextlib.suppress(psutil.Error):
            run.rss_mb = max(run.rss_mb, proc.memory_info().rss / 2**20)
        await asyncio.sleep(0.1)


async def main(count: int) -> dict[str, float]:
    """Run it on a scratch database; its figures (seconds, milliseconds, MB)."""
    async with scratch_workspace("console_campaign") as (tmp, database_url):
        return await _measure(count, tmp, database_url)


async def _measure(count: int, tmp: Path, database_url: str) -> dict[str, float]:
    fake_port, port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "SAMPARK_CONFIG")}
    fake = start([sys.executable, str(ROOT / "bench" / "fake_provider.py"), str(fake_port)], env)
    genv = dict(
        env,
        SAMPARK_CONFIG=str(bench_config(tmp)),
        PORT=str(port),
        SMS_PROVIDER="africastalking",
        AT_USERNAME=USERNAME,
        AT_API_KEY=API_KEY,
        AT_BASE_URL=f"http://127.0.0.1:{fake_port}",
        DATABASE_URL=database_url,
    )
    genv.setdefault("REDIS_URL", "embedded")
    gateway = start([sys.executable, "server.py"], genv, log=tmp / "gateway.log")
    base = f"http://127.0.0.1:{port}"
    run = Run()
    sampler = asyncio.create_task(sample_rss(gateway.pid, run))
    try:
        await wait_ready(f"http://127.0.0.1:{fake_port}/stats", lambda s: s == 200)
        await wait_ready(f"{base}/healthz", lambda s: s == 200)
        _staff(genv)
        # unsafe: the gateway is an IP address, whose cookies a jar refuses by default.
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            await sign_in(http, base)
            t0 = time.perf_counter()
            campaign = await compose(http, base, count)
            previewed = time.perf_counter() - t0
            await begin(http, base, campaign)
            started = time.perf_counter()
            watched = await watch(http, base, campaign, limit_s=600)
            done = time.perf_counter() - started
            async with http.get(f"http://127.0.0.1:{fake_port}/stats") as resp:
                stats = await resp.json()
        watched.rss_mb = run.rss_mb
    finally:
        sampler.cancel()
        hwm = peak_mb(gateway.pid)
        stop(gateway)
        stop(fake)
    return _report(count, genv, watched, previewed, done, hwm, stats)


def _report(
    count: int,
    genv: dict[str, str],
    run: Run,
    previewed: float,
    done: float,
    hwm: float,
    stats: dict[str, int],
) -> dict[str, float]:
    peak = max(run.rss_mb, hwm)
    figures = {
        "preview_s": previewed,
        "done_s": done,
        "polls": float(len(run.json_ms)),
        "moves": float(run.moves),
        "json_p50": Run.pct(run.json_ms, 0.5),
        "json_p95": Run.pct(run.json_ms, 0.95),
        "json_max": max(run.json_ms),
        "page_p50": Run.pct(run.page_ms, 0.5),
        "page_p95": Run.pct(run.page_ms, 0.95),
        "page_max": max(run.page_ms),
        "live": float(run.live),
        "gateway_mb": peak,
        "accepted": float(stats["accepted"]),
    }
    print(
        f"Console campaign, {count:,} recipients from a CSV upload, database "
        f"{genv['DATABASE_URL'].split(':')[0]}, redis {genv['REDIS_URL'].split(':')[0]}"
    )
    print(f"  upload and preview ({len(csv_file(count)) / 2**20:.1f} MB file): {previewed:6.1f} s")
    print(f"  start to done: {done:6.1f} s; the provider accepted {stats['accepted']:,}")
    for name, times in (("progress counts", run.json_ms), ("notice page", run.page_ms)):
        print(f"  {name:16} p50 {Run.pct(times, 0.5):6.1f} ms  p95 {Run.pct(times, 0.95):6.1f} ms"
              f"  max {max(times):6.1f} ms")  # fmt: skip
    live = "yes" if run.live else "NO"
    print(f"  {len(run.json_ms)} polls, the counts moved in {run.moves}; live (every poll "
          f"< {LIVE_MS:.0f} ms, new counts at least every other poll): {live}")  # fmt: skip
    met = "yes" if peak < MEMORY_MB else "NO"
    print(f"  gateway peak memory: {peak:.0f} MB (RSS sampled {run.rss_mb:.0f} MB, "
          f"high-water {hwm:.0f} MB; target < {MEMORY_MB:.0f} MB: {met})")  # fmt: skip
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(main(args.recipients))

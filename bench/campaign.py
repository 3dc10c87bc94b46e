"""Bulk: a whole campaign, from the staff's request to the last request reaching the provider.

The gateway (``server.py``, embedded workers) and the fake Africa's Talking (or, with
``provider="exotel"``, the fake Exotel: bench/exotel.py) each run as their own process.
A staff member and token are made with the staff CLI; then, through
``/api/v1``: create a CSV campaign of N numbers (template ``area_update``, identical text),
upload the numbers, start it, and wait until the fake has accepted every number. Reports
the total time, recipients per second reaching the provider, the provider requests
(batching) and the peak memory (VmHWM) of each process. The rate limit is set far
above what a run reaches (100,000 segments a second) and quiet hours are off.
Run: ``python bench/campaign.py --recipients 100000``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fake_exotel
from fake_provider import API_KEY, USERNAME
from plain_client import post_forms
from scratch import private_config_file, scratch_workspace
from ussd_hops import free_port, start, stop, wait_ready

ROOT = Path(__file__).resolve().parent.parent


def peak_mb(pid: int) -> float:
    """The process's peak resident memory so far (Linux), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


Ceiling = Callable[[str, int, int], Awaitable[float]]
"""Seconds for a plain client to post (fake's base URL, requests, recipients) as the
gateway did: the same requests to the same fake, the figure's ceiling."""


async def at_ceilings(fake_url: str, requests: int, recipients: int) -> tuple[float, float]:
    """A plain client posting the campaign's batches to the fake Africa's Talking: as many
    requests, each to as many numbers, the same form otherwise (the text and fields of the
    gateway's first request, as the fake saw it); seconds one request after another (as a
    campaign's runner sends them), and 50 at a time."""
    async with aiohttp.ClientSession() as http, http.get(f"{fake_url}/stats") as resp:
        first = dict((await resp.json())["first_form"])
    per = -(-recipients // max(1, requests))

    def forms() -> Iterator[bytes]:
        # Made as they are posted: a million numbers need not sit in memory at once.
        for low in range(0, recipients, per):
            to = ",".join(f"+9195{i:08d}" for i in range(low, min(low + per, recipients)))
            yield urlencode({**first, "to": to}).encode()

    url = f"{fake_url}/version1/messaging"
    headers = {
        "apiKey": API_KEY,
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    one = await post_forms(url, headers, forms(), wide=1, expect=201)
    wide = await post_forms(url, headers, forms(), wide=50, expect=201)
    return one, wide


def provider_env(provider: str, fake_url: str) -> tuple[str, dict[str, str]]:
    """The fake server's script for ``provider`` and the gateway's environment for it."""
    if provider == "exotel":
        return "fake_exotel.py", {
            "SMS_PROVIDER": "exotel",
            "EXOTEL_SID": fake_exotel.SID,
            "EXOTEL_API_KEY": fake_exotel.API_KEY,
            "EXOTEL_API_TOKEN": fake_exotel.API_TOKEN,
            "EXOTEL_SENDER": fake_exotel.SENDER,
            "EXOTEL_BASE_URL": fake_url,
            "DLT_ENTITY_ID": fake_exotel.DLT_ENTITY_ID,
        }
    return "fake_provider.py", {
        "SMS_PROVIDER": "africastalking",
        "AT_USERNAME": USERNAME,
        "AT_API_KEY": API_KEY,
        "AT_BASE_URL": fake_url,
    }


def bench_config(
    tmp: Path, *, batch_size: int | None = None, sms: dict[str, Any] | None = None
) -> Path:
    """The shipped config with no quiet hours and a rate no run reaches (and ``batch_size``
    recipients a request, when given; ``sms`` settings over the shipped ones), private to
    this run."""
    # The rate limit must not be what is measured: at 10,000 segments a second, this
    # campaign's two-segment Hindi text capped the figure at 5,000 recipients a second.
    bulk: dict[str, Any] = {"segments_per_second": 100_000, "quiet_hours": None}
    if batch_size is not None:
        bulk["batch_size"] = batch_size
    return private_config_file(tmp, bulk=bulk, sms=sms)


async def numbers(count: int) -> AsyncIterator[bytes]:
    chunk: list[str] = []
    for i in range(count):
        chunk.append(f"+9196{i:08d}\n")
        if len(chunk) == 5000:
            yield "".join(chunk).encode()
            chunk = []
    if chunk:
        yield "".join(chunk).encode()


async def main(
    count: int,
    *,
    batch_size: int | None = None,
    provider: str = "africastalking",
    sms: dict[str, Any] | None = None,
    ceiling: Ceiling | None = None,
) -> dict[str, float]:
    """Run the campaign on a scratch database through ``provider``'s fake (``sms``
    settings over the shipped ones); its figures (seconds, MB, requests, and with
    ``ceiling`` the plain client's seconds for the same requests, ``ceiling_s``)."""
    async with scratch_workspace(f"campaign-{provider}") as (tmp, database_url):
        return await _measure(
            count,
            tmp,
            database_url,
            batch_size=batch_size,
            provider=provider,
            sms=sms,
            ceiling=ceiling,
        )


async def _measure(
    count: int,
    tmp: Path,
    database_url: str,
    *,
    batch_size: int | None,
    provider: str,
    sms: dict[str, Any] | None,
    ceiling: Ceiling | None,
) -> dict[str, float]:
    fake_port, port = free_port(), free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "SAMPARK_CONFIG")}
    script, provider_vars = provider_env(provider, fake_url)
    fake = start([sys.executable, str(ROOT / "bench" / script), str(fake_port)], env)
    genv = dict(
        env,
        SAMPARK_CONFIG=str(bench_config(tmp, batch_size=batch_size, sms=sms)),
        PORT=str(port),
        **provider_vars,
    )
    genv["DATABASE_URL"] = database_url
    genv.setdefault("REDIS_URL", "embedded")
    gateway = start([sys.executable, "server.py"], genv, log=tmp / "gateway.log")
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        await wait_ready(f"http://127.0.0.1:{fake_port}/stats", lambda s: s == 200)
        await wait_ready(f"http://127.0.0.1:{port}/healthz", lambda s: s == 200)
        cli = [sys.executable, "-m", "gateway", "staff"]
        subprocess.run(  # noqa: ASYNC221 (before anything is measured)
            [*cli, "add", "--username", "bench", "--name", "Bench", "--role", "state_admin"],
            cwd=ROOT,
            env=genv,
            check=True,
            capture_output=True,
        )
        issued = subprocess.run(  # noqa: ASYNC221
            [*cli, "token", "issue", "bench", "--label", "bench"],
            cwd=ROOT,
            env=genv,
            check=True,
            capture_output=True,
            text=True,
        )
        headers = {"Authorization": f"Bearer {issued.stdout.strip().splitlines()[-1]}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            t0 = time.perf_counter()
            body = {
                "template": "area_update",
                "variables": {"service": "Water supply", "place": "Theog", "update": "restored"},
                "audience": {"csv": ""},
            }
            async with http.post(f"{base}/campaigns", json=body) as resp:
                assert resp.status == 201, (resp.status, await resp.text())
                campaign = (await resp.json())["id"]
            async with http.post(
                f"{base}/campaigns/{campaign}/numbers",
                data=numbers(count),
                headers={"Content-Type": "text/csv"},
            ) as resp:
                assert resp.status == 200, (resp.status, await resp.text())
            uploaded = time.perf_counter() - t0
            async with http.post(f"{base}/campaigns/{campaign}/start") as resp:
                assert resp.status == 200, (resp.status, await resp.text())
            stats = {"requests": 0, "accepted": 0}
            stalled_since, last = time.perf_counter(), -1
            while stats["accepted"] < count:
                await asyncio.sleep(0.2)
                async with http.get(f"http://127.0.0.1:{fake_port}/stats") as resp:
                    stats = await resp.json()
                if stats["accepted"] != last:
                    stalled_since, last = time.perf_counter(), stats["accepted"]
                elif time.perf_counter() - stalled_since > 60:
                    raise RuntimeError(
                        f"campaign stalled at {last} of {count}; see {tmp / 'gateway.log'}"
                    )
            total = time.perf_counter() - t0
            async with http.get(f"{base}/campaigns/{campaign}") as resp:
                sent = await resp.json()
            # The plain client, after the campaign: the same fake, the same requests.
            ceiling_s = await ceiling(fake_url, stats["requests"], count) if ceiling else None
            wide_s = None
            if ceiling is None and provider == "africastalking":
                ceiling_s, wide_s = await at_ceilings(fake_url, stats["requests"], count)
        figures = {
            "total_s": total,
            "upload_s": uploaded,
            "send_s": total - uploaded,
            "requests": stats["requests"],
            "segments": sent["segments_total"] / max(1, sent["recipients_total"]),
            "gateway_mb": peak_mb(gateway.pid),
            "fake_mb": peak_mb(fake.pid),
            "bench_mb": peak_mb(os.getpid()),
        }
        if ceiling_s is not None:
            figures["ceiling_s"] = ceiling_s
        if wide_s is not None:
            figures["ceiling_wide_s"] = wide_s
        print(
            f"Campaign, {count:,} recipients, identical text, {provider}, database "
            f"{genv['DATABASE_URL'].split(':')[0]}, redis {genv['REDIS_URL'].split(':')[0]}"
        )
        print(f"  total, request to last provider request: {total:8.1f} s")
        print(f"  of which creating it and uploading the numbers: {uploaded:5.1f} s")
        print(
            "  recipients per second reaching the provider, once started: "
            f"{count / (total - uploaded):8.0f}"
        )
        print(
            f"  provider requests: {stats['requests']:,}; "
            f"segments a message: {figures['segments']:.1f}"
        )
        if wide_s is not None and ceiling_s is not None:
            send_s = total - uploaded
            print(
                f"  plain aiohttp client, the same {stats['requests']:,} requests one after "
                f"another: {count / ceiling_s:8.0f} recipients/s; the gateway is "
                f"{ceiling_s / send_s:.2f} of it"
            )
            print(
                f"  the same, 50 requests at a time: {count / wide_s:8.0f} recipients/s; "
                f"the gateway is {wide_s / send_s:.2f} of it"
            )
        print(
            f"  peak memory: gateway {figures['gateway_mb']:.0f} MB, fake provider "
            f"{figures['fake_mb']:.0f} MB, this driver {figures['bench_mb']:.0f} MB"
        )
        return figures
    finally:
        stop(gateway)
        stop(fake)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="recipients a request (config: 200)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.recipients, batch_size=args.batch_size))

"""Exotel: the gateway's SMS through ``SMS_PROVIDER=exotel`` to a fake Exotel on loopback.

The fake (bench/fake_exotel.py, tests/fakes/exotel.py in its own process) speaks Exotel's
wire format: HTTP Basic auth, the ``Sms/send.json`` form with ``To`` comma-separated,
``{"SMSMessage": ...}`` answers. Three parts, each on its own scratch database:

* outbound: one message a request through the gateway's worker (``send_sms``), next to a
  plain aiohttp client posting the same forms to the same fake, 50 at a time;
* campaign: a bulk campaign through the API (bench/campaign.py), next to a plain client
  posting as many requests, each to as many numbers, to the same fake;
* paced (``--paced N``): N single messages at the provider's default pacing (180
  requests a minute), and the most requests the fake saw within any 60 seconds, which
  must stay under Exotel's 200. It takes about N / 3 seconds: ``make bench`` runs it
  with ``--exotel-paced``.

In the first two, the pacing is raised through configuration
(``sms.exotel.requests_per_minute`` and ``segments_per_minute``) far above what a run
reaches: at 180 a minute the figures would measure the limit, not the gateway.
Run: ``python bench/exotel.py --messages 2000 --recipients 20000 --paced 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import campaign
import fake_exotel
from outbound import CONCURRENCY, TEXT, gateway
from plain_client import post_forms
from scratch import scratch_config
from ussd_hops import free_port, start, stop, wait_ready

from gateway.app import create_app
from gateway.config import Config

ROOT = Path(__file__).resolve().parent.parent
UNPACED: dict[str, Any] = {"requests_per_minute": 1_000_000, "segments_per_minute": 100_000_000}
"""Far above what a run reaches (the settings' ceilings): at 100,000 segments a minute,
the campaign's two-segment text capped it at 833 recipients a second."""
CAMPAIGN_TEXT = "Sampark: Water supply in Theog: restored. Helpline 1800-180-8004."


@dataclass(frozen=True)
class Figures:
    """Seconds for the gateway and for the plain client over the same requests."""

    gateway_s: float
    ceiling_s: float
    requests: int
    busiest_minute: int = 0

    @property
    def ratio(self) -> float:
        return self.ceiling_s / self.gateway_s


def send_url(base_url: str) -> str:
    return f"{base_url}/v1/Accounts/{fake_exotel.SID}/Sms/send.json"


async def plain_client(base_url: str, forms: list[dict[str, str]]) -> float:
    """Seconds for one aiohttp client to post ``forms`` to the fake, 50 at a time, as the
    provider's request would (Basic auth, a form, the answer read)."""
    url = send_url(base_url)
    headers = {
        "Authorization": aiohttp.encode_basic_auth(fake_exotel.API_KEY, fake_exotel.API_TOKEN),
        "Accept": "application/json",
    }
    return await post_forms(url, headers, forms, wide=CONCURRENCY, expect=200)


def form(to: list[str], text: str) -> dict[str, str]:
    """The form the provider posts (bar ``StatusCallback`` and ``CustomField``)."""
    return {
        "From": fake_exotel.SENDER,
        "To": ",".join(to),
        "Body": text,
        "EncodingType": "plain",
        "SmsType": "transactional",
        "DltEntityId": fake_exotel.DLT_ENTITY_ID,
        "DltTemplateId": "1107000000000000001",
    }


async def campaign_ceiling(base_url: str, requests: int, recipients: int) -> float:
    """The plain client's seconds for ``requests`` requests carrying ``recipients``
    numbers between them, as the campaign's were."""
    per = -(-recipients // max(1, requests))
    numbers = [f"+9195{i:08d}" for i in range(recipients)]
    forms = [form(numbers[i : i + per], CAMPAIGN_TEXT) for i in range(0, recipients, per)]
    return await plain_client(base_url, forms)


async def _stats(base_url: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/stats") as resp:
        stats: dict[str, int] = await resp.json()
        return stats


async def outbound(count: int, *, paced: bool = False) -> Figures:
    """``count`` single messages through the gateway's worker to the fake (at the default
    pacing when ``paced``, else unpaced, next to the plain client)."""
    port = free_port()
    fake = start(
        [sys.executable, str(ROOT / "bench" / "fake_exotel.py"), str(port)], dict(os.environ)
    )
    base_url = f"http://127.0.0.1:{port}"
    exotel = {
        "sid": fake_exotel.SID,
        "api_key": fake_exotel.API_KEY,
        "api_token": fake_exotel.API_TOKEN,
        "sender": fake_exotel.SENDER,
        "base_url": base_url,
        **({} if paced else UNPACED),
    }
    # Paced, most sends find their turn too far away and are tried again later: retries
    # soon and often enough that the limiter, not the backoff, sets the pace.
    worker = {"max_tries": 50, "retry_base_seconds": 0.5, "retry_max_seconds": 5.0}
    try:
        async with scratch_config(
            "exotel-paced" if paced else "exotel",
            sms={
                "provider": "exotel",
                "dlt_entity_id": fake_exotel.DLT_ENTITY_ID,
                "exotel": exotel,
            },
            **({"worker": worker} if paced else {}),
        ) as config:
            return await _measure(config, base_url, count, paced=paced)
    finally:
        stop(fake)


async def _measure(config: Config, base_url: str, count: int, *, paced: bool) -> Figures:
    app = create_app(config, with_worker=False)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await wait_ready(f"{base_url}/stats", lambda s: s == 200)
        if paced:
            gateway_s = await gateway(app, count, provider="exotel")
            stats = await _stats(base_url)
            return Figures(gateway_s, 0.0, stats["requests"], stats["busiest_minute"])
        texts = [form([f"+9197{i:08d}"], TEXT) for i in range(count)]
        ceiling_s = await plain_client(base_url, texts)
        gateway_s = await gateway(app, count, provider="exotel")
        stats = await _stats(base_url)
        return Figures(gateway_s, ceiling_s, stats["requests"] - count)
    finally:
        await runner.cleanup()


async def main(messages: int, recipients: int, paced: int) -> dict[str, Figures]:
    """Every part that has a count; their figures by name."""
    results: dict[str, Figures] = {}
    if messages:
        single = results["outbound"] = await outbound(messages)
        print(f"Exotel outbound SMS, one message a request, {messages:,} messages, unpaced")
        print(f"{'':>22} | {'msgs/s':>8} | {'gateway is':>10}")
        plain = messages / single.ceiling_s
        print(f"{'plain aiohttp client':>22} | {plain:>8.0f} | {single.ratio:>10.2f}")
        print(f"{'gateway worker':>22} | {messages / single.gateway_s:>8.0f} |")
    if recipients:
        bulk = await campaign.main(
            recipients, provider="exotel", sms={"exotel": UNPACED}, ceiling=campaign_ceiling
        )
        figures = results["campaign"] = Figures(
            bulk["send_s"], bulk["ceiling_s"], int(bulk["requests"])
        )
        print(
            f"  plain aiohttp client, the same {figures.requests:,} requests: "
            f"{recipients / figures.ceiling_s:8.0f} recipients/s; the gateway is "
            f"{figures.ratio:.2f} of it"
        )
    if paced:
        at_default = results["paced"] = await outbound(paced, paced=True)
        print(
            f"Exotel at the default pacing (180 requests a minute), {paced:,} single "
            f"messages: {at_default.gateway_s:.0f} s, {at_default.requests:,} requests, "
            f"busiest 60 s at the fake: {at_default.busiest_minute} requests (Exotel: 200)"
        )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--recipients", type=int, default=20_000, help="of the campaign")
    parser.add_argument(
        "--paced", type=int, default=0, help="single messages at the default pacing"
    )
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.recipients, args.paced))

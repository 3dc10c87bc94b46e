"""A phone on the terminal: dials the running gateway through its Africa's Talking USSD
callback, exactly as the network would, and shows the SMS the phone receives.

The callback's path carries Africa's Talking's secret: the simulator reads it from the
gateway's database (the configuration's), as ``python -m gateway callbacks`` does, so it
dials the same signed URL the network would."""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
import uuid
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import aiohttp
from wcwidth import wcswidth

from gateway.app import stored_signer
from gateway.channels.africastalking.routes import USSD_PATH
from gateway.config import Config, load_config
from gateway.text.encoding import measure_screen

if TYPE_CHECKING:
    from gateway.cli.base import Commands

__all__ = ["add_parser", "run", "run_simulator"]

HELP = """\
Type a reply and press Enter, as on a keypad (0 back, 98 more, 00 main menu).
Commands: /drop  lose the network mid-session (dial again to resume)
          /quit  hang up and leave"""


def add_parser(commands: Commands) -> None:
    p = commands.add_parser("simulate", help="dial the service from a phone on this terminal")
    p.add_argument("--url", help="the running gateway (default: http://127.0.0.1:PORT)")
    p.add_argument("--phone", default="+919812345678", help="the caller's number")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    url = args.url or f"http://127.0.0.1:{config.server.port}"
    hop_path = asyncio.run(stored_signer(config)).path(USSD_PATH)
    assert hop_path is not None  # stored_signer arms every provider with callbacks
    return asyncio.run(run_simulator(config, base_url=url, phone=args.phone, hop_path=hop_path))


def _columns(line: str) -> int:
    """The terminal columns ``line`` takes: a Devanagari vowel sign or virama takes none,
    a wide character two (its length in characters if it holds a control character)."""
    width = wcswidth(line)
    return width if width >= 0 else len(line)


def _box(text: str, budget_note: str) -> str:
    lines = text.split("\n")
    width = max(24, *(_columns(line) for line in lines))
    top = "┌" + "─" * (width + 2) + "┐"
    bottom = "└" + "─" * (width + 2) + "┘"
    body = [f"│ {line}{' ' * (width - _columns(line))} │" for line in lines]
    return "\n".join([top, *body, bottom, f"  {budget_note}"])


async def _read(prompt: str) -> str | None:
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None


async def run_simulator(config: Config, *, base_url: str, phone: str, hop_path: str) -> int:
    """Run interactive sessions until the user quits; returns the exit status.

    ``hop_path``: the USSD callback's path, with its secret."""
    hop_url = f"{base_url.rstrip('/')}{hop_path}"
    sms_url = f"{base_url.rstrip('/')}/simulator/sms"
    code = config.service.service_code
    tz = ZoneInfo(config.service.timezone)
    print(f"Sampark phone simulator: {phone} dialling {code} at {base_url}")
    print(HELP)
    async with aiohttp.ClientSession() as http:
        seen = await _messages(http, sms_url, phone)
        if seen is None:
            print(f"\nNo gateway answers at {base_url}. Start it first: make run", file=sys.stderr)
            return 1
        while True:
            answer = await _read(f"\nDial {code}? [Enter = dial, q = quit] ")
            if answer is None or answer.strip().lower() in ("q", "/quit"):
                return 0
            session_id = f"SIM_{uuid.uuid4().hex[:12]}"
            inputs: list[str] = []
            while True:
                form = {
                    "sessionId": session_id,
                    "serviceCode": code,
                    "phoneNumber": phone,
                    "networkCode": "40445",
                    "text": "*".join(inputs),
                }
                async with http.post(hop_url, data=form) as resp:
                    body = await resp.text()
                if resp.status != 200:
                    print(f"[gateway answered {resp.status}: {body}]")
                    break
                kind, _, screen = body.partition(" ")
                m = measure_screen(screen)
                note = f"{m.length}/{m.budget} {m.encoding.value.upper()}" + (
                    "" if m.fits else f"  OVER BUDGET by {m.over}"
                )
                print(_box(screen, note))
                if kind != "CON":
                    break
                reply = await _read("> ")
                if reply is None or reply.strip() == "/quit":
                    return 0
                if reply.strip() == "/drop":
                    print("[network lost: the session is gone; dial again]")
                    break
                inputs.append(reply)
            seen = await _show_new_sms(http, sms_url, phone, seen, tz=tz)


async def _messages(http: aiohttp.ClientSession, url: str, phone: str) -> int | None:
    try:
        async with http.get(url, params={"to": phone}) as resp:
            if resp.status != 200:
                return 0
            data = await resp.json()
            return len(data["messages"])
    except aiohttp.ClientError:
        return None


async def _show_new_sms(
    http: aiohttp.ClientSession, url: str, phone: str, seen: int, *, tz: ZoneInfo
) -> int:
    """Wait a few seconds for SMS the session caused, and show them."""
    for _ in range(20):
        await asyncio.sleep(0.25)
        try:
            async with http.get(url, params={"to": phone}) as resp:
                if resp.status != 200:
                    return seen  # the gateway sends real SMS: nothing to show here
                messages = (await resp.json())["messages"]
        except aiohttp.ClientError:
            return seen
        if len(messages) > seen:
            for m in messages[seen:]:
                print(f"\n[SMS received {_local_time(m['sent_at'], tz)}]")
                print(textwrap.indent(textwrap.fill(m["text"], 60), "  "))
            return len(messages)
    return seen


def _local_time(stamp: str, tz: ZoneInfo) -> str:
    """An ISO timestamp as the service's local time (``2026-11-24 15:30:02 IST``)."""
    try:
        return datetime.fromisoformat(stamp).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
    except (ValueError, TypeError):
        return stamp

"""A phone on the terminal: dials the running gateway through a USSD aggregator's callback
(Africa's Talking's, or IMImobile's with ``--aggregator imimobile``), exactly as the network
would, and shows the SMS the phone receives.

The callback's path carries the aggregator's secret: the simulator reads it from the
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
from gateway.channels.africastalking.routes import USSD_PATH as AT_USSD_PATH
from gateway.channels.imimobile.parse import ABORT_PREFIX
from gateway.channels.imimobile.routes import SESSION_HEADER
from gateway.channels.imimobile.routes import USSD_PATH as IMI_USSD_PATH
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
    p.add_argument(
        "--aggregator",
        choices=sorted(AGGREGATORS),
        default="africastalking",
        help="whose USSD callback format to dial through (default: africastalking)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    url = args.url or f"http://127.0.0.1:{config.server.port}"
    dialler = AGGREGATORS[args.aggregator]
    hop_path = asyncio.run(stored_signer(config)).path(dialler.path)
    assert hop_path is not None  # stored_signer arms every provider with callbacks
    return asyncio.run(
        run_simulator(config, base_url=url, phone=args.phone, hop_path=hop_path, dialler=dialler)
    )


class Dialler:
    """One aggregator's USSD request and answer, as its network sends and reads them."""

    path: str

    async def hop(
        self, http: aiohttp.ClientSession, url: str, *, session: str, phone: str, code: str,
        inputs: list[str],
    ) -> tuple[int, str, bool]:  # fmt: skip
        """Send the hop for ``inputs`` (the newest last); (HTTP status, screen, ended)."""
        raise NotImplementedError

    async def hang_up(
        self, http: aiohttp.ClientSession, url: str, *, session: str, phone: str, code: str
    ) -> None:
        """Tell the gateway the caller hung up, when the aggregator does."""


class AfricasTalkingDialler(Dialler):
    """A form POST with every input so far joined by ``*``; ``CON ``/``END `` answers."""

    path = AT_USSD_PATH

    async def hop(
        self, http: aiohttp.ClientSession, url: str, *, session: str, phone: str, code: str,
        inputs: list[str],
    ) -> tuple[int, str, bool]:  # fmt: skip
        form = {
            "sessionId": session,
            "serviceCode": code,
            "phoneNumber": phone,
            "networkCode": "40445",
            "text": "*".join(inputs),
        }
        async with http.post(url, data=form) as resp:
            body = await resp.text()
        kind, _, screen = body.partition(" ")
        return resp.status, screen if resp.status == 200 else body, kind != "CON"


class ImimobileDialler(Dialler):
    """A GET with the newest input only (the dialled string first); the screen as the body,
    ``X-USSD-SESSION`` 1 to continue, 0 to end; a hang-up is a ``Map Dialog User Abort``."""

    path = IMI_USSD_PATH

    async def hop(
        self, http: aiohttp.ClientSession, url: str, *, session: str, phone: str, code: str,
        inputs: list[str],
    ) -> tuple[int, str, bool]:  # fmt: skip
        msg = inputs[-1] if inputs else code
        return await self._get(http, url, session=session, phone=phone, code=code, msg=msg)

    async def hang_up(
        self, http: aiohttp.ClientSession, url: str, *, session: str, phone: str, code: str
    ) -> None:
        msg = f"{ABORT_PREFIX} User Reason"
        await self._get(http, url, session=session, phone=phone, code=code, msg=msg)

    @staticmethod
    async def _get(
        http: aiohttp.ClientSession, url: str, *, session: str, phone: str, code: str, msg: str
    ) -> tuple[int, str, bool]:
        query = {"msisdn": phone.lstrip("+"), "msg": msg, "code": code, "tid": session}
        async with http.get(url, params={**query, "dcs": "15"}) as resp:
            body = await resp.text()
        return resp.status, body, resp.headers.get(SESSION_HEADER) != "1"


AGGREGATORS: dict[str, Dialler] = {
    "africastalking": AfricasTalkingDialler(),
    "imimobile": ImimobileDialler(),
}


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


async def run_simulator(
    config: Config,
    *,
    base_url: str,
    phone: str,
    hop_path: str,
    dialler: Dialler = AGGREGATORS["africastalking"],
) -> int:
    """Run interactive sessions until the user quits; returns the exit status.

    ``hop_path``: the USSD callback's path, with its secret; ``dialler`` its aggregator's
    format."""
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
                status, screen, ended = await dialler.hop(
                    http, hop_url, session=session_id, phone=phone, code=code, inputs=inputs
                )
                if status != 200:
                    print(f"[gateway answered {status}: {screen}]")
                    break
                m = measure_screen(screen)
                note = f"{m.length}/{m.budget} {m.encoding.value.upper()}" + (
                    "" if m.fits else f"  OVER BUDGET by {m.over}"
                )
                print(_box(screen, note))
                if ended:
                    break
                reply = await _read("> ")
                if reply is None or reply.strip() == "/quit":
                    await dialler.hang_up(http, hop_url, session=session_id, phone=phone, code=code)
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

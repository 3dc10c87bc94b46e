"""The simulator provider: "sends" SMS by keeping them, so the gateway runs with no
operator account. What it keeps is listed by ``python -m gateway outbox`` (from the
database) and shown by the phone simulator (``python -m gateway simulate``) through
``GET /simulator/sms``.

That listing shows what citizens were sent, without a token: it answers only requests
from this machine (a loopback address, and no proxy's forwarding header), which is where
the phone simulator runs; anyone else gets 403.

It keeps what a provider on India's DLT would send besides the text (the template's and the
entity's DLT IDs), so that a test or an operator can see them reach a provider.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Final

import aiohttp
from aiohttp import web

from gateway.channels.base import OutgoingSms, ProviderContext, RecipientResult, SendOutcome
from gateway.channels.simulator.statuses import FAILING_NUMBERS, SimulatedAnswer
from gateway.text.phone import InvalidPhoneNumber, normalize_phone

__all__ = ["NAME", "Simulator"]

NAME: Final = "simulator"

_DELIVERED = SimulatedAnswer(100, "Success", SendOutcome.DELIVERED)


class Simulator:
    """Keeps every message it is given in a JSON-lines file, and reports it delivered."""

    name: ClassVar[str] = NAME

    def __init__(self, *, store: Path, region: str) -> None:
        self.store = store
        self.region = region
        self._lock = asyncio.Lock()

    @classmethod
    def in_context(cls, context: ProviderContext) -> Simulator:
        """The simulator keeping its messages in the gateway's data directory."""
        return cls(store=context.data_dir / "simulator" / "sms.jsonl", region=context.region)

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.get("/simulator/sms", self._list)]

    async def send(
        self, sms: OutgoingSms, *, session: aiohttp.ClientSession
    ) -> list[RecipientResult]:
        results = []
        records = []
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for to in sms.recipients:
            answer = FAILING_NUMBERS.get(to, _DELIVERED)
            message_id = f"sim-{uuid.uuid4().hex[:16]}"
            results.append(
                RecipientResult(
                    to,
                    answer.outcome,
                    answer.status,
                    message_id,
                    answer.status_code,
                    opted_out=answer.opted_out,
                )
            )
            if answer.outcome is SendOutcome.DELIVERED:
                records.append(_record(message_id, to, sms, now))
        if records:
            await asyncio.to_thread(self._append, records)
        return results

    def _append(self, records: list[dict[str, str | None]]) -> None:
        self.store.parent.mkdir(parents=True, exist_ok=True)
        with self.store.open("a", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

    def sent_to(self, phone: str) -> list[dict[str, str | None]]:
        """Every message kept for ``phone``, oldest first."""
        if not self.store.exists():
            return []
        out = []
        with self.store.open(encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                if record.get("to") == phone:
                    out.append(record)
        return out

    async def _list(self, request: web.Request) -> web.Response:
        if not from_this_machine(request):
            return web.json_response(
                {"error": "the simulator's messages are shown on this machine only"}, status=403
            )
        try:
            phone = normalize_phone(request.query.get("to", ""), region=self.region)
        except InvalidPhoneNumber:
            return web.json_response({"error": "to: give a phone number"}, status=400)
        return web.json_response({"messages": await asyncio.to_thread(self.sent_to, phone)})


def _record(message_id: str, to: str, sms: OutgoingSms, now: str) -> dict[str, str | None]:
    return {
        "id": message_id,
        "to": to,
        "text": sms.text,
        "sent_at": now,
        "dlt_template_id": sms.dlt_template_id,
        "dlt_entity_id": sms.dlt_entity_id,
    }


_FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def from_this_machine(request: web.BaseRequest) -> bool:
    """True for a request from a loopback address that no proxy forwarded (a proxy on the
    same machine connects from loopback too, on behalf of anyone)."""
    if any(name in request.headers for name in _FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket's IPv4 client
    return address.is_loopback

"""The network's side of a simulated phone: the callbacks a USSD gateway and an SMS centre
send the gateway for a phone's keypresses and texts, in Africa's Talking's format, so that
a phone simulator (the console's ``/console/simulator``) goes through the same signed
callbacks a real network uses. The paths are unsigned; the caller signs them
(:meth:`gateway.channels.signing.CallbackSigner.path`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

from gateway.channels.africastalking.routes import INBOUND_PATH, USSD_EVENTS_PATH, USSD_PATH

__all__ = [
    "INBOUND_SMS_PATH",
    "USSD_END_PATH",
    "USSD_HOP_PATH",
    "inbound_sms",
    "ussd_answer",
    "ussd_end",
    "ussd_hop",
]

USSD_HOP_PATH: Final = USSD_PATH
USSD_END_PATH: Final = USSD_EVENTS_PATH
INBOUND_SMS_PATH: Final = INBOUND_PATH
NETWORK_CODE: Final = "40445"


def ussd_hop(*, session: str, phone: str, code: str, inputs: list[str]) -> dict[str, str]:
    """A hop's form: every input of the session so far, joined by ``*``."""
    return {
        "sessionId": session,
        "serviceCode": code,
        "phoneNumber": phone,
        "networkCode": NETWORK_CODE,
        "text": "*".join(inputs),
    }


def ussd_answer(body: str) -> tuple[str, bool]:
    """The screen of a hop's answer, and whether the session ended (``END``, not ``CON``)."""
    kind, _, screen = body.partition(" ")
    return screen, kind != "CON"


def ussd_end(*, session: str, phone: str, code: str, inputs: list[str]) -> dict[str, str]:
    """The end-of-session notice for a caller who hung up mid-session (``Incomplete``)."""
    return {
        "sessionId": session,
        "status": "Incomplete",
        "phoneNumber": phone,
        "serviceCode": code,
        "networkCode": NETWORK_CODE,
        "hopsCount": str(len(inputs) + 1),
        "input": inputs[-1] if inputs else "",
    }


def inbound_sms(*, phone: str, to: str, text: str) -> dict[str, str]:
    """An SMS from ``phone`` to the service's number ``to``, with a new message ID."""
    return {
        "from": phone,
        "to": to,
        "text": text,
        "id": f"sim-{uuid.uuid4().hex[:16]}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }

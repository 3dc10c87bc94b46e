"""IMImobile's USSD request read into :mod:`gateway.channels.base`'s types: pure, no I/O.

A request carries ``msisdn``, ``msg``, ``code`` (the service code), ``tid`` (the
transaction ID) and ``dcs`` (the data coding scheme). ``msg`` is the latest input only; on
a session's first request it is the dialled string (``*1100#``, or ``*1100*2#`` with an
input already). No session ID arrives: the session is the number's and the transaction's
(:func:`session_key`). A ``msg`` starting ``Map Dialog User Abort`` is the caller hanging up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

from gateway.channels.base import CallbackLimits, PayloadError, UssdHop, UssdSessionEnd
from gateway.channels.fields import identifier, informational, required, required_phone
from gateway.text.storable import storable

__all__ = ["ABORT_PREFIX", "HANG_UP_STATUS", "NAME", "parse_request", "session_key"]

NAME: Final = "imimobile"

ABORT_PREFIX: Final = "Map Dialog User Abort"
"""How ``msg`` starts when the caller hung up (``... User Reason``)."""

HANG_UP_STATUS: Final = "Aborted"
"""The session end recorded for a hang-up."""

MAX_INPUT_LENGTH: Final = 1000
MAX_TID_LENGTH: Final = 64


def session_key(phone: str, tid: str) -> str:
    """The session of number ``phone`` (E.164) and transaction ``tid``: a digest of both, so
    that the session ID the gateway logs and stores does not spell out the number."""
    digest = hashlib.blake2b(f"{phone}:{tid}".encode(), digest_size=12).hexdigest()
    return f"imi-{digest}"


def parse_request(
    fields: Mapping[str, str], *, limits: CallbackLimits, region: str
) -> UssdHop | UssdSessionEnd:
    """A hop, or the session's end when the caller hung up; raises :class:`PayloadError`
    naming a missing or garbled field."""
    phone = required_phone(fields, "msisdn", region)
    tid = identifier(fields, "tid", MAX_TID_LENGTH)
    session_id = session_key(phone, tid)
    code = identifier(fields, "code", limits.ussd_service_code)
    msg = required(fields, "msg", allow_empty=True)
    if len(msg) > MAX_INPUT_LENGTH:
        raise PayloadError("msg", f"longer than {MAX_INPUT_LENGTH} characters ({len(msg)})")
    if msg.startswith(ABORT_PREFIX):
        return UssdSessionEnd(
            session_id=session_id,
            status=HANG_UP_STATUS,
            phone=phone,
            service_code=code,
            error_message=informational(fields, "msg", 200),
            provider=NAME,
        )
    dialled = _dialled(msg)
    if dialled is not None:  # the session's first request
        return UssdHop(session_id, code, phone, "", dialled, provider=NAME)
    return UssdHop(session_id, code, phone, "", storable(msg), provider=NAME, latest_only=True)


def _dialled(msg: str) -> str | None:
    """The inputs dialled with the code (``*1100*2#`` -> ``2``, ``*1100#`` -> empty), or None
    when ``msg`` is not a dialled string."""
    text = msg.strip()
    if not (text.startswith("*") and text.endswith("#")) or len(text) < 3:
        return None
    _code, *inputs = text[1:-1].split("*")
    return "*".join(inputs)

"""What the database can hold, read from the models' own field definitions: the one place
an input is measured against before it reaches a column.

Lengths are the ``max_length`` of CharFields and ranges the bounds of the integer fields,
so a column that grows in :mod:`gateway.storage.models` (and its migration) moves the check with
it. What no column holds whatever its size (a NUL, a lone surrogate) is told by
:mod:`gateway.text.storable`, whose checks are named here too: an identifier carrying
either is refused; free text has them taken out (:func:`storable`).

Providers are not given this module: the wiring (:mod:`gateway.app`) hands them these
lengths as a :class:`gateway.channels.base.CallbackLimits`.
"""

from __future__ import annotations

from datetime import date
from typing import Final

from tortoise.fields import CharField
from tortoise.models import Model

from gateway.storage.models import InboundMessage, OutboundMessage, UssdSession
from gateway.text.storable import is_identifier, storable, unstorable

__all__ = [
    "EARLIEST_DATE",
    "INBOUND_MESSAGE_ID",
    "LATEST_DATE",
    "OUTBOUND_MESSAGE_ID",
    "USSD_COST",
    "USSD_DURATION_MS",
    "USSD_END_STATUS",
    "USSD_HOPS",
    "USSD_NETWORK_CODE",
    "USSD_OUTCOME",
    "USSD_SERVICE_CODE",
    "USSD_SESSION_ID",
    "int_range",
    "is_identifier",
    "max_length",
    "storable",
    "unstorable",
]


def max_length(model: type[Model], name: str) -> int:
    """The ``max_length`` of ``model``'s CharField ``name``."""
    field = model._meta.fields_map[name]
    if not isinstance(field, CharField):
        raise TypeError(f"{model.__name__}.{name} is not a CharField")
    return int(field.max_length)


def int_range(model: type[Model], name: str) -> tuple[int, int]:
    """The smallest and largest value ``model``'s integer field ``name`` holds."""
    constraints = model._meta.fields_map[name].constraints
    return int(constraints["ge"]), int(constraints["le"])


USSD_SESSION_ID: Final = max_length(UssdSession, "session_id")
USSD_SERVICE_CODE: Final = max_length(UssdSession, "service_code")
USSD_NETWORK_CODE: Final = max_length(UssdSession, "network_code")
USSD_END_STATUS: Final = max_length(UssdSession, "end_status")
USSD_OUTCOME: Final = max_length(UssdSession, "outcome")
USSD_COST: Final = max_length(UssdSession, "cost")
USSD_HOPS: Final = int_range(UssdSession, "hops")
USSD_DURATION_MS: Final = int_range(UssdSession, "duration_ms")
OUTBOUND_MESSAGE_ID: Final = max_length(OutboundMessage, "provider_message_id")
"""A delivery report's message ID is looked up in this column."""
INBOUND_MESSAGE_ID: Final = max_length(InboundMessage, "provider_message_id")

EARLIEST_DATE: Final = date(2000, 1, 1)
LATEST_DATE: Final = date(2100, 12, 31)
"""The dates the staff API and the review accept: no complaint lies outside them, and at
the ends of Python's calendar a time zone's offset overflows (year 1, year 9999)."""

"""The numbers the simulator fails to "send" to, so that failure paths can be tried by hand
(as Africa's Talking's sandbox numbers are), and what each failure means."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

from gateway.channels.base import SendOutcome

__all__ = ["FAILING_NUMBERS", "SimulatedAnswer"]


class SimulatedAnswer(NamedTuple):
    """What the simulator answers for a recipient, in the words it borrows from AT."""

    status_code: int
    status: str
    outcome: SendOutcome
    opted_out: bool = False


FAILING_NUMBERS: Final[Mapping[str, SimulatedAnswer]] = {
    "+919999999406": SimulatedAnswer(
        406, "UserInBlacklist", SendOutcome.PERMANENT_FAILURE, opted_out=True
    ),
    "+919999999500": SimulatedAnswer(500, "InternalServerError", SendOutcome.TRANSIENT_FAILURE),
}
"""A number -> how a send to it fails (the codes and words imitate AT's)."""

"""A provider whose sends are measured (:mod:`gateway.ops.metrics`): how long each request
took, and what it did not take, by kind. Wraps any provider; what it sends is unchanged."""

from __future__ import annotations

import time
from collections import Counter
from typing import ClassVar

import aiohttp
from aiohttp import web

from gateway.channels.base import (
    OutgoingSms,
    Provider,
    ProviderError,
    RecipientResult,
    SendOutcome,
)
from gateway.ops import metrics

__all__ = ["MeasuredProvider", "measured"]

_RECIPIENT_ERRORS = {
    SendOutcome.TRANSIENT_FAILURE: "recipient_transient",
    SendOutcome.PERMANENT_FAILURE: "recipient_permanent",
    SendOutcome.UNKNOWN: "answer_lost",
}


class MeasuredProvider:
    """``inner``, its sends measured under its name."""

    name: ClassVar[str] = "measured"

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # the inner provider's, per instance

    def routes(self) -> list[web.AbstractRouteDef]:
        return self.inner.routes()

    async def send(
        self, sms: OutgoingSms, *, session: aiohttp.ClientSession
    ) -> list[RecipientResult]:
        started = time.perf_counter()
        try:
            results = await self.inner.send(sms, session=session)
        except ProviderError as e:
            metrics.provider_error(self.name, "transient" if e.transient else "permanent")
            raise
        finally:
            metrics.send_latency(self.name, time.perf_counter() - started)
        kinds = Counter(_RECIPIENT_ERRORS.get(r.outcome) for r in results)
        for kind, n in kinds.items():
            if kind is not None:
                metrics.provider_error(self.name, kind, n)
        return results


def measured(provider: Provider) -> Provider:
    """``provider`` with its sends measured."""
    return MeasuredProvider(provider)

"""The IMImobile USSD aggregator: its callback route only (:mod:`.routes`). It sends no SMS:
the gateway's SMS go through ``sms.provider``."""

from __future__ import annotations

from typing import ClassVar

import aiohttp
from aiohttp import web

from gateway.channels.base import (
    CallbackLimits,
    OutgoingSms,
    ProviderContext,
    ProviderError,
    RecipientResult,
)
from gateway.channels.imimobile import routes
from gateway.channels.imimobile.parse import NAME

__all__ = ["Imimobile"]


class Imimobile:
    """USSD sessions in through IMImobile's HTTP interface."""

    name: ClassVar[str] = NAME

    def __init__(self, context: ProviderContext) -> None:
        self.region = context.region
        self.limits: CallbackLimits = context.limits

    def routes(self) -> list[web.AbstractRouteDef]:
        return routes.routes(region=self.region, limits=self.limits)

    async def send(
        self, sms: OutgoingSms, *, session: aiohttp.ClientSession
    ) -> list[RecipientResult]:
        """Never called: the configuration refuses an aggregator as ``sms.provider``."""
        raise ProviderError("IMImobile is a USSD aggregator: it sends no SMS", transient=False)

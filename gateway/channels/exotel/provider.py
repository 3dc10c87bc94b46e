"""The Exotel provider, assembled from its parts: its callback routes (:mod:`.routes`) and
its SMS API client (:mod:`.send`), configured by :mod:`.settings`."""

from __future__ import annotations

from typing import ClassVar

import aiohttp
from aiohttp import web

from gateway.channels.base import CallbackLimits, OutgoingSms, ProviderContext, RecipientResult
from gateway.channels.exotel import routes
from gateway.channels.exotel.send import SmsApi
from gateway.channels.exotel.settings import NAME, ExotelSettings

__all__ = ["Exotel"]


class Exotel:
    """SMS out (with DLT data), delivery reports in, for one Exotel account."""

    name: ClassVar[str] = NAME

    def __init__(self, settings: ExotelSettings, *, context: ProviderContext) -> None:
        self.region = context.region
        self.limits: CallbackLimits = context.limits
        self.api = SmsApi(settings, region=context.region, callback_url=context.callback_url)

    def __repr__(self) -> str:  # never show the credentials
        return f"Exotel({self.api!r})"

    def routes(self) -> list[web.AbstractRouteDef]:
        return routes.routes(region=self.region, limits=self.limits)

    async def send(
        self, sms: OutgoingSms, *, session: aiohttp.ClientSession
    ) -> list[RecipientResult]:
        """Send ``sms`` in one request (see :meth:`.send.SmsApi.send`)."""
        return await self.api.send(sms, session=session)

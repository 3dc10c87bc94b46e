"""The Africa's Talking provider, assembled from its parts: its callback routes
(:mod:`.routes`, reading payloads with :mod:`.parse`) and its SMS API client (:mod:`.send`),
both speaking AT's words only through :mod:`.statuses`, configured by :mod:`.settings`.
"""

from __future__ import annotations

from typing import ClassVar

import aiohttp
from aiohttp import web

from gateway.channels.africastalking import routes
from gateway.channels.africastalking.send import MessagingApi
from gateway.channels.africastalking.settings import NAME, AfricasTalkingSettings
from gateway.channels.base import CallbackLimits, OutgoingSms, RecipientResult

__all__ = ["AfricasTalking"]


class AfricasTalking:
    """USSD and SMS callbacks in, SMS out, for one Africa's Talking account.

    ``region`` (``service.country``) is the country a number without a country code is
    read in; ``limits`` how long what a callback names may be for the gateway to keep it.
    """

    name: ClassVar[str] = NAME

    def __init__(
        self, settings: AfricasTalkingSettings, *, region: str, limits: CallbackLimits
    ) -> None:
        self.region = region
        self.limits = limits
        self.api = MessagingApi(settings, region=region)

    def __repr__(self) -> str:  # never show the API key
        return f"AfricasTalking({self.api!r})"

    @property
    def messaging_url(self) -> str:
        """Where :meth:`send` posts: ``{base_url}/version1/messaging``."""
        return self.api.url

    def routes(self) -> list[web.AbstractRouteDef]:
        """The four callback routes; handlers find the application at ``request.app[CALLBACKS]``."""
        return routes.routes(region=self.region, limits=self.limits)

    async def send(
        self, sms: OutgoingSms, *, session: aiohttp.ClientSession
    ) -> list[RecipientResult]:
        """Send ``sms`` in one request (see :meth:`.send.MessagingApi.send`)."""
        return await self.api.send(sms, session=session)

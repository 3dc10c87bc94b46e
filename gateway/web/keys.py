"""The application's typed state keys, apart from :mod:`gateway.app` so that the staff API
(which ``gateway.app`` mounts) can name them without a circular import."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import aiohttp
from aiohttp import web
from arq.connections import ArqRedis
from arq.worker import Worker

from gateway.campaigns.service import Campaigns
from gateway.channels.base import Provider
from gateway.channels.signing import CallbackSigner
from gateway.complaints.lifecycle import Lifecycle
from gateway.complaints.registration import ComplaintService
from gateway.config import Config
from gateway.sms.templates import TemplateBook
from gateway.text.i18n import Catalogs

__all__ = [
    "BULK_WORKER",
    "CAMPAIGNS",
    "CATALOGS",
    "CLOCK",
    "COMPLAINTS",
    "CONFIG",
    "HTTP",
    "LIFECYCLE",
    "PROVIDERS",
    "REDIS",
    "SIGNER",
    "TEMPLATES",
    "WORKER",
]

CONFIG = web.AppKey("config", Config)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
CATALOGS = web.AppKey("catalogs", Catalogs)
TEMPLATES = web.AppKey("templates", TemplateBook)
PROVIDERS = web.AppKey("providers", dict[str, Provider])
REDIS = web.AppKey("redis", ArqRedis)
SIGNER = web.AppKey("signer", CallbackSigner)
"""The providers' callback secrets, and the callbacks refused for a wrong one."""
HTTP = web.AppKey("http", aiohttp.ClientSession)
COMPLAINTS = web.AppKey("complaints", ComplaintService)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
WORKER = web.AppKey("worker", Worker)
BULK_WORKER = web.AppKey("bulk_worker", Worker)
CAMPAIGNS = web.AppKey("campaigns", Campaigns)

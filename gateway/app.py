"""Assembling the gateway: ``create_app(config)`` from ``setup_*`` steps.

Each resource lives in one ``cleanup_ctx`` generator (opened at start-up, closed at
shut-down, in reverse order): Redis, the database, the HTTP client, the services built on
them, and the in-process worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web
from arq.connections import ArqRedis

from gateway.campaigns.service import CampaignRunner, Campaigns
from gateway.channels.base import CALLBACKS, Provider
from gateway.channels.registry import build_providers
from gateway.complaints.inbox import Inbox
from gateway.complaints.lifecycle import Lifecycle
from gateway.complaints.registration import ComplaintService
from gateway.config import Config
from gateway.jobs.dispatch import (
    ArqDispatcher,
    ArqRunScheduler,
    ArqSecondChance,
    health_check_key,
)
from gateway.jobs.tasks import JobContext
from gateway.jobs.worker import running_workers
from gateway.ops import logsafe
from gateway.ops.startup import open_redis
from gateway.sms.notices import Notices
from gateway.sms.outbox import Outbox
from gateway.sms.templates import TemplateBook
from gateway.storage.db import close_database, database_ok, open_database
from gateway.storage.embedded_redis import EmbeddedRedis
from gateway.storage.ticket_key import ticket_codec
from gateway.text.i18n import Catalogs, catalogs_for, compile_catalogs
from gateway.ussd.engine import UssdEngine
from gateway.web.api import API_PREFIX, create_api
from gateway.web.callbacks import GatewayCallbacks, SessionRecorder, session_hooks
from gateway.web.keys import (
    BULK_WORKER,
    CAMPAIGNS,
    CATALOGS,
    CLOCK,
    COMPLAINTS,
    CONFIG,
    ENGINE,
    HTTP,
    LIFECYCLE,
    PROVIDERS,
    REDIS,
    TEMPLATES,
    WORKER,
)
from ussd_menus.citizen import build_menu

__all__ = [
    "BULK_WORKER",
    "CAMPAIGNS",
    "CATALOGS",
    "CLOCK",
    "COMPLAINTS",
    "CONFIG",
    "ENGINE",
    "LIFECYCLE",
    "PROVIDERS",
    "REDIS",
    "TEMPLATES",
    "WORKER",
    "Static",
    "create_app",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Static:
    """What is read from disk once at start-up: catalogs and templates."""

    catalogs: Catalogs
    templates: TemplateBook


def load_static(config: Config) -> Static:
    """Compile stale catalogs and load catalogs and templates (fails fast on a bad one)."""
    codes = [lang.code for lang in config.languages]
    locales = config.path(config.paths.locales)
    compiled = compile_catalogs(locales, codes)
    if compiled:
        log.info("compiled %d catalog(s)", len(compiled))
    return Static(
        catalogs=catalogs_for(config),
        templates=TemplateBook.load(config.path(config.paths.sms_templates), languages=codes),
    )


def create_app(
    config: Config,
    *,
    with_worker: bool | None = None,
    clock: Callable[[], datetime] | None = None,
) -> web.Application:
    """The gateway as an aiohttp application.

    ``with_worker`` overrides ``worker.embedded``; ``clock`` replaces the wall clock for
    deadlines and timers (tests move it forward by days).
    """
    logsafe.install()  # before the first request: no secret in a log line or a 400 body
    app = web.Application(client_max_size=64 * 1024)
    app[CONFIG] = config
    app[CLOCK] = clock or (lambda: datetime.now(UTC))
    setup_static(app, config)
    setup_redis(app)
    setup_database(app)
    setup_providers(app)
    setup_services(app)
    if config.worker.embedded if with_worker is None else with_worker:
        setup_worker(app)
    setup_routes(app)
    return app


def setup_static(app: web.Application, config: Config) -> None:
    static = load_static(config)
    app[CATALOGS] = static.catalogs
    app[TEMPLATES] = static.templates


def setup_redis(app: web.Application) -> None:
    async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        embedded: EmbeddedRedis | None = None
        url = config.redis.url
        if url == "embedded":
            embedded = await EmbeddedRedis.start(config.path(config.paths.data_dir) / "redis")
            url = embedded.url
        try:
            app[REDIS] = await open_redis(url)
        except BaseException:
            if embedded is not None:
                await embedded.stop()
            raise
        yield
        await app[REDIS].aclose()
        if embedded is not None:
            await embedded.stop()

    app.cleanup_ctx.append(redis_ctx)


def setup_database(app: web.Application) -> None:
    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        opened = await open_database(app[CONFIG])
        yield
        await close_database(opened)

    app.cleanup_ctx.append(database_ctx)


def setup_providers(app: web.Application) -> None:
    config = app[CONFIG]
    providers = build_providers(config)
    app[PROVIDERS] = providers
    for name, provider in providers.items():
        # The simulator's listing of what it "sent" is for trying the gateway out only.
        if name != "simulator" or config.sms.provider == "simulator":
            app.router.add_routes(provider.routes())

    async def http_ctx(app: web.Application) -> AsyncIterator[None]:
        app[HTTP] = aiohttp.ClientSession()
        yield
        await app[HTTP].close()

    app.cleanup_ctx.append(http_ctx)


def setup_services(app: web.Application) -> None:
    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        catalogs = app[CATALOGS]
        notices = Notices(config=config, catalogs=catalogs, templates=app[TEMPLATES])
        tickets = await ticket_codec(config)
        dispatcher = ArqDispatcher(app[REDIS])
        app[LIFECYCLE] = Lifecycle(
            config=config, notices=notices, dispatcher=dispatcher, clock=app[CLOCK]
        )
        app[COMPLAINTS] = ComplaintService(
            config=config,
            notices=notices,
            tickets=tickets,
            dispatcher=dispatcher,
            lifecycle=app[LIFECYCLE],
            clock=app[CLOCK],
        )
        app[CAMPAIGNS] = Campaigns(
            config=config,
            templates=app[TEMPLATES],
            scheduler=ArqRunScheduler(app[REDIS]),
            clock=app[CLOCK],
        )
        sessions = SessionRecorder()
        app[ENGINE] = UssdEngine(
            menu=build_menu(config),
            redis=app[REDIS],
            config=config,
            catalogs=catalogs,
            services=app[COMPLAINTS],
            hooks=session_hooks(sessions),
        )
        apology = catalogs.gettext(
            config.service.default_language, "Sorry, the service is busy. Please dial again."
        )
        app[CALLBACKS] = GatewayCallbacks(
            engine=app[ENGINE],
            apology=apology,
            inbox=Inbox(
                config=config,
                notices=notices,
                lifecycle=app[LIFECYCLE],
                tickets=tickets,
                dispatcher=dispatcher,
            ),
            second_chance=second_chance(config, app[REDIS]),
            sessions=sessions,
            answer_window=timedelta(minutes=config.worker.unknown_answer_retry_minutes),
        )
        yield
        await sessions.close()

    app.cleanup_ctx.append(services_ctx)


def setup_worker(app: web.Application) -> None:
    async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
        workers = running_workers(worker_context(app), pool=app[REDIS])
        async with workers as (app[WORKER], app[BULK_WORKER]):
            yield

    app.cleanup_ctx.append(worker_ctx)


def worker_context(app: web.Application) -> JobContext:
    """What the app's workers' jobs need (:func:`jobs_context` on the app's parts)."""
    config = app[CONFIG]
    return jobs_context(
        config,
        redis=app[REDIS],
        provider=app[PROVIDERS][config.sms.provider],
        session=app[HTTP],
        templates=app[TEMPLATES],
        lifecycle=app[LIFECYCLE],
        clock=app[CLOCK],
    )


def jobs_context(
    config: Config,
    *,
    redis: ArqRedis,
    provider: Provider,
    session: aiohttp.ClientSession,
    templates: TemplateBook,
    lifecycle: Lifecycle,
    clock: Callable[[], datetime],
) -> JobContext:
    """What the workers' jobs need: the outbox (provider, HTTP client, second chance), the
    dispatcher, the lifecycle and the campaign runner. One function for the server's
    embedded workers and ``python -m gateway worker``, so that the two cannot differ."""
    sender_id = config.sms.africastalking.sender_id if provider.name == "africastalking" else None
    scheduler = ArqRunScheduler(redis)
    return {
        "config": config,
        "campaign_scheduler": scheduler,
        "campaign_runner": CampaignRunner(
            config=config,
            templates=templates,
            provider=provider,
            session=session,
            sender_id=sender_id,
            redis=redis,
            scheduler=scheduler,
            clock=clock,
        ),
        "outbox": Outbox(
            provider=provider,
            session=session,
            sender_id=sender_id,
            second_chance=second_chance(config, redis),
        ),
        "dispatcher": ArqDispatcher(redis),
        "lifecycle": lifecycle,
    }


def second_chance(config: Config, redis: ArqRedis) -> ArqSecondChance:
    """The one later try of an essential message that failed
    (``lifecycle.failed_message_retry_minutes``)."""
    delay = timedelta(minutes=config.lifecycle.failed_message_retry_minutes)
    return ArqSecondChance(redis, delay=delay)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.add_subapp(API_PREFIX, create_api())


async def healthz(request: web.Request) -> web.Response:
    """200 when the database, Redis and a worker are all up; 503 naming what is down."""
    app = request.app
    checks: dict[str, str] = {}
    checks["database"] = "ok" if await database_ok() else "down"
    try:
        await asyncio.wait_for(app[REDIS].ping(), timeout=2)
        checks["redis"] = "ok"
        alive = await app[REDIS].exists(health_check_key())
        checks["worker"] = "ok" if alive else "down"
    except Exception:
        checks["redis"] = "down"
        checks["worker"] = "unknown"
    healthy = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
    )

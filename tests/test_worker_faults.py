"""The worker under faults, against real services: a Redis that goes away and comes back
(a redis-server of the test's own), jobs lost with Redis, a worker process killed
mid-send, and ``python -m gateway worker`` as its own process beside ``python server.py
--no-worker``.

Waiting is for a state, with a deadline: no assertion depends on how long anything took.
Time that would have to pass (a lease, a retry's delay) is moved in the rows and the
queue instead, as :func:`tests.test_outbox.half_an_hour_passes` does.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestClient
from arq.constants import in_progress_key_prefix
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.app import COMPLAINTS, CONFIG, REDIS, create_app, worker_context
from gateway.complaints.registration import ACKNOWLEDGEMENT, NewComplaint
from gateway.config import Config
from gateway.jobs.dispatch import QUEUE, send_sms_job_id
from gateway.jobs.worker import build_worker, stop_worker
from gateway.sms.delivery import STALE_SENDING
from gateway.storage.models import Channel, ComplaintEvent, OutboundMessage
from tests.conftest import (
    AT_API_KEY,
    AT_USERNAME,
    ROOT,
    SHIPPED_CONFIG,
    AppFactory,
    Phone,
    make_config,
    run_worker,
    signed,
)
from tests.fakes.africastalking import FakeAfricasTalking
from tests.test_app import ENGLISH, clean_env, free_port
from tests.test_campaigns import complaint, number, theog_draft
from tests.test_outbox import (
    CITIZEN,
    OFFICER,
    at_config,
    half_an_hour_passes,
    officer_notice,
    register,
    requests_to,
)

DEADLINE = 30.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until ``check()`` holds; fail naming ``what`` after :data:`DEADLINE` seconds."""
    deadline = time.monotonic() + DEADLINE
    while not await check():
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------------- Redis away


class RedisServer:
    """A redis-server of the test's own on a free port, to stop and start again (empty:
    no persistence, like a Redis restarted on a new machine)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

        async def answers() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return False
            writer.close()
            return True

        await eventually(answers, "redis-server accepting connections")

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    await server.start()
    yield server
    await server.kill()


async def health(client: TestClient[Any, Any]) -> dict[str, str]:
    resp = await client.get("/healthz")
    body = cast(dict[str, str], await resp.json())
    assert (resp.status == 200) == (body["status"] == "ok"), body
    return body


async def test_the_embedded_worker_outlives_a_redis_restart(
    caplog: pytest.LogCaptureFixture,
    start_app: AppFactory,
    aiohttp_client: Any,
    tmp_path: Path,
    database_url: str,
    redis_server: RedisServer,
) -> None:
    """Redis killed and started again, empty: the worker loops, which end at the first
    Redis error, are started again; /healthz says so; the next SMS is sent. The failure is
    logged once per worker however often the restart fails meanwhile."""
    caplog.set_level(logging.DEBUG, logger="gateway.jobs.worker")
    config = make_config(tmp_path, database_url, redis_server.url)
    first = await start_app(config)  # empties the tables and this Redis
    await first.close()
    gateway = await aiohttp_client(create_app(config, with_worker=True))

    async def healthy() -> bool:
        return await health(gateway) == {
            "status": "ok",
            "database": "ok",
            "redis": "ok",
            "worker": "ok",
        }

    await eventually(healthy, "/healthz ok with the worker running")

    await redis_server.kill()

    async def redis_down() -> bool:
        body = await health(gateway)
        return body["status"] == "degraded" and body["redis"] == "down"

    await eventually(redis_down, "/healthz naming Redis down")

    async def restarts_failing() -> bool:
        retries = [r for r in caplog.records if "failed to start again" in r.getMessage()]
        return len(retries) >= 4  # both workers, at least twice each

    await eventually(restarts_failing, "the workers retried while Redis was down")
    assert (await health(gateway))["status"] == "degraded"

    await redis_server.start()  # empty: the health records went with the old one
    await eventually(healthy, "/healthz ok again once Redis is back")

    complaint = await gateway.app[COMPLAINTS].register(new_complaint())
    ack = await OutboundMessage.get(complaint_id=complaint.complaint_id, template=ACKNOWLEDGEMENT)

    async def delivered() -> bool:
        await ack.refresh_from_db()
        return ack.status == "delivered"

    await eventually(delivered, "the acknowledgement written after Redis came back is sent")
    stopped = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(stopped) == 2, stopped
    assert any("message worker stopped" in m for m in stopped), stopped
    assert any("campaign worker stopped" in m for m in stopped), stopped
    again = [r.getMessage() for r in caplog.records if "running again" in r.getMessage()]
    assert len(again) == 2, again
    await gateway.close()


async def test_messages_whose_jobs_went_with_redis_are_queued_again_once_it_is_back(
    caplog: pytest.LogCaptureFixture,
    start_app: AppFactory,
    aiohttp_client: Any,
    tmp_path: Path,
    database_url: str,
    redis_server: RedisServer,
) -> None:
    """A complaint registered while Redis is down is written, its messages' jobs are not
    (nor are jobs queued just before a Redis that restarts empty). The worker, back after
    the outage, queues every message that should be moving at once, not when the sweep
    next finds it late (here the sweep runs hourly)."""
    config = make_config(
        tmp_path, database_url, redis_server.url, worker={"sweep_interval_seconds": 3600}
    )
    first = await start_app(config)
    await first.close()
    gateway = await aiohttp_client(create_app(config, with_worker=True))
    await eventually(lambda: ok(gateway), "/healthz ok with the worker running")

    await redis_server.kill()

    async def worker_stopped() -> bool:
        return any("message worker stopped" in r.getMessage() for r in caplog.records)

    await eventually(worker_stopped, "the message worker's loop ended with Redis")
    with pytest.raises(RedisConnectionError):
        await gateway.app[COMPLAINTS].register(new_complaint())  # written, not queued
    ack = await OutboundMessage.get(template=ACKNOWLEDGEMENT)
    assert ack.status == "queued"
    await redis_server.start()  # empty

    async def sent() -> bool:  # the simulator: delivered at once
        return await OutboundMessage.filter(status="delivered").count() == 2

    await eventually(sent, "the acknowledgement and the officer's notice sent")
    await gateway.close()


async def test_a_gateway_stops_cleanly_while_redis_is_away(
    caplog: pytest.LogCaptureFixture,
    start_app: AppFactory,
    aiohttp_client: Any,
    tmp_path: Path,
    database_url: str,
    redis_server: RedisServer,
) -> None:
    """Stopping while the workers wait to be started again ends their waiting at once."""
    caplog.set_level(logging.DEBUG, logger="gateway.jobs.worker")
    config = make_config(tmp_path, database_url, redis_server.url)
    first = await start_app(config)
    await first.close()
    gateway = await aiohttp_client(create_app(config, with_worker=True))
    await eventually(lambda: ok(gateway), "/healthz ok with the worker running")
    await redis_server.kill()

    async def restarts_failing() -> bool:
        return any("failed to start again" in r.getMessage() for r in caplog.records)

    await eventually(restarts_failing, "a restart failed while Redis was down")
    caplog.clear()
    await asyncio.wait_for(gateway.close(), DEADLINE)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def ok(client: TestClient[Any, Any]) -> bool:
    return (await health(client))["status"] == "ok"


def new_complaint() -> NewComplaint:
    return NewComplaint(
        phone=CITIZEN,
        language="en_IN",
        department="jal_shakti",
        district="shimla",
        block="theog",
        issue_type="no_water_supply",
        channel=Channel.USSD,
        source_key=f"test:{uuid.uuid4().hex}",
    )


@pytest.fixture
async def at_client(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> TestClient[Any, Any]:
    return await start_app(at_config(tmp_path, database_url, redis_url, fake))


# --------------------------------------------------------------------------- jobs lost


@pytest.mark.parametrize("failure", ["transient", "final"])
async def test_retries_whose_jobs_were_lost_with_redis_are_sent_once(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
    failure: str,
) -> None:
    """A message waiting for its retry (a transient failure's, or the second chance of a
    failed acknowledgement) has only its deferred job to send it. Redis restarted empty:
    once the retry is due (and a grace), the sweep queues it again; one not yet due is
    left alone."""
    client = await start_app(
        at_config(
            tmp_path,
            database_url,
            redis_url,
            fake,
            worker={"retry_base_seconds": 600, "retry_max_seconds": 600},
        )
    )
    if failure == "transient":
        fake.fail_next(status=503, times=2)
    else:
        fake.outcomes.update({CITIZEN: 406, OFFICER: 406})
    ack = await register(client)
    officer = await officer_notice(ack)
    await run_worker(client.app)
    await ack.refresh_from_db()
    assert ack.status == "retrying" and ack.next_attempt_at is not None
    assert ack.next_attempt_at > datetime.now(UTC) + timedelta(minutes=9)
    assert len(fake.requests) == 2
    fake.outcomes.clear()

    await client.app[REDIS].flushdb()  # Redis restarted empty: the deferred jobs are gone
    await run_worker(client.app)
    assert len(fake.requests) == 2, "a retry not yet due is left to its job"

    # The acknowledgement's retry falls due (the officer's notice, if retrying, is not).
    await OutboundMessage.filter(id=ack.id).update(
        next_attempt_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    await run_worker(client.app)  # the sweep runs at start-up
    await run_worker(client.app)  # and again: still one SMS
    await ack.refresh_from_db()
    assert ack.status == "sent" and ack.attempts == 2
    assert requests_to(fake, CITIZEN) == 2
    await officer.refresh_from_db()
    assert officer.status == ("retrying" if failure == "transient" else "failed")
    assert requests_to(fake, OFFICER) == 1
    assert not await ComplaintEvent.filter(kind="message_failed").exists()


# --------------------------------------------------------------------------- worker killed


def worker_env(config: Config, fake: FakeAfricasTalking, **extra: str) -> dict[str, str]:
    """The environment of a gateway process on the test's database and Redis, sending
    through ``fake``."""
    assert fake.base_url is not None
    return clean_env(
        DATABASE_URL=config.database.url,
        REDIS_URL=config.redis.url,
        SMS_PROVIDER="africastalking",
        AT_USERNAME=AT_USERNAME,
        AT_API_KEY=AT_API_KEY,
        AT_BASE_URL=fake.base_url,
        **extra,
    )


@asynccontextmanager
async def gateway_process(
    *args: str, env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A gateway command run as its own OS process (killed on the way out if still running)."""
    with log.open("w") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_a_send_left_by_a_killed_worker_goes_again_after_the_lease_once(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking, tmp_path: Path
) -> None:
    """A worker killed while the provider holds its requests leaves its messages "sending"
    and its jobs "in progress" in arq. Before the lease is over nothing takes them; after
    it the sweep does, and each is sent once more; the dead worker's own jobs, run by arq
    when their in-progress keys expire, find them sent."""
    config = at_client.app[CONFIG]
    ack = await register(at_client)
    officer = await officer_notice(ack)
    fake.delay = 60.0  # the provider holds both requests
    log = tmp_path / "worker.log"
    env = worker_env(config, fake)
    async with gateway_process("-m", "gateway", "worker", env=env, log=log) as proc:

        async def both_in_flight() -> bool:
            assert proc.returncode is None, log.read_text()
            return len(fake.requests) == 2

        await eventually(both_in_flight, "the worker process sending both messages")
        proc.kill()
        await proc.wait()
    fake.delay = 0.0
    for msg in (ack, officer):
        await msg.refresh_from_db()
        assert msg.status == "sending" and msg.attempts == 1

    await run_worker(at_client.app)
    assert len(fake.requests) == 2, "within the lease, nothing takes them"

    await OutboundMessage.filter(id__in=[ack.id, officer.id]).update(
        updated_at=datetime.now(UTC) - STALE_SENDING - timedelta(seconds=1)
    )
    await run_worker(at_client.app)  # the sweep runs at start-up
    for msg in (ack, officer):
        await msg.refresh_from_db()
        assert msg.status == "sent" and msg.attempts == 2
    assert requests_to(fake, CITIZEN) == 2 and requests_to(fake, OFFICER) == 2

    # The dead worker's jobs come back when arq's in-progress keys expire: nothing to send.
    redis = at_client.app[REDIS]
    in_progress = [f"arq:in-progress:{send_sms_job_id(m.id)}" for m in (ack, officer)]
    assert await redis.exists(*in_progress) == 2
    await redis.delete(*in_progress)
    await run_worker(at_client.app)
    assert requests_to(fake, CITIZEN) == 2 and requests_to(fake, OFFICER) == 2
    assert await redis.zcard(QUEUE) == 0


async def test_a_message_whose_job_a_killed_worker_had_started_goes_without_waiting_for_arq(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    """A worker killed after arq started a message's job, before the job claimed the
    message, leaves it queued and its job "in progress" in arq for ten minutes (the
    longest job's timeout): the sweep gives it a job of its own, and it is sent once."""
    ack = await register(at_client)
    officer = await officer_notice(ack)
    redis = at_client.app[REDIS]
    left = in_progress_key_prefix + send_sms_job_id(ack.id)
    await redis.psetex(left, 600_000, b"1")  # the dead worker's: started, never claimed
    await OutboundMessage.filter(id=ack.id).update(
        created_at=datetime.now(UTC) - timedelta(minutes=1)  # past the sweep's grace
    )
    await run_worker(at_client.app)  # the sweep runs at start-up
    for msg in (ack, officer):
        await msg.refresh_from_db()
        assert (msg.status, msg.attempts) == ("sent", 1)
    assert requests_to(fake, CITIZEN) == 1 and requests_to(fake, OFFICER) == 1

    await redis.delete(left)  # arq's ten minutes are over: its own job finds it sent
    await run_worker(at_client.app)
    assert requests_to(fake, CITIZEN) == 1
    assert await redis.zcard(QUEUE) == 0


async def test_a_send_is_taken_again_only_past_the_configured_lease(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> None:
    """``worker.send_lease_seconds`` is the lease the sweep and the claim both go by: with
    20 s, a message left "sending" 21 s ago is sent again, one left 19 s ago is not."""
    config = at_config(tmp_path, database_url, redis_url, fake, worker={"send_lease_seconds": 20})
    client = await start_app(config)
    ack = await register(client)
    officer = await officer_notice(ack)
    now = datetime.now(UTC)
    await OutboundMessage.filter(id=ack.id).update(
        status="sending", attempts=1, updated_at=now - timedelta(seconds=19)
    )
    await OutboundMessage.filter(id=officer.id).update(
        status="sending", attempts=1, updated_at=now - timedelta(seconds=21)
    )
    await client.app[REDIS].flushdb()  # their jobs gone with the dead worker's Redis
    await run_worker(client.app)  # the sweep runs at start-up
    await ack.refresh_from_db()
    await officer.refresh_from_db()
    assert (ack.status, ack.attempts) == ("sending", 1)
    assert (officer.status, officer.attempts) == ("sent", 2)
    assert requests_to(fake, CITIZEN) == 0 and requests_to(fake, OFFICER) == 1


# --------------------------------------------------------------------------- standalone


async def test_the_standalone_worker_gives_a_failed_acknowledgement_its_second_chance(
    at_client: TestClient[Any, Any], fake: FakeAfricasTalking, tmp_path: Path
) -> None:
    """``python server.py --no-worker`` and ``python -m gateway worker``, two processes
    sharing Redis: a citizen registers by USSD, the acknowledgement fails for good, and is
    tried once more half an hour later, as the embedded worker does."""
    config = at_client.app[CONFIG]
    fake.outcomes[CITIZEN] = 406
    port = free_port()
    env = worker_env(config, fake, PORT=str(port))
    async with (
        gateway_process("server.py", "--no-worker", env=env, log=tmp_path / "server.log") as server,
        gateway_process("-m", "gateway", "worker", env=env, log=tmp_path / "worker.log") as worker,
        aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session,
    ):

        async def healthy() -> bool:
            for proc, name in ((server, "server"), (worker, "worker")):
                assert proc.returncode is None, (tmp_path / f"{name}.log").read_text()
            try:
                async with session.get("/healthz") as resp:
                    return resp.status == 200  # the worker's health record, shared Redis
            except aiohttp.ClientError:
                return False

        await eventually(healthy, "the server up and the standalone worker's health record")
        # The processes read the callback secret from the database the test app stored it in.
        ussd = signed(at_client, "/ussd/africastalking")
        phone = Phone(cast(TestClient[Any, Any], session), number=CITIZEN, ussd_path=ussd)
        await phone.dial()
        await phone.send(ENGLISH)
        done = await phone.walk("1", "2", "9", "2", "1", "1")
        assert "Ticket: " in done, done

        async def acknowledgement() -> OutboundMessage | None:
            return await OutboundMessage.get_or_none(template=ACKNOWLEDGEMENT)

        async def settled() -> bool:
            # Refused: a second chance scheduled, or the complaint flagged for staff.
            ack = await acknowledgement()
            return (
                bool(ack and ack.second_chance)
                or await ComplaintEvent.filter(kind="message_failed").exists()
            )

        await eventually(settled, "the acknowledgement tried and refused")
        ack = await acknowledgement()
        assert ack is not None
        assert ack.status == "retrying" and ack.second_chance, "tried once more, later"
        assert not await ComplaintEvent.filter(kind="message_failed").exists()
        second = f"{send_sms_job_id(ack.id)}:second"

        async def queued() -> bool:
            return await at_client.app[REDIS].zscore(QUEUE, second) is not None

        await eventually(queued, "the second chance queued")
        delay = await at_client.app[REDIS].zscore(QUEUE, second) / 1000 - time.time()
        assert 29 * 60 < delay <= 30 * 60, delay  # lifecycle.failed_message_retry_minutes

        del fake.outcomes[CITIZEN]
        await half_an_hour_passes(at_client)

        async def sent() -> bool:
            await ack.refresh_from_db()
            return ack.status == "sent"

        await eventually(sent, "the second chance sent by the standalone worker")
        assert requests_to(fake, CITIZEN) == 2
        for proc in (worker, server):
            proc.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(proc.wait(), DEADLINE) == 0
    assert "Traceback" not in (tmp_path / "worker.log").read_text()


# --------------------------------------------------------------------------- database away


class Cuttable:
    """A TCP proxy on loopback in front of the database server: :meth:`cut` drops every
    connection and refuses new ones (to the gateway, the server is gone), :meth:`mend`
    lets them through again."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.StreamWriter] = set()

    async def mend(self) -> None:
        self.server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.pipes):
            writer.transport.abort()
        self.pipes.clear()
        await self.server.wait_closed()
        self.server = None

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.pipes |= {writer, up_writer}
        await asyncio.gather(
            self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            self.pipes.discard(writer)
            writer.transport.abort()


@pytest.fixture
async def database_proxy(database_url: str) -> AsyncIterator[tuple[Cuttable, str]]:
    """A :class:`Cuttable` in front of the test's database server, and the database's URL
    through it (cut for good only after the app using it has closed)."""
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql"):
        pytest.skip("a database server to lose: PostgreSQL only")
    proxy = Cuttable(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.mend()
    yield proxy, parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    if proxy.server is not None:
        await proxy.cut()


async def test_the_worker_outlives_a_database_outage_and_sends_after_it(
    database_proxy: tuple[Cuttable, str],
    start_app: AppFactory,
    tmp_path: Path,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> None:
    """The database server unreachable while messages wait: their jobs are tried again
    with the back-off (not failed, their results holding the messages' job IDs for an
    hour), /healthz names the database, not the worker, and the messages go out once the
    database is back."""
    proxy, through_proxy = database_proxy
    config = at_config(
        tmp_path,
        through_proxy,
        redis_url,
        fake,
        worker={"max_tries": 8, "retry_base_seconds": 0.5, "retry_max_seconds": 1},
    )
    client = await start_app(config)
    ack = await register(client)  # the acknowledgement and the officer's notice, queued
    await proxy.cut()
    worker = build_worker(worker_context(client.app), pool=client.app[REDIS])
    task = asyncio.create_task(worker.async_run())
    try:

        async def retried() -> bool:
            assert worker.jobs_failed == 0, "a send job failed for a database away"
            return worker.jobs_retried >= 2

        await eventually(retried, "the sends tried again while the database is away")
        body = await health(client)
        assert (body["database"], body["redis"], body["worker"]) == ("down", "ok", "ok"), body
        assert fake.requests == []

        await proxy.mend()

        async def sent() -> bool:
            return await OutboundMessage.filter(status="sent").count() == 2

        await eventually(sent, "both messages sent once the database is back")
    finally:
        await stop_worker(worker, task)
    assert requests_to(fake, CITIZEN) == 1 and requests_to(fake, OFFICER) == 1
    await ack.refresh_from_db()
    assert ack.attempts == 1
    assert (await health(client))["database"] == "ok"


async def test_a_campaign_whose_runner_was_killed_is_taken_on_after_its_short_lock(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> None:
    """A worker process SIGKILLed mid-campaign leaves the campaign's lock behind, no longer
    renewed: another runner takes the campaign on once ``bulk.lock_seconds`` (3 here) are
    over, not a minute later, and finishes it: each number sent once, except that those
    whose request reached the provider as the worker died may go once more (rule 3); the
    batch the dead runner held goes once its lease is over."""
    bulk = {"segments_per_second": 4, "batch_size": 4, "quiet_hours": None, "lock_seconds": 3}
    config = at_config(tmp_path, database_url, redis_url, fake, bulk=bulk)
    client = await start_app(config)
    for i in range(1, 21):
        await complaint(number(i), language="en_IN")
    campaigns, campaign = await theog_draft(client)
    await campaigns.start(campaign, actor="t")
    raw = yaml.safe_load(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    raw["bulk"].update(bulk)
    raw["paths"] = {
        "data_dir": str(tmp_path / "var"),
        "locales": str(ROOT / "locales"),
        "sms_templates": str(ROOT / "sms_templates"),
    }
    config_file = tmp_path / "worker.yaml"
    config_file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    env = worker_env(config, fake, SAMPARK_CONFIG=str(config_file))
    log = tmp_path / "worker.log"
    runner = worker_context(client.app)["campaign_runner"]
    key = runner.lock(campaign.id).key
    async with gateway_process("-m", "gateway", "worker", env=env, log=log) as proc:

        async def some_sent() -> bool:
            assert proc.returncode is None, log.read_text()
            return len(fake.sent) >= 4

        await eventually(some_sent, "the worker process sending the campaign")
        proc.kill()
        await proc.wait()
    killed = time.monotonic()
    assert await client.app[REDIS].exists(key), "the dead runner's lock is left behind"
    assert len(fake.sent) < 20
    held = set(
        await OutboundMessage.filter(campaign_id=campaign.id, status="sending").values_list(
            "recipient", flat=True
        )
    )
    tries = 0
    while (outcome := await runner.run(campaign.id)) == "busy":
        tries += 1
        assert time.monotonic() - killed < config.bulk.lock_seconds + 1, "still locked"
        await asyncio.sleep(0.1)
    assert tries > 0 and outcome in ("done", "waiting"), outcome
    # What the dead runner held ("sending"), past its lease: the next runner sends it.
    await OutboundMessage.filter(campaign_id=campaign.id, status="sending").update(
        updated_at=datetime.now(UTC) - STALE_SENDING - timedelta(seconds=1)
    )
    finishing = time.monotonic() + DEADLINE
    while (await runner.run(campaign.id)) != "done":
        assert time.monotonic() < finishing, "the campaign did not finish"
        await asyncio.sleep(0.1)
    got = Counter(m.number for m in fake.sent)
    # Each number once; a number whose request reached the provider just before the kill,
    # its answer not yet recorded, once more at most (README "How it works", rule 3).
    assert set(got) == {number(i) for i in range(1, 21)}
    again = {n for n, times in got.items() if times > 1}
    assert again <= held and max(got.values()) <= 2, (got, held)

"""``/healthz/live`` and ``/healthz/ready``: what each kind of process needs, and the
refusal of a web process without a worker on the embedded Redis."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import __version__
from gateway.app import BULK_WORKER, WORKER, create_app
from gateway.config import Config
from gateway.web import health
from gateway.web.health import readiness
from tests.conftest import ROOT, AppFactory
from tests.test_app import STARTUP_DEADLINE, clean_env, free_port, http
from tests.test_startup import assert_one_line, run_cli, sqlite_url


async def test_live_answers_with_the_version(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/healthz/live")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "version": __version__}


async def test_a_web_process_is_ready_without_a_worker(client: TestClient[Any, Any]) -> None:
    """Its worker runs elsewhere: the load balancer must keep sending it traffic."""
    resp = await client.get("/healthz/ready")
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "status": "ok",
        "database": "ok",
        "redis": "ok",
        "version": __version__,
    }
    legacy = await client.get("/healthz")
    assert legacy.status == 503, "the old check still asks for a worker on the queue"


async def wait_for(client: TestClient[Any, Any], path: str, status: int) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        resp = await client.get(path)
        body: dict[str, Any] = await resp.json()
        if resp.status == status:
            return body
        assert time.monotonic() < deadline, (resp.status, body)
        await asyncio.sleep(0.05)


async def test_a_process_running_the_workers_is_ready_only_while_their_loops_run(
    start_app: AppFactory, config: Config, aiohttp_client: Any
) -> None:
    first = await start_app(config)
    await first.close()
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config, with_worker=True))
    body = await wait_for(client, "/healthz/ready", 200)
    assert body["worker"] == "ok" and body["bulk_worker"] == "ok"

    # The campaign worker's loop dies (its supervisor restarts it after a delay): not ready.
    bulk = client.app[BULK_WORKER]
    assert bulk.main_task is not None
    bulk.main_task.cancel()
    body = await wait_for(client, "/healthz/ready", 503)
    assert body["bulk_worker"] == "down" and body["worker"] == "ok"
    assert body["status"] == "degraded" and body["version"] == __version__
    assert client.app[WORKER].main_task is not None


async def test_ready_names_redis_down_when_it_does_not_answer(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "REDIS_TIMEOUT", 0.2)

    async def refused() -> None:
        raise ConnectionRefusedError("nothing listens")

    async def silent() -> None:
        await asyncio.sleep(60)

    for ping in (refused, silent):
        ok, checks = await readiness(ping, {})
        assert not ok and checks == {"database": "ok", "redis": "down"}


def test_no_worker_on_the_embedded_redis_is_refused_in_one_line(tmp_path: Path) -> None:
    returncode, stderr = run_cli(
        "server.py", "--no-worker", DATABASE_URL=sqlite_url(tmp_path), REDIS_URL="embedded"
    )
    assert_one_line(
        returncode, stderr, "--no-worker: the embedded Redis lives inside this process"
    )
    assert not (tmp_path / "gateway.db").exists(), "refused before opening anything"


def test_a_worker_run_alone_answers_its_health_checks_on_its_port(
    tmp_path: Path, redis_url: str
) -> None:
    if not redis_url.startswith("redis://"):
        pytest.skip("needs a Redis on TCP (TEST_REDIS_URL) the worker process can share")
    port = free_port()
    env = clean_env(DATABASE_URL=sqlite_url(tmp_path), REDIS_URL=redis_url)
    log = tmp_path / "worker.log"
    with (
        log.open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-m", "gateway", "worker", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        ) as proc,
    ):
        try:
            deadline = time.monotonic() + STARTUP_DEADLINE
            status, body = 0, ""
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    status, body = http("GET", f"http://127.0.0.1:{port}/healthz/ready")
                except OSError:
                    status = 0
                if status == 200:
                    break
                time.sleep(0.1)
            assert status == 200, (status, body, log.read_text())
            assert json.loads(body) == {
                "status": "ok",
                "database": "ok",
                "redis": "ok",
                "worker": "ok",
                "bulk_worker": "ok",
                "version": __version__,
            }
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0, log.read_text()
            assert "workers started" in log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_the_public_sample_ticket_key_is_warned_of_at_start(tmp_path: Path) -> None:
    """(Started on a port in use: the warning comes first, then the server stops.)"""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        env = clean_env(
            DATABASE_URL=sqlite_url(tmp_path),
            PORT=str(holder.getsockname()[1]),
            TICKETS_KEY="sampark-tickets",
        )
        done = subprocess.run(
            [sys.executable, "server.py"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "WARNING gateway: tickets.key is the public sample key" in done.stderr, done.stderr

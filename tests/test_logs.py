"""Log lines as an operator's collector reads them: ``LOG_FORMAT=json`` gives one JSON
object a line, the request ID of a USSD hop reaches the log lines of the SMS job it
queued, and the lines for start, ready, migrations, workers and stop are there; a phone
number is never written whole."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import ROOT
from tests.test_app import STARTUP_DEADLINE, clean_env, free_port, http

NUMBER = "+919812345678"
REGISTRATION = ("", "2", "1", "2", "9", "2", "1", "1")
"""Dial, English, new complaint, Jal Shakti, Shimla, Theog, no water supply, submit."""
REQUEST_ID = "req-7f3a-registration"
SECRET = "logs-test-secret-0123"
"""Africa's Talking's callback secret, chosen (``callbacks.secrets``) through the
environment, so that the test knows the signed path."""


def hop(base: str, session: str, text: str, request_id: str | None = None) -> str:
    form = {
        "sessionId": session,
        "serviceCode": "*1100#",
        "phoneNumber": NUMBER,
        "networkCode": "40445",
        "text": text,
    }
    request = urllib.request.Request(
        f"{base}/ussd/africastalking/{SECRET}",
        data=urllib.parse.urlencode(form).encode(),
        method="POST",
    )
    if request_id is not None:
        request.add_header("X-Request-ID", request_id)
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["X-Request-ID"] == (request_id or response.headers["X-Request-ID"])
        return str(response.read().decode())


def lines_of(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` as JSON (fails on a line that is not)."""
    found = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            found.append(json.loads(line))
        except ValueError:
            pytest.fail(f"line {n} is not JSON: {line!r}")
    return found


def test_json_lines_carry_the_request_id_into_the_sms_job(
    tmp_path: Path, redis_url: str
) -> None:
    # Jobs and kept results of earlier tests would hold the job IDs of this database's
    # first messages (sms:1 ...): the server starts on an empty Redis database.
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = clean_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'gateway.db'}",
        REDIS_URL=redis_url,
        PORT=str(port),
        LOG_FORMAT="json",
        SAMPARK__CALLBACKS__SECRETS=f"{{africastalking: {SECRET}}}",
    )
    with (
        log.open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "server.py"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        ) as proc,
    ):
        try:
            deadline = time.monotonic() + STARTUP_DEADLINE
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if http("GET", f"{base}/healthz/ready")[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            assert proc.poll() is None, log.read_text()
            session = f"ATUid_logs_{port}"
            inputs: list[str] = []
            for i, value in enumerate(REGISTRATION):
                if value:
                    inputs.append(value)
                last = i == len(REGISTRATION) - 1
                screen = hop(base, session, "*".join(inputs), REQUEST_ID if last else None)
            assert screen.startswith("END ") and "Ticket:" in screen, screen

            def job_lines() -> list[dict[str, Any]]:
                return [
                    line
                    for line in lines_of(log)
                    if line.get("request_id") == REQUEST_ID
                    and str(line.get("event", "")).startswith("message ")
                ]

            deadline = time.monotonic() + 15
            while len(job_lines()) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            sent = job_lines()
            assert len(sent) >= 2, log.read_text()  # the acknowledgement, the officer's notice
            assert all(line["logger"].startswith("gateway.sms") for line in sent), sent
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    lines = lines_of(log)
    events = [str(line["event"]) for line in lines]
    assert all({"timestamp", "level", "logger", "event"} <= set(line) for line in lines)
    assert events[0].startswith("starting Sampark"), events[:3]
    assert lines[0]["version"]
    applied = next(i for i, e in enumerate(events) if e.startswith("migrations applied: 0001"))
    workers = next(i for i, e in enumerate(events) if e.startswith("workers started"))
    ready = next(i for i, e in enumerate(events) if e.startswith("ready: Sampark on"))
    assert applied < ready and workers < ready
    assert events[-1] == "stopped", events[-5:]
    access = [line for line in lines if line["logger"] == "gateway.access"]
    assert {"method", "path", "status", "ms", "request_id"} <= set(access[-1])
    assert any(line["request_id"] == REQUEST_ID and line["status"] == 200 for line in access)
    assert NUMBER not in log.read_text() and NUMBER[1:] not in log.read_text()
    assert SECRET not in log.read_text(), "the access log shows the route, not the secret"


def test_plain_lines_name_the_level_and_the_logger(tmp_path: Path) -> None:
    """On a terminal (no LOG_FORMAT): one line of text per event."""
    code = (
        "import logging\n"
        "from gateway.ops import logs\n"
        "logs.configure(level='INFO')\n"
        "with logs.bound(request_id='r-1'):\n"
        "    logging.getLogger('gateway.x').info('hello %s', 'world')\n"
        "    logs.get_logger('gateway.y').warning('shaped', count=3)\n"
        "logging.getLogger('gateway.x').debug('not shown')\n"
        "logging.getLogger('gateway.x').info('Authorization: Bearer spk_0123abcd_secret')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    lines = done.stderr.splitlines()
    assert len(lines) == 3, done.stderr
    assert lines[0].endswith(" INFO gateway.x: hello world request_id=r-1"), lines[0]
    assert lines[1].endswith(" WARNING gateway.y: shaped count=3 request_id=r-1"), lines[1]
    assert "secret" not in lines[2] and "[redacted]" in lines[2], lines[2]

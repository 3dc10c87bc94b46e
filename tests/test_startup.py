"""Starting the gateway: processes started together on a new database, and the one-line
errors an operator can act on (each case run as the operator runs it, in a subprocess)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT
from tests.test_app import clean_env, free_port

# Each process loads its configuration, says it is ready, and opens the database only when
# told to: both reach the migrations at the same moment, however long their imports took.
RACER = """
import asyncio, sys
from gateway.config import load_config
from gateway.storage.db import close_database, open_database
from gateway.storage.ticket_key import ticket_key

async def main() -> None:
    config = load_config("config.yaml")
    print("ready", flush=True)
    sys.stdin.readline()
    opened = await open_database(config)
    print(await ticket_key(config), flush=True)
    await close_database(opened)

asyncio.run(main())
"""

ROUNDS = 3


def start_together(database_url: str) -> list[tuple[int, str, str]]:
    """Two processes opening ``database_url`` at once: each one's status, output, errors."""
    env = clean_env(DATABASE_URL=database_url)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n", proc.communicate(timeout=30)
        for proc in procs:  # the barrier: both go
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            results.append((proc.returncode, out, err))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_two_processes_started_together_on_a_new_database_both_start(
    new_database: Callable[[], str],
) -> None:
    for _ in range(ROUNDS):
        results = start_together(new_database())
        for returncode, _, err in results:
            assert returncode == 0, err
        keys = {out.strip() for _, out, _ in results}
        assert len(keys) == 1, "both processes must use the one key stored first"


# --------------------------------------------------------------------------- one-line errors


def run_cli(*args: str, **env: str) -> tuple[int, str]:
    """``python -m gateway ARGS`` (or ``server.py`` when ARGS start with it): status, stderr."""
    command = list(args) if args[0] == "server.py" else ["-m", "gateway", *args]
    result = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=clean_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stderr


def assert_one_line(returncode: int, stderr: str, *expected: str) -> str:
    """Exit status 2 and one ``sampark:`` line holding each of ``expected``; no traceback.
    (``serve`` may log before it, e.g. the embedded Redis starting and stopping.)"""
    assert returncode == 2, stderr
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("sampark:")]
    assert len(lines) == 1, stderr
    for text in expected:
        assert text in lines[0], stderr
    return lines[0]


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gateway.db'}"


def test_a_port_in_use_is_one_line_and_sampark_on_is_never_logged(
    tmp_path: Path, redis_url: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        returncode, stderr = run_cli(
            "server.py", DATABASE_URL=sqlite_url(tmp_path), REDIS_URL=redis_url, PORT=str(port)
        )
    line = assert_one_line(returncode, stderr, "PORT", f"127.0.0.1:{port} is already in use")
    assert line.endswith("to a free port)")
    assert "Sampark on" not in stderr, "logged before the port was bound"


def postgres_server() -> str:
    """The test PostgreSQL server (for the cases that need a server to answer)."""
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        pytest.skip("TEST_POSTGRES_URL is not set")
    return url


def on_server(path: str, *, user: str | None = None) -> str:
    parts = urlsplit(postgres_server())
    netloc = parts.netloc if user is None else f"{user}@{parts.netloc.rpartition('@')[2]}"
    return parts._replace(netloc=netloc, path=path).geturl()


def test_a_missing_postgres_database_is_one_line() -> None:
    url = on_server("/sampark_no_such_database")
    host = urlsplit(url).netloc.rpartition("@")[2]
    assert_one_line(
        *run_cli("staff", "list", DATABASE_URL=url),
        f'DATABASE_URL: database "sampark_no_such_database" does not exist on {host}',
        "create it, or point DATABASE_URL at another",
    )


def test_a_postgres_role_that_does_not_exist_is_one_line() -> None:
    url = on_server("/postgres", user="sampark_no_such_role")
    assert_one_line(
        *run_cli("report", "--month", "2026-11", DATABASE_URL=url),
        "DATABASE_URL: PostgreSQL on",
        'role "sampark_no_such_role" does not exist',
    )


def test_a_refused_database_port_is_one_line_without_the_password() -> None:
    port = free_port()
    url = f"postgres://sampark:s3cret-pw@127.0.0.1:{port}/sampark"
    returncode, stderr = run_cli("outbox", DATABASE_URL=url)
    assert_one_line(
        returncode,
        stderr,
        f"DATABASE_URL: nothing is listening on 127.0.0.1:{port}",
        "start PostgreSQL there",
    )
    assert "s3cret-pw" not in stderr


def test_a_database_host_that_does_not_resolve_is_one_line() -> None:
    url = "postgres://sampark@sampark-db.invalid:5432/sampark"
    assert_one_line(
        *run_cli("staff", "list", DATABASE_URL=url),
        "DATABASE_URL: cannot resolve the host 'sampark-db.invalid'",
    )


def test_a_sqlite_directory_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    url = f"sqlite:///{tmp_path / 'a-file' / 'var' / 'gateway.db'}"
    assert_one_line(
        *run_cli("migrate", DATABASE_URL=url),
        f"DATABASE_URL: cannot create {tmp_path / 'a-file' / 'var'}",
        "directory this user can write",
    )


def test_a_sqlite_database_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "gateway.db").mkdir()  # tortoise alone waited for ever on this one
    assert_one_line(
        *run_cli("staff", "list", DATABASE_URL=sqlite_url(tmp_path)),
        f"DATABASE_URL: cannot open the SQLite database {tmp_path / 'gateway.db'}",
    )


def test_a_refused_redis_port_is_one_line_without_the_password(tmp_path: Path) -> None:
    port = free_port()
    returncode, stderr = run_cli(
        "worker",
        DATABASE_URL=sqlite_url(tmp_path),
        REDIS_URL=f"redis://:s3cret-pw@127.0.0.1:{port}/0",
    )
    assert_one_line(
        returncode, stderr, f"REDIS_URL: nothing is listening on 127.0.0.1:{port}", "start Redis"
    )
    assert "s3cret-pw" not in stderr


def test_a_redis_database_that_does_not_exist_is_one_line(tmp_path: Path, redis_url: str) -> None:
    if not redis_url.startswith("redis://"):
        pytest.skip("needs a Redis on TCP (TEST_REDIS_URL)")
    url = urlsplit(redis_url)._replace(path="/9999").geturl()
    assert_one_line(
        *run_cli("worker", DATABASE_URL=sqlite_url(tmp_path), REDIS_URL=url),
        "REDIS_URL: Redis at",
        "has no database 9999",
    )


def test_the_worker_on_the_embedded_redis_is_one_line(tmp_path: Path) -> None:
    assert_one_line(
        *run_cli("worker", DATABASE_URL=sqlite_url(tmp_path), REDIS_URL="embedded"),
        "redis.url: a separate worker needs a Redis",
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (("outbox", "--limit", "-5"), "argument --limit: '-5' is not a whole number of 1 or more"),
        (("outbox", "--limit", "0"), "argument --limit: '0' is not a whole number"),
        (
            ("notify", "preview", "--as", "x", "--template", "t", "--csv", "/missing.csv"),
            "argument --csv: /missing.csv: no such file",
        ),
        (("staff",), "the following arguments are required"),
    ],
    ids=["negative-limit", "zero-limit", "missing-csv", "missing-subcommand"],
)
def test_a_bad_argument_is_one_line(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    returncode, stderr = run_cli(*args, DATABASE_URL=sqlite_url(tmp_path))
    line = assert_one_line(returncode, stderr, expected)
    assert line.endswith("--help)")
    assert stderr.strip() == line, "no usage block: the line says where help is"
    assert not (tmp_path / "gateway.db").exists(), "refused before opening the database"


def test_the_sample_ticket_key_with_a_real_provider_is_one_line(tmp_path: Path) -> None:
    assert_one_line(
        *run_cli(
            "staff",
            "list",
            DATABASE_URL=sqlite_url(tmp_path),
            SMS_PROVIDER="africastalking",
            AT_API_KEY="atsk_not_a_real_key",
            TICKETS_KEY="sampark-tickets",
        ),
        "tickets.key: 'sampark-tickets' is the public sample key",
        "sms.provider africastalking",
    )

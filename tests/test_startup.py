"""Starting the gateway: processes started together on a new database."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from tests.conftest import ROOT
from tests.test_app import clean_env

# Each process loads its configuration, says it is ready, and opens the database only when
# told to: both reach the migrations at the same moment, however long their imports took.
RACER = """
import asyncio, sys
from gateway.config import load_config
from gateway.db import close_database, open_database

async def main() -> None:
    config = load_config("config.yaml")
    print("ready", flush=True)
    sys.stdin.readline()
    opened = await open_database(config)
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

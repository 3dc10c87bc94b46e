"""``SAMPARK_EVENT_LOOP``: the standard loop unless uvloop is asked for (and installed)."""

from __future__ import annotations

from importlib.util import find_spec

import pytest

from gateway.config import ConfigError
from gateway.ops.event_loop import ENV, chosen


def test_the_standard_loop_unless_uvloop_is_asked_for() -> None:
    assert chosen({}) == "asyncio"
    assert chosen({ENV: " AsyncIO "}) == "asyncio"
    with pytest.raises(ConfigError, match="'tokio' is not asyncio or uvloop"):
        chosen({ENV: "tokio"})


def test_uvloop_asked_for_is_used_when_installed_and_refused_when_not() -> None:
    if find_spec("uvloop") is not None:
        assert chosen({ENV: "uvloop"}) == "uvloop"
    else:
        with pytest.raises(ConfigError, match="uvloop is not installed"):
            chosen({ENV: "uvloop"})

"""The plain client the benchmarks' ceilings are measured with: one aiohttp session posting
forms to a fake provider, a number of them at a time, each answer read and checked. What
the gateway does beyond this is its own cost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping

import aiohttp

Form = bytes | Mapping[str, str]
"""An encoded form, or its fields."""


async def post_forms(
    url: str, headers: Mapping[str, str], forms: Iterable[Form], *, wide: int, expect: int
) -> float:
    """Seconds to post ``forms`` (taken as they are posted, so a generator need not hold
    them all) to ``url``, ``wide`` at a time; every answer must have status ``expect``."""
    todo = iter(forms)

    async def sender(http: aiohttp.ClientSession) -> None:
        for body in todo:
            async with http.post(url, data=body, headers=dict(headers)) as resp:
                await resp.read()
                assert resp.status == expect, resp.status

    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=wide)) as http:
        await asyncio.gather(*(sender(http) for _ in range(wide)))
    return time.perf_counter() - t0

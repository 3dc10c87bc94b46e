"""Group commit: many concurrent callers' small writes run as one statement.

The worker sends up to 50 messages at once. Were each to claim its row and record the
provider's answer in statements of its own, on SQLite every statement would queue for the
one connection and the 50 jobs wait on each other (``make bench``, py-spy). A
:class:`GroupWriter` collects what callers submit while its previous write runs, and
writes all of it together: under load a write serves dozens of callers, when idle it
serves one with no added delay.

A caller's ``submit`` returns only once its own write has committed, so nothing is
reported done before it is in the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupWriter"]

T = TypeVar("T")
R = TypeVar("R")


class GroupWriter(Generic[T, R]):
    """Runs ``write(items)`` for batches of submitted items, one batch at a time.

    ``write`` returns one result per item, in order. When it raises, every caller in that
    batch gets the exception.
    """

    def __init__(
        self, write: Callable[[Sequence[T]], Awaitable[Sequence[R]]], *, max_batch: int = 500
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Write ``item`` with whatever else is waiting; its result once committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        # A cancelled caller leaves its item in the batch: the write still happens (as it
        # would have had the caller's own statement been sent already).
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                results = await self._write([item for item, _ in batch])
            except BaseException as e:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                if isinstance(e, asyncio.CancelledError):
                    for _, future in self._waiting:
                        future.cancel()
                    self._waiting.clear()
                    raise
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

"""GroupWriter: what callers submit while a write runs goes in the next write, together;
each caller gets its own result only once its write is done."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from gateway.storage.group_commit import GroupWriter


class Ledger:
    """A write that takes a while and remembers its batches."""

    def __init__(self, *, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.written: list[int] = []
        self.fail_on = fail_on

    async def write(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(0.01)
        if self.fail_on in items:
            raise RuntimeError(f"cannot write {self.fail_on}")
        self.written += items
        return [i * 10 for i in items]


async def test_callers_arriving_during_a_write_share_the_next_one() -> None:
    ledger = Ledger()
    writer = GroupWriter(ledger.write)
    first = asyncio.ensure_future(writer.submit(1))
    await asyncio.sleep(0)  # its write is under way
    results = await asyncio.gather(*(writer.submit(i) for i in range(2, 21)))
    assert await first == 10
    assert results == [i * 10 for i in range(2, 21)]
    assert ledger.batches == [[1], list(range(2, 21))]


async def test_callers_arriving_together_are_written_together() -> None:
    ledger = Ledger()
    writer = GroupWriter(ledger.write)
    assert await asyncio.gather(*(writer.submit(i) for i in range(5))) == [0, 10, 20, 30, 40]
    assert ledger.batches == [[0, 1, 2, 3, 4]]


async def test_an_idle_writer_writes_a_lone_caller_at_once() -> None:
    ledger = Ledger()
    writer = GroupWriter(ledger.write)
    assert await writer.submit(7) == 70
    assert await writer.submit(8) == 80
    assert ledger.batches == [[7], [8]]


async def test_batches_are_capped() -> None:
    ledger = Ledger()
    writer = GroupWriter(ledger.write, max_batch=5)
    await asyncio.gather(*(writer.submit(i) for i in range(12)))
    assert [len(b) for b in ledger.batches] == [5, 5, 2]


async def test_a_failed_write_fails_its_callers_only() -> None:
    ledger = Ledger(fail_on=3)
    writer = GroupWriter(ledger.write)
    first = asyncio.ensure_future(writer.submit(1))
    await asyncio.sleep(0)  # the first write is under way: the next three wait together
    doomed = [asyncio.ensure_future(writer.submit(i)) for i in (2, 3, 4)]
    assert await first == 10
    for d in doomed:
        with pytest.raises(RuntimeError, match="cannot write 3"):
            await d
    assert await writer.submit(5) == 50, "the writer goes on after a failed write"
    assert ledger.written == [1, 5]


async def test_a_cancelled_caller_is_still_written() -> None:
    """As a statement already sent would be: the caller only stops waiting for it."""
    ledger = Ledger()
    writer = GroupWriter(ledger.write)
    task = asyncio.ensure_future(writer.submit(1))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert ledger.written == [1]

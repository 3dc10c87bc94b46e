"""Scale-out, proven: two web processes and two workers, each its own OS process, on one
PostgreSQL database and one Redis (:mod:`tests.fault_harness`, :func:`scale_out`).

USSD registrations hop between the web processes, a campaign and the deadline job run at
once, and one worker is SIGKILLed mid-campaign. Every citizen and officer gets exactly
the messages they should; a second copy only of a message the killed worker held
mid-send (the README's rule 3, "How it works"), counted.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import AppFactory, make_config
from tests.fault_harness import Figures, Size, running_rig, scale_out

pytestmark = pytest.mark.skipif(
    os.environ.get("SAMPARK_TEST_DATABASE") != "postgres",
    reason="several gateway processes on one database: PostgreSQL only (the PostgreSQL "
    "run of the suite has them)",
)

SIZE = Size(citizens=8, campaign=200, segments_per_second=40, deadline=60)
"""Eight registrations (four overdue: escalated) and a campaign of 200 (400 segments:
ten seconds at 40 a second, long enough for a worker to die and another to start).

The deadline: when the killed worker was the campaign's runner, its Redis lock
(``bulk.lock_seconds``, 15 s, no longer renewed) holds the campaign until it expires, and
the next ``resume_campaigns`` (every 15 s) starts it again; the batch the dead runner held
goes after its lease (10 s in the rig). Half a minute at most with nothing sent; with a
60 s lock and a resumption each minute it was up to two minutes, and this deadline 180 s."""
RULE_3 = "rule 3 (worker died mid-send)"


@pytest.fixture
async def empty_database(
    start_app: AppFactory, tmp_path: Path, database_url: str, redis_url: str
) -> str:
    """The test database, migrated and emptied (by the app, closed again: the rig's
    processes use it)."""
    app = await start_app(make_config(tmp_path, database_url, redis_url))
    await app.close()
    return database_url


def described(figures: Figures) -> str:
    return "\n".join([figures.line(), *figures.notes])


async def test_two_web_processes_and_two_workers_one_killed_every_sms_once(
    tmp_path: Path, empty_database: str
) -> None:
    async with running_rig(tmp_path / "rig", empty_database, SIZE, webs=2, workers=2) as rig:
        figures = await scale_out(rig)
    print(described(figures))
    assert figures.notes == [], described(figures)
    assert figures.escalated == SIZE.citizens // 2, described(figures)
    assert figures.escalated_mid_campaign >= 1, "escalated while the campaign sent: " + (
        described(figures)
    )
    assert figures.sending_at_fault >= 1, "killed mid-send: " + described(figures)
    assert figures.lost == 0, described(figures)
    assert set(figures.by_rule) <= {RULE_3}, described(figures)
    assert figures.duplicated <= figures.sending_at_fault, described(figures)

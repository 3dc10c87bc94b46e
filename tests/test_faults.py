"""Faults under real traffic, each part of the gateway its own OS process on PostgreSQL
(:mod:`tests.fault_harness`): Redis killed and restarted empty mid-run, the worker killed
mid-send, the provider losing answers (a timeout, a reset, a body that is not JSON).
Every message the gateway took on reaches its phone; a second copy only where the
README's at-least-once rules allow it ("How it works"), and each is counted.

``make faults`` runs the same scenarios with more traffic and prints their figures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import AppFactory, make_config
from tests.fault_harness import (
    Figures,
    Size,
    provider_faults,
    redis_restart,
    running_rig,
    worker_kill,
)

pytestmark = pytest.mark.skipif(
    os.environ.get("SAMPARK_TEST_DATABASE") != "postgres",
    reason="the web server and the worker run as separate processes on one database: "
    "PostgreSQL only (the PostgreSQL run of the suite has them)",
)

SIZE = Size(citizens=4, campaign=30, segments_per_second=40, deadline=120)
"""Four registrations by USSD and four status SMS (12 messages), a campaign of 30."""
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


async def test_redis_killed_and_restarted_empty_mid_run_every_sms_arrives_once(
    tmp_path: Path, empty_database: str
) -> None:
    """Every job queued in Redis is gone (messages, the campaign's run); USSD hops and
    inbound SMS fail while it is down and are tried again, as phones and AT do."""
    async with running_rig(tmp_path / "rig", empty_database, SIZE) as rig:
        figures = await redis_restart(rig)
    assert figures.expected >= 3 * SIZE.citizens + SIZE.campaign, described(figures)
    assert figures.lost == 0, described(figures)
    assert figures.duplicated == 0, described(figures)


async def test_a_worker_killed_mid_send_leaves_nothing_unsent_and_repeats_only_its_sends(
    tmp_path: Path, empty_database: str
) -> None:
    """The messages the dead worker held go out once its 10 s lease is over (the
    restarted worker's sweep); only those whose request had reached the provider arrive
    twice, once more at most (rule 3)."""
    size = Size(citizens=SIZE.citizens, campaign=0, deadline=SIZE.deadline)
    async with running_rig(tmp_path / "rig", empty_database, size) as rig:
        figures = await worker_kill(rig)
    assert figures.sending_at_fault >= 1, "killed mid-send: " + described(figures)
    assert figures.lost == 0, described(figures)
    assert set(figures.by_rule) <= {RULE_3}, described(figures)
    assert figures.duplicated <= figures.sending_at_fault, described(figures)


async def test_a_provider_losing_answers_sends_nothing_twice_when_reports_come(
    tmp_path: Path, empty_database: str
) -> None:
    """Three in ten requests taken but their answer lost (after the timeout, a reset, a
    201 that is not JSON): their messages are "unknown" until their delivery reports
    settle them; none is sent again."""
    async with running_rig(tmp_path / "rig", empty_database, SIZE) as rig:
        figures = await provider_faults(rig)
    assert figures.answers_lost >= 3, "one of each fault at least: " + described(figures)
    assert figures.lost == 0, described(figures)
    assert figures.duplicated == 0, described(figures)
    assert figures.settled_by_report >= figures.answers_lost, described(figures)

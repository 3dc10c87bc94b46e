"""Bulk status notifications: preview, sending through the bulk worker against the fake
Africa's Talking API on loopback, batching, pause/resume/cancel, a worker killed mid-way,
opt-outs, quiet hours; and the campaign API's roles and scopes.

The bulk worker is the real one (``build_bulk_worker``), run until the campaign settles.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import CAMPAIGNS, COMPLAINTS, CONFIG, REDIS, worker_context
from gateway.campaigns.audience import ComplaintFilter
from gateway.campaigns.progress import progress
from gateway.campaigns.quiet_hours import in_quiet_hours
from gateway.campaigns.service import Campaigns
from gateway.cli.notify import progress_bar
from gateway.complaints.registration import NewComplaint
from gateway.complaints.scope import Scope, scope_of
from gateway.config import Config
from gateway.jobs.dispatch import BULK_QUEUE
from gateway.jobs.worker import build_bulk_worker, stop_worker
from gateway.staff.accounts import NewStaff, add_staff, issue_token
from gateway.storage.models import (
    AuditRecord,
    Campaign,
    CampaignStatus,
    Channel,
    Citizen,
    Complaint,
    ComplaintStatus,
    MessageStatus,
    OutboundMessage,
    StaffMember,
    StaffRole,
)
from tests.conftest import (
    AT_API_KEY,
    AT_USERNAME,
    SHIPPED_CONFIG,
    AppFactory,
    make_config,
    run_worker,
    signed,
)
from tests.fakes.africastalking import FakeAfricasTalking, Fault

VARIABLES = {"service": "Water supply", "place": "Theog", "update": "restored"}
DELIVERY_PATH = "/sms/africastalking/delivery"


def bulk_config(
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
    *,
    at_timeout: float = 10.0,
    worker: dict[str, Any] | None = None,
    **bulk: Any,
) -> Config:
    assert fake.base_url is not None
    return make_config(
        tmp_path,
        database_url,
        redis_url,
        environ={
            "SMS_PROVIDER": "africastalking",
            "AT_USERNAME": AT_USERNAME,
            "AT_API_KEY": AT_API_KEY,
            "AT_BASE_URL": fake.base_url,
        },
        worker={
            "max_tries": 3,
            "retry_base_seconds": 0.05,
            "retry_max_seconds": 0.1,
            **(worker or {}),
        },
        bulk={"segments_per_second": 1000, "batch_size": 50, "quiet_hours": None, **bulk},
        sms={"africastalking": {"timeout_seconds": at_timeout}},
    )


@pytest.fixture
async def bulk_client(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> TestClient[Any, Any]:
    return await start_app(bulk_config(tmp_path, database_url, redis_url, fake))


_serial = iter(range(1, 1_000_000))


async def complaint(
    phone: str,
    *,
    block: str = "theog",
    department: str = "jal_shakti",
    language: str = "hi",
    citizen_language: str | None = None,
    status: ComplaintStatus = ComplaintStatus.REGISTERED,
    opted_out: bool = False,
) -> Complaint:
    """A complaint written straight to the database (campaigns only read them)."""
    districts = {
        "theog": ("shimla", "theog"),
        "rohru": ("shimla", "rohru"),
        "kullu": ("kullu", "kullu"),
        "dharamshala": ("kangra", "dharamshala"),
    }
    district, tehsil = districts[block]
    citizen, _ = await Citizen.get_or_create(
        phone=phone, defaults={"language": citizen_language, "opted_out": opted_out}
    )
    n = next(_serial)
    return await Complaint.create(
        ticket=f"T{n:08d}",
        citizen=citizen,
        language=language,
        department=department,
        district=district,
        tehsil=tehsil,
        block=block,
        channel=Channel.USSD,
        status=status,
        due_at=datetime.now(UTC) + timedelta(days=7),
        source_key=f"test:{n}",
    )


def number(i: int) -> str:
    return f"+9198100{i:05d}"


async def staff(
    client: TestClient[Any, Any], username: str, role: StaffRole, **fields: Any
) -> tuple[StaffMember, str]:
    member = await add_staff(
        client.app[CONFIG],
        NewStaff(username=username, name=username, role=role, **fields),
        actor="cli",
    )
    token = (await issue_token(member, label="test", actor="cli")).token
    return member, token


async def district_admin(client: TestClient[Any, Any]) -> tuple[StaffMember, str]:
    return await staff(client, "dc_shimla", StaffRole.DISTRICT_ADMIN, district="shimla")


async def theog_draft(client: TestClient[Any, Any]) -> tuple[Campaigns, Campaign]:
    """The district admin's draft of the sample notice to every complaint in Theog."""
    admin, _ = await district_admin(client)
    campaigns = client.app[CAMPAIGNS]
    campaign = await campaigns.create(
        admin,
        scope_of(admin, campaigns.config),
        template="area_update",
        variables=VARIABLES,
        audience=ComplaintFilter(block="theog"),
        actor="t",
    )
    return campaigns, campaign


async def run_bulk(
    client: TestClient[Any, Any],
    *,
    until: Callable[[], Any] | None = None,
    limit: float = 30.0,
    kill: bool = False,
) -> None:
    """Run the real bulk worker until every campaign has settled (or ``until()`` holds);
    ``kill`` stops it then without letting its jobs finish."""
    app = client.app
    worker = build_bulk_worker(worker_context(app), pool=app[REDIS])
    task = asyncio.create_task(worker.async_run())
    deadline = time.monotonic() + limit
    try:
        while True:
            assert time.monotonic() < deadline, "the campaign did not settle in time"
            await asyncio.sleep(0.05)
            if until is not None:
                if await until():
                    break
                continue
            busy = await Campaign.filter(status=CampaignStatus.SENDING).count()
            if busy == 0:
                break
    finally:
        if kill:
            task.cancel()
            for job in list(worker.tasks.values()):
                job.cancel()
            await asyncio.sleep(0.1)
        await stop_worker(worker, task)


async def test_preview_counts_people_languages_and_segments(
    bulk_client: TestClient[Any, Any],
) -> None:
    await complaint(number(1), language="hi")
    await complaint(number(1), language="en_IN")  # the same citizen again: one message
    await complaint(number(2), language="en_IN")
    await complaint(number(3), language="hi", citizen_language="en_IN")
    await complaint(number(4), opted_out=True)
    await complaint(number(5), status=ComplaintStatus.CLOSED)  # not open
    await complaint(number(6), block="rohru")  # another block
    await complaint(number(7), department="pwd")  # another department
    campaigns = bulk_client.app[CAMPAIGNS]
    preview = await campaigns.preview_filter(
        Scope(district="shimla"),
        "area_update",
        VARIABLES,
        ComplaintFilter(department="jal_shakti", block="theog", open_only=True),
    )
    rendered = campaigns.render_all("area_update", VARIABLES)
    assert preview.recipients == 3
    assert preview.skipped_opted_out == 1
    assert preview.languages == {"en_IN": 2, "hi": 1}
    assert preview.segments == {"en_IN": rendered["en_IN"].segments, "hi": rendered["hi"].segments}
    assert rendered["hi"].segments == 2 and rendered["en_IN"].segments == 1
    assert preview.total_segments == 2 * 1 + 1 * 2
    # The scope always narrows the filter: a Kullu admin's same filter finds no one.
    outside = await campaigns.preview_filter(
        Scope(district="kullu"), "area_update", VARIABLES, ComplaintFilter(block="theog")
    )
    assert outside.recipients == 0


async def test_a_campaign_goes_from_preview_to_delivered(
    bulk_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    for i in range(1, 8):
        await complaint(number(i), language="hi" if i % 2 else "en_IN")
    await complaint(number(1))  # a second complaint of citizen 1
    admin, _ = await district_admin(bulk_client)
    campaigns = bulk_client.app[CAMPAIGNS]
    campaign = await campaigns.create(
        admin,
        scope_of(admin, campaigns.config),
        template="area_update",
        variables=VARIABLES,
        audience=ComplaintFilter(block="theog", open_only=True),
        actor="staff:dc_shimla",
    )
    assert campaign.status is CampaignStatus.DRAFT and campaign.recipients_total == 7
    await campaigns.start(campaign, actor="staff:dc_shimla")
    await run_bulk(bulk_client)

    await campaign.refresh_from_db()
    assert campaign.status is CampaignStatus.DONE
    sent_to = Counter(m.number for m in fake.sent)
    assert sent_to == Counter({number(i): 1 for i in range(1, 8)})
    # Same text, one request: one for Hindi, one for English.
    assert len(fake.requests) == 2
    assert sorted(len(r.form["to"].split(",")) for r in fake.requests) == [3, 4]
    assert all(r.form.get("enqueue") == "1" for r in fake.requests)
    texts = {m.number: m.text for m in fake.sent}
    assert texts[number(2)].startswith("Notice from the CM Helpline")
    assert "सीएम हेल्पलाइन" in texts[number(1)]

    got = await progress(campaign)
    assert (got.queued, got.sent, got.delivered, got.failed) == (0, 7, 0, 0)
    url = str(bulk_client.make_url(signed(bulk_client, DELIVERY_PATH)))
    for m in fake.sent:
        status = "Success" if m.number != number(3) else "Failed"
        await fake.send_delivery_report(url, m.message_id, status, phone=m.number)
    got = await progress(campaign)
    assert (got.queued, got.sent, got.delivered, got.failed) == (0, 0, 6, 1)
    assert await AuditRecord.filter(action__in=["campaign.create", "campaign.start"]).count() == 2


async def test_opted_out_citizens_are_skipped(
    bulk_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    await complaint(number(1))
    await complaint(number(2), opted_out=True)
    campaigns, campaign = await theog_draft(bulk_client)
    await campaigns.start(campaign, actor="t")
    await run_bulk(bulk_client)
    assert [m.number for m in fake.sent] == [number(1)]
    await campaign.refresh_from_db()
    assert campaign.skipped == 1
    assert not await OutboundMessage.filter(recipient=number(2)).exists()


@pytest.mark.parametrize("audience", ["filter", "csv"])
async def test_a_latin_only_handset_gets_the_latin_alternative(
    bulk_client: TestClient[Any, Any], fake: FakeAfricasTalking, audience: str
) -> None:
    """A citizen whose phone shows boxes for Devanagari (latin_only) gets Hindi's Latin
    alternative (hi_Latn) from a campaign too, as from the lifecycle; one whose phone draws
    Devanagari but not Perso-Arabic (script Deva) gets Kashmiri in Devanagari (ks_Deva).
    The preview says so."""
    await complaint(number(1), language="hi")
    await complaint(number(2), language="hi")
    await complaint(number(3), language="ks", citizen_language="ks")
    await complaint(number(4), language="ks", citizen_language="ks")
    await Citizen.filter(phone=number(2)).update(latin_only=True)
    await Citizen.filter(phone=number(4)).update(script="Deva")
    admin, _ = await district_admin(bulk_client)
    campaigns = bulk_client.app[CAMPAIGNS]
    campaign = await campaigns.create(
        admin,
        scope_of(admin, campaigns.config),
        template="area_update",
        variables=VARIABLES,
        audience=ComplaintFilter(block="theog") if audience == "filter" else None,
        actor="t",
    )
    if audience == "csv":

        async def text() -> Any:
            yield "".join(f"{number(i)}\n" for i in range(1, 5))

        await campaigns.add_numbers(campaign, text(), actor="t")
    preview = await campaigns.preview_campaign(campaign)
    assert preview.languages == {"hi": 1, "hi_Latn": 1, "ks": 1, "ks_Deva": 1}
    await campaigns.start(campaign, actor="t")
    await run_bulk(bulk_client)
    rendered = campaigns.render_all("area_update", VARIABLES)
    texts = {m.number: m.text for m in fake.sent}
    assert texts == {
        number(1): rendered["hi"].text,
        number(2): rendered["hi_Latn"].text,
        number(3): rendered["ks"].text,
        number(4): rendered["ks_Deva"].text,
    }
    assert rendered["hi_Latn"].encoding.value == "gsm7"


async def test_a_csv_number_the_provider_says_opted_out_is_remembered_as_for_one_sms(
    bulk_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    """A number from a campaign's CSV has no citizen record; AT's 406 for it opts it out
    all the same (the outbox's rule: one delivery path), so the next campaign skips it."""
    await complaint(number(1))
    blacklisted = number(2)  # in the CSV only: no citizen record
    fake.outcomes[blacklisted] = 406
    admin, _ = await district_admin(bulk_client)
    campaigns = bulk_client.app[CAMPAIGNS]

    async def csv_campaign() -> Campaign:
        campaign = await campaigns.create(
            admin,
            scope_of(admin, campaigns.config),
            template="area_update",
            variables=VARIABLES,
            audience=None,
            actor="t",
        )

        async def text() -> Any:
            yield f"{number(1)}\n{blacklisted}\n"

        await campaigns.add_numbers(campaign, text(), actor="t")
        return await campaigns.start(campaign, actor="t")

    first = await csv_campaign()
    await run_bulk(bulk_client)
    failed = await OutboundMessage.get(campaign_id=first.id, recipient=blacklisted)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.last_error == "UserInBlacklist (406)"
    assert (await Citizen.get(phone=blacklisted)).opted_out
    assert not (await Citizen.get(phone=number(1))).opted_out

    second = await csv_campaign()
    await run_bulk(bulk_client)
    assert [m.number for m in fake.sent] == [number(1), number(1)]
    await second.refresh_from_db()
    assert second.skipped == 1
    assert not await OutboundMessage.filter(campaign_id=second.id, recipient=blacklisted).exists()


async def test_batches_respect_the_rate_and_a_failed_request_resends_only_the_rest(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> None:
    # 2-segment Hindi texts at 8 segments a second: at most 4 numbers per request.
    client = await start_app(
        bulk_config(tmp_path, database_url, redis_url, fake, segments_per_second=8)
    )
    for i in range(1, 11):
        await complaint(number(i), language="hi")
    fake.outcomes[number(5)] = 500  # AT's InternalServerError for one number, once
    campaigns, campaign = await theog_draft(client)
    await campaigns.start(campaign, actor="t")

    async def clear_failure_after_first_try() -> bool:
        if any(number(5) in r.form.get("to", "") for r in fake.requests):
            fake.outcomes.pop(number(5), None)
        return await Campaign.filter(status=CampaignStatus.SENDING).count() == 0

    await run_bulk(client, until=clear_failure_after_first_try)
    sizes = [len(r.form["to"].split(",")) for r in fake.requests]
    assert sizes[:3] == [4, 4, 2]
    assert fake.requests[3].form["to"] == number(5)  # only the number that failed again
    assert Counter(m.number for m in fake.sent) == Counter({number(i): 1 for i in range(1, 11)})


@pytest.mark.parametrize("fault", list(Fault))
async def test_a_request_whose_answer_is_lost_is_not_sent_again(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
    fault: Fault,
) -> None:
    """AT took a request of four numbers and its answer was lost: those four wait, as
    single messages do, for their delivery reports, and only the one with none is sent
    once more after the wait. Nothing else is sent twice."""
    client = await start_app(
        bulk_config(tmp_path, database_url, redis_url, fake, segments_per_second=8, at_timeout=0.2)
    )
    fake.slow_seconds = 2.0
    for i in range(1, 11):
        await complaint(number(i), language="hi")  # 2 segments: 4 numbers a request
    fake.faults[number(5)] = fault  # the second request: numbers 5 to 8
    campaigns, campaign = await theog_draft(client)
    await campaigns.start(campaign, actor="t")

    async def settled() -> bool:
        counts = Counter(
            await OutboundMessage.filter(campaign_id=campaign.id).values_list("status", flat=True)
        )
        return counts == Counter({"sent": 6, "unknown": 4})

    await run_bulk(client, until=settled, limit=15)
    await asyncio.sleep(0.3)  # time for a resend, were there going to be one
    received = Counter(n for r in fake.requests for n in r.form["to"].split(","))
    assert received == Counter({number(i): 1 for i in range(1, 11)})
    lost = [number(i) for i in range(5, 9)]
    assert fake.requests[1].form["to"] == ",".join(lost)
    assert {m.number for m in fake.sent} >= set(lost), "AT took them"
    got = await progress(campaign)
    assert (got.status, got.queued, got.sent, got.unknown) == ("sending", 0, 6, 4)

    # Reports for three of the four: matched by number (their IDs were in the lost answer).
    url = str(client.make_url(signed(client, DELIVERY_PATH)))
    for n in lost[:3]:
        await fake.send_delivery_report(url, fake.message_id_for(n), "Success", phone=n)
    assert (await progress(campaign)).delivered == 3
    # No report for the fourth within the wait: sent once more, alone.
    del fake.faults[number(5)]
    await OutboundMessage.filter(status=MessageStatus.UNKNOWN).update(
        sent_at=datetime.now(UTC) - timedelta(minutes=31)
    )
    await run_bulk(client)
    assert fake.requests[-1].form["to"] == lost[3]
    received = Counter(n for r in fake.requests for n in r.form["to"].split(","))
    assert received == Counter({number(i): 1 for i in range(1, 11)}) + Counter({lost[3]: 1})
    got = await progress(campaign)
    assert (got.status, got.sent, got.delivered, got.unknown) == ("done", 7, 3, 0)


async def test_a_campaign_whose_lost_answers_are_reported_is_done_soon_after(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> None:
    """A campaign waiting only for lost answers looks again within 15 s, not only when
    their one more try is due (half an hour): reports that settle them make it done."""
    client = await start_app(bulk_config(tmp_path, database_url, redis_url, fake, at_timeout=0.2))
    for i in range(1, 4):
        await complaint(number(i), language="en_IN")
    fake.faults[number(1)] = Fault.RESET  # one request for the three: every answer lost
    campaigns, campaign = await theog_draft(client)
    await campaigns.start(campaign, actor="t")

    redis = client.app[REDIS]

    async def next_run() -> list[tuple[bytes, float]]:
        jobs = await redis.zrange(BULK_QUEUE, 0, -1, withscores=True)
        return [(j, d) for j, d in jobs if j.startswith(f"campaign:{campaign.id}:at:".encode())]

    async def waiting() -> bool:
        return (await progress(campaign)).unknown == 3 and bool(await next_run())

    await run_bulk(client, until=waiting)
    [(job, due)] = await next_run()
    assert due / 1000 - time.time() <= 15, (
        f"{job!r} looks again only in {due / 1000 - time.time():.0f} s"
    )

    url = str(client.make_url(signed(client, DELIVERY_PATH)))
    for n in (number(i) for i in range(1, 4)):
        status, _ = await fake.send_delivery_report(url, fake.message_id_for(n), "Success", phone=n)
        assert status == 200
    await redis.zadd(BULK_QUEUE, {job: time.time() * 1000})  # its 15 s are over
    await run_bulk(client)
    got = await progress(campaign)
    assert (got.status, got.delivered, got.unknown) == ("done", 3, 0)
    assert len(fake.requests) == 1, "nothing sent again"


async def test_pause_resume_and_cancel(
    bulk_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    for i in range(1, 13):
        await complaint(number(i), language="en_IN")
    admin, _ = await district_admin(bulk_client)
    campaigns = bulk_client.app[CAMPAIGNS]
    campaign = await campaigns.create(
        admin,
        scope_of(admin, campaigns.config),
        template="area_update",
        variables=VARIABLES,
        audience=ComplaintFilter(block="theog"),
        actor="t",
    )
    await campaigns.start(campaign, actor="t")
    await campaigns.pause(campaign, actor="t")
    await run_bulk(bulk_client)  # nothing to do while paused
    assert fake.sent == []
    await campaigns.resume(campaign, actor="t")
    await run_bulk(bulk_client)
    assert len(fake.sent) == 12

    other = await campaigns.create(
        admin,
        scope_of(admin, campaigns.config),
        template="area_update",
        variables={**VARIABLES, "update": "cut till 5 pm"},
        audience=ComplaintFilter(block="theog"),
        actor="t",
    )
    await campaigns.start(other, actor="t")
    await campaigns.cancel(other, actor="t")
    await run_bulk(bulk_client)
    assert len(fake.sent) == 12
    got = await progress(other)
    assert got.status == "cancelled" and got.sent == 0
    with pytest.raises(Exception, match="cancelled"):
        await campaigns.resume(other, actor="t")


async def test_a_worker_killed_mid_campaign_resumes_without_skipping_or_repeating(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> None:
    client = await start_app(
        bulk_config(tmp_path, database_url, redis_url, fake, batch_size=5, segments_per_second=5)
    )
    for i in range(1, 31):
        await complaint(number(i), language="en_IN")
    campaigns, campaign = await theog_draft(client)
    await campaigns.start(campaign, actor="t")
    fake.delay = 0.05

    async def some_sent() -> bool:
        return len(fake.requests) >= 2

    await run_bulk(client, until=some_sent, kill=True)  # the worker dies mid-campaign
    await campaign.refresh_from_db()
    assert campaign.status is CampaignStatus.SENDING
    assert 0 < len(fake.sent) < 30
    assert campaign.cursor not in (None, "done")
    # A new worker picks the campaign up by itself (its start-up sweep) and finishes it.
    await client.app[REDIS].delete(BULK_QUEUE)
    await run_bulk(client)
    assert Counter(m.number for m in fake.sent) == Counter({number(i): 1 for i in range(1, 31)})
    assert await OutboundMessage.filter(campaign_id=campaign.id).count() == 30


async def test_a_live_runner_keeps_its_short_lock_for_as_long_as_it_works(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> None:
    """The lock expires after ``bulk.lock_seconds`` (3 here) unless renewed; a runner whose
    one batch takes longer than that (20 recipients at 5 a second) keeps it all along, so a
    second runner asking again and again is told ``busy`` every time, and no one gets the
    notice twice."""
    config = bulk_config(
        tmp_path, database_url, redis_url, fake, batch_size=20, segments_per_second=5,
        lock_seconds=3,
    )  # fmt: skip
    client = await start_app(config)
    for i in range(1, 41):
        await complaint(number(i), language="en_IN")
    campaigns, campaign = await theog_draft(client)
    await campaigns.start(campaign, actor="t")
    runner = worker_context(client.app)["campaign_runner"]
    started = time.monotonic()
    first = asyncio.create_task(runner.run(campaign.id))
    second: list[str] = []
    while not first.done():
        await asyncio.sleep(0.25)
        second.append(await runner.run(campaign.id))
    assert first.result() == "done"
    assert time.monotonic() - started > 2 * config.bulk.lock_seconds
    # The last try may come after the first runner finished: the campaign is done then.
    assert set(second[:-1]) == {"busy"} and second[-1] in ("busy", "done"), second
    assert Counter(m.number for m in fake.sent) == Counter({number(i): 1 for i in range(1, 41)})
    assert not await client.app[REDIS].exists(runner.lock(campaign.id).key)  # released


@pytest.mark.parametrize("lease", [None, 20], ids=["default lease", "lease 20 s"])
async def test_a_batch_written_by_a_runner_that_died_before_sending_it_is_sent_once(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
    lease: int | None,
) -> None:
    """A runner writes its batch already held ("sending") and sends it next; one killed in
    between (no chance to hand it back) leaves it held until it is stale (past
    ``worker.send_lease_seconds``), then it goes."""
    worker = {"send_lease_seconds": lease} if lease is not None else {}
    config = bulk_config(tmp_path, database_url, redis_url, fake, batch_size=5, worker=worker)
    client = await start_app(config)
    stale = timedelta(seconds=config.worker.send_lease_seconds + 1)
    for i in range(1, 13):
        await complaint(number(i), language="en_IN")
    campaigns, campaign = await theog_draft(client)
    await campaigns.start(campaign, actor="t")
    runner = worker_context(client.app)["campaign_runner"]
    held = await runner._write_batch(campaign)  # then the process dies
    assert len(held) == 5
    assert await OutboundMessage.filter(status=MessageStatus.SENDING).count() == 5

    async def others_sent() -> bool:
        await asyncio.sleep(0.3)  # time to send more, were it going to
        return len(fake.sent) >= 7

    await run_bulk(client, until=others_sent)
    # Held, not stale: the new worker sends everyone else and leaves those five alone.
    assert len(fake.sent) == 7
    assert await OutboundMessage.filter(status=MessageStatus.SENDING).count() == 5
    assert (await campaign_status(campaign)) is CampaignStatus.SENDING
    await OutboundMessage.filter(status=MessageStatus.SENDING).update(
        updated_at=datetime.now(UTC) - stale
    )
    await client.app[REDIS].delete(BULK_QUEUE)
    await run_bulk(client)
    assert Counter(m.number for m in fake.sent) == Counter({number(i): 1 for i in range(1, 13)})
    assert (await campaign_status(campaign)) is CampaignStatus.DONE


async def campaign_status(campaign: Campaign) -> CampaignStatus:
    await campaign.refresh_from_db()
    return campaign.status


def test_quiet_hours_hold_from_nine_at_night_to_nine_in_the_morning(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    config = make_config(tmp_path, database_url, redis_url)
    ist = timedelta(hours=5, minutes=30)
    at = lambda h, m: datetime(2026, 11, 24, h, m, tzinfo=UTC) - ist  # noqa: E731
    assert in_quiet_hours(config, at(12, 0)) is None
    assert in_quiet_hours(config, at(20, 59)) is None
    assert in_quiet_hours(config, at(21, 0)) == at(9, 0) + timedelta(days=1)
    assert in_quiet_hours(config, at(3, 0)) == at(9, 0)
    assert in_quiet_hours(config, at(9, 0)) is None


async def test_a_campaign_started_in_quiet_hours_waits_for_the_morning(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> None:
    late = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 22:30 in Shimla
    config = bulk_config(
        tmp_path, database_url, redis_url, fake, quiet_hours={"start": "21:00", "end": "09:00"}
    )
    client = await start_app(config, clock=lambda: late)
    await complaint(number(1))
    campaigns, campaign = await theog_draft(client)
    await campaigns.start(campaign, actor="t")
    morning = datetime(2026, 11, 25, 3, 30, tzinfo=UTC)  # 09:00 IST
    redis = client.app[REDIS]

    async def deferred() -> bool:
        return bool(await redis.zcount(BULK_QUEUE, morning.timestamp() * 1000, "+inf"))

    await run_bulk(client, until=deferred)
    assert fake.requests == []
    scores = await redis.zrange(BULK_QUEUE, 0, -1, withscores=True)
    runs = [s for job, s in scores if job.decode().startswith("campaign:")]
    assert runs == [morning.timestamp() * 1000]
    await campaign.refresh_from_db()
    assert campaign.status is CampaignStatus.SENDING
    # Staff see why nothing moves: the API and the command line say until when it waits.
    held = await progress(campaign, config=config, now=late)
    assert held.waiting_until == morning
    assert datetime.fromisoformat(held.as_json()["waiting_until"]) == morning
    assert "waiting for quiet hours to end at 09:00" in progress_bar(held)
    assert (await progress(campaign, config=config, now=morning)).waiting_until is None


async def notify_cli(config: Config, *args: str, redis_url: str | None = None) -> tuple[int, str]:
    """Run ``python -m gateway notify ...`` in a child process on the test's DB and Redis
    (or ``redis_url``)."""
    env = {
        **os.environ,
        "DATABASE_URL": config.database.url,
        "REDIS_URL": redis_url or config.redis.url,
    }
    env.pop("SMS_PROVIDER", None)  # the CLI sends nothing itself: the shipped simulator will do
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "--config",
        str(SHIPPED_CONFIG),
        "notify",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_the_notify_command_previews_sends_and_follows(
    bulk_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    config = bulk_client.app[CONFIG]
    for i in range(1, 5):
        await complaint(number(i), language="en_IN")
    await staff(
        bulk_client,
        "je_theog",
        StaffRole.OFFICER,
        department="jal_shakti",
        level="block",
        area="theog",
    )
    await staff(bulk_client, "agent1", StaffRole.AGENT, district="shimla")
    audience = [
        "--template",
        "area_update",
        "--var",
        "service=Water supply",
        "--var",
        "place=Theog",
        "--var",
        "update=restored",
        "--open-only",
    ]

    code, out = await notify_cli(config, "preview", "--as", "je_theog", *audience)
    assert code == 0, out
    assert "recipients:        4" in out and "en_IN" in out

    code, out = await notify_cli(config, "send", "--as", "agent1", "--yes", *audience)
    assert code == 1 and "may not" in out

    code, out = await notify_cli(config, "send", "--as", "je_theog", "--yes", *audience)
    assert code == 0, out
    campaign = await Campaign.get(status=CampaignStatus.SENDING)
    queued = await bulk_client.app[REDIS].zrange(BULK_QUEUE, 0, -1)
    assert [job.decode().split(":")[:2] for job in queued] == [["campaign", str(campaign.id)]]
    await run_bulk(bulk_client)
    code, out = await notify_cli(config, "status", "--as", "je_theog", str(campaign.id))
    assert code == 0, out
    assert "4/4" in out and "sent 4" in out and "(done)" in out
    assert len(fake.sent) == 4
    code, out = await notify_cli(config, "status", "--as", "je_theog", str(campaign.id), "--follow")
    assert code == 0, out
    assert f"campaign {campaign.id}: 100%|" in out and "SMS/s, sent 4" in out
    assert out.endswith("(done)]\n"), out

    code, out = await notify_cli(config, "pause", "--as", "je_theog", str(campaign.id))
    assert code == 1 and "cannot pause" in out
    code, out = await notify_cli(config, "status", "--as", "je_theog", "999")
    assert code == 1 and "no campaign 999" in out


async def test_notify_beside_a_server_on_its_embedded_redis_leaves_the_run_to_it(
    bulk_client: TestClient[Any, Any],
) -> None:
    """The embedded Redis is the server's own: ``notify send`` marks the campaign sending
    and queues nothing (the server's bulk worker finds it within a minute)."""
    config = bulk_client.app[CONFIG]
    await complaint(number(1), language="en_IN")
    await staff(bulk_client, "je_theog", StaffRole.OFFICER, level="state")
    code, out = await notify_cli(
        config,
        "send",
        "--as",
        "je_theog",
        "--yes",
        "--template",
        "area_update",
        *("--var", "service=Water supply", "--var", "place=Theog", "--var", "update=restored"),
        redis_url="embedded",
    )
    assert code == 0, out
    campaign = await Campaign.get(status=CampaignStatus.SENDING)
    assert f"campaign {campaign.id}: the gateway's worker will pick it up within a minute" in out
    assert await bulk_client.app[REDIS].zcard(BULK_QUEUE) == 0


async def test_the_notify_command_lists_the_csv_rows_it_refused(
    bulk_client: TestClient[Any, Any], tmp_path: Path
) -> None:
    """``notify preview`` and ``notify send`` with an Excel file (BOM, ';', CRLF) name each
    refused row by line and reason; the preview breaks down only the officer's citizens."""
    config = bulk_client.app[CONFIG]
    await complaint(number(1), citizen_language="en_IN")
    await complaint(number(2), block="dharamshala", citizen_language="pa", opted_out=True)
    await staff(
        bulk_client,
        "je_theog",
        StaffRole.OFFICER,
        department="jal_shakti",
        level="block",
        area="theog",
    )
    rows = [
        "Mobile;Name",
        f"{number(1)};Ram",
        "0177-2623456;Tehsil office",
        "98123456789;Typo",
        f"{number(2)};Kangra",
        "1800112233;Helpline",
        f"{number(3)};Sita",
    ]
    path = tmp_path / "numbers.csv"
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8-sig"))
    audience = ["--template", "area_update", "--csv", str(path)]
    audience += [f"--var={k}={v}" for k, v in VARIABLES.items()]
    refused = [
        "line 3: a landline: cannot receive SMS",
        "line 4: not a valid number for IN",
        "line 6: toll-free: cannot receive SMS",
    ]

    code, out = await notify_cli(config, "preview", "--as", "je_theog", *audience)
    assert code == 0, out
    assert "CSV: 3 numbers, 0 duplicate(s), 3 row(s) refused" in out
    assert all(line in out for line in refused), out
    assert "outside your scope      2" in out and "en_IN" in out and " pa " not in out
    assert "skipped opted out: 0" in out

    code, out = await notify_cli(config, "send", "--as", "je_theog", "--yes", *audience)
    assert code == 0, out
    assert all(line in out for line in refused), out
    campaign = await Campaign.get(status=CampaignStatus.SENDING)
    assert campaign.audience["csv"]["numbers"] == 3 and campaign.audience["csv"]["bad_lines"] == 3

    code, out = await notify_cli(
        config, "preview", "--as", "je_theog", "--csv", "nowhere.csv", "--template", "area_update"
    )
    assert code == 2 and "--csv: nowhere.csv: no such file" in out


async def test_an_acknowledgement_is_not_held_behind_a_running_campaign(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> None:
    # 20 recipients at 2 segments a second: the campaign takes about ten seconds.
    client = await start_app(
        bulk_config(tmp_path, database_url, redis_url, fake, segments_per_second=2)
    )
    for i in range(1, 21):
        await complaint(number(i), language="en_IN")
    campaigns, campaign = await theog_draft(client)
    await campaigns.start(campaign, actor="t")
    stop = asyncio.Event()

    async def stopped() -> bool:
        return stop.is_set()

    bulk = asyncio.create_task(run_bulk(client, until=stopped))
    for _ in range(400):  # until the campaign is under way
        if len(fake.sent) >= 2:
            break
        await asyncio.sleep(0.05)
    registration = await client.app[COMPLAINTS].register(
        NewComplaint(
            phone="+919812345678",
            language="en_IN",
            department="jal_shakti",
            district="shimla",
            block="theog",
            issue_type="no_water_supply",
            channel=Channel.USSD,
            source_key="test:priority",
        )
    )
    await run_worker(client.app)  # the message worker, beside the busy bulk worker
    ack = await OutboundMessage.get(
        complaint_id=registration.complaint_id, template="complaint_registered"
    )
    assert ack.status is MessageStatus.SENT
    assert (await Campaign.get(id=campaign.id)).status is CampaignStatus.SENDING
    assert len({m.number for m in fake.sent} & {number(i) for i in range(1, 21)}) < 20
    await campaigns.cancel(campaign, actor="t")
    stop.set()
    await bulk

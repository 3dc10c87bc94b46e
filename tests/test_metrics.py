"""``GET /metrics``: the counters a USSD registration moves (names and labels, as a
dashboard reads them), the queues read at scrape time, and who may read them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import REDIS
from gateway.config import Config
from gateway.jobs.dispatch import ArqDispatcher
from gateway.storage.models import Campaign
from tests.conftest import ROOT, AppFactory, Phone, make_config, run_worker, signed
from tests.fakes.africastalking import FakeAfricasTalking
from tests.test_campaigns import bulk_client, complaint, number, run_bulk, theog_draft

__all__ = ["bulk_client"]  # a fixture, used by name

ENGLISH = "2"
REGISTRATION = (ENGLISH, "1", "2", "9", "2", "1", "1")
"""English, new complaint, Jal Shakti, Shimla, Theog, no water supply, submit."""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: TestClient[Any, Any], **headers: str) -> Samples:
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/plain"
    samples: Samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in after, f"{name}{labels} not in /metrics"
    return after[key] - before.get(key, 0.0)


async def test_a_ussd_registration_moves_hops_sessions_registrations_and_sms(
    client: TestClient[Any, Any],
) -> None:
    before = await scrape(client)
    phone = Phone(client)
    await phone.dial()
    done = await phone.walk(*REGISTRATION)
    assert phone.ended and "Ticket:" in done
    await run_worker(client.app)
    after = await scrape(client)

    hops = len(REGISTRATION) + 1
    assert moved(before, after, "sampark_ussd_hops_total", provider="africastalking",
                 outcome="continue") == hops - 1  # fmt: skip
    assert moved(before, after, "sampark_ussd_hops_total", provider="africastalking",
                 outcome="end") == 1  # fmt: skip
    assert moved(before, after, "sampark_ussd_hop_seconds_count", provider="africastalking") == hops
    assert moved(before, after, "sampark_ussd_sessions_started_total",
                 provider="africastalking") == 1  # fmt: skip
    assert moved(before, after, "sampark_ussd_sessions_completed_total",
                 provider="africastalking", outcome="registered") == 1  # fmt: skip
    assert moved(before, after, "sampark_registrations_total", channel="ussd",
                 language="en_IN") == 1  # fmt: skip
    # The simulator delivers at once: the acknowledgement, and the officer's notice.
    assert moved(before, after, "sampark_sms_total", template="complaint_registered",
                 provider="simulator", state="delivered") == 1  # fmt: skip
    assert moved(before, after, "sampark_sms_total", template="officer_new_complaint",
                 provider="simulator", state="delivered") == 1  # fmt: skip
    assert moved(before, after, "sampark_sms_send_seconds_count", provider="simulator") == 2
    assert moved(before, after, "sampark_http_requests_total", kind="callback",
                 status="2xx") == hops  # fmt: skip


async def test_queue_depth_and_oldest_age_are_read_at_scrape_time(
    client: TestClient[Any, Any],
) -> None:
    await ArqDispatcher(client.app[REDIS]).dispatch([101, 102, 103])
    samples = await scrape(client)
    assert samples[("sampark_queue_depth", frozenset({("queue", "messages")}))] == 3
    assert samples[("sampark_queue_depth", frozenset({("queue", "campaigns")}))] == 0
    age = samples[("sampark_queue_oldest_job_age_seconds", frozenset({("queue", "messages")}))]
    assert 0 <= age < 5


async def test_a_refused_callback_is_counted(client: TestClient[Any, Any]) -> None:
    before = await scrape(client)
    resp = await client.post(signed(client, "/ussd/africastalking"), data={"text": ""})
    assert resp.status == 400
    resp = await client.post("/ussd/africastalking/not-the-secret-0123", data={"text": ""})
    assert resp.status == 404
    after = await scrape(client)
    assert moved(before, after, "sampark_callbacks_refused_total", provider="africastalking",
                 status="400") == 1  # fmt: skip
    assert moved(before, after, "sampark_callbacks_refused_total", provider="africastalking",
                 status="404") == 1  # fmt: skip


async def test_metrics_are_refused_outside_the_allowed_networks(
    start_app: AppFactory, config: Config, client: TestClient[Any, Any], tmp_path: Any,
    database_url: str, redis_url: str,
) -> None:  # fmt: skip
    # A proxy in front forwarding a request from elsewhere: refused.
    resp = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert resp.status == 403
    assert "sampark_" not in await resp.text()
    resp = await client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert resp.status == 200
    # Loopback only when metrics.allow names no network that holds the peer... and a
    # network that does holds the forwarded address too.
    other = make_config(tmp_path, database_url, redis_url,
                        metrics={"allow": ["10.0.0.0/8"]})  # fmt: skip
    await client.close()
    client2 = await start_app(other)
    resp = await client2.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"})
    assert resp.status == 200
    resp = await client2.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3, 192.0.2.1"})
    assert resp.status == 403


async def test_a_campaign_counts_its_recipients_by_outcome_and_what_it_has_left(
    bulk_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    """A real campaign of three citizens, one opted out, whose first request the provider
    refuses for a while (503): written, opted out, retrying then sent; and while it sends,
    the recipients it has left."""
    for i in (1, 2, 3):
        await complaint(number(i), opted_out=i == 3)
    before = await scrape(bulk_client)
    campaigns, campaign = await theog_draft(bulk_client)
    await campaigns.start(campaign, actor="t")
    left = ("sampark_campaign_recipients_left", frozenset({("campaign", str(campaign.id))}))
    assert (await scrape(bulk_client))[left] == 2  # started, nothing written yet
    fake.fail_next(status=503)
    await run_bulk(bulk_client)
    await campaign.refresh_from_db()
    assert campaign.status.value == "done"
    after = await scrape(bulk_client)

    def recipients(outcome: str) -> float:
        return moved(before, after, "sampark_campaign_recipients_total",
                     provider="africastalking", outcome=outcome)  # fmt: skip

    assert recipients("written") == 2
    assert recipients("opted_out") == 1
    assert recipients("retrying") == 2  # the one request refused: both to be tried again
    assert recipients("sent") == 2
    assert left not in after  # done: no longer a sending campaign
    assert await Campaign.filter(status="sending").count() == 0


COUNT_ONE = """
from gateway.ops import metrics
metrics.registration("sms", "hi")
"""
READ_ALL = """
import sys
from gateway.ops import metrics
sys.stdout.write(metrics.exposition().decode())
"""


def test_several_processes_are_counted_together_with_a_multiprocess_dir(tmp_path: Path) -> None:
    """Two processes count one registration each; a third's /metrics text says 2."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def python(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=60, check=True,
        )  # fmt: skip
        return done.stdout

    python(COUNT_ONE)
    python(COUNT_ONE)
    text = python(READ_ALL)
    values = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    key = ("sampark_registrations_total", frozenset({("channel", "sms"), ("language", "hi")}))
    assert values[key] == 2


async def test_the_sample_dashboard_reads_only_metrics_the_gateway_has(
    client: TestClient[Any, Any],
) -> None:
    """docs/grafana-dashboard.json: every metric its queries name is one /metrics shows."""
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    named = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bsampark_[a-z_]+", target["expr"])
    }
    resp = await client.get("/metrics")
    families = {f.name for f in text_string_to_metric_families(await resp.text())}
    shown = families | {f"{n}_total" for n in families} | {f"{n}_bucket" for n in families}
    assert named and sorted(named - shown) == []

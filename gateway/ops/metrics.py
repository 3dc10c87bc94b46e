"""The gateway's Prometheus metrics, all defined here, and the thin calls that move them.

The code that decides an event calls one function here (``metrics.registration(channel,
language)``); nothing else in the gateway names a metric. ``GET /metrics``
(:mod:`gateway.web.metrics`) renders them, with the queues' depth read from Redis at that
moment (:func:`queue_families`).

Several processes (web processes, workers): set ``PROMETHEUS_MULTIPROC_DIR`` to one empty
directory for all of them, the same for every process, before they start (and empty it at
a restart of them all); each process writes its counters there, and any of them answers
``/metrics`` for all (prometheus-client's multiprocess mode). Without it, each process
answers for itself.

Labels take few values (provider names, templates, languages, states), never a phone
number, a ticket or a session.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

__all__ = [
    "CONTENT_TYPE",
    "callback_refused",
    "campaign_families",
    "campaign_recipients",
    "database_error",
    "escalation",
    "exposition",
    "http_request",
    "provider_error",
    "redis_error",
    "registration",
    "send_latency",
    "session_completed",
    "session_started",
    "sms",
    "ussd_hop",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

USSD_HOPS = Counter(
    "sampark_ussd_hops",
    "USSD hops answered, by provider and outcome (continue, end, apology: the gateway failed)",
    ["provider", "outcome"],
)
USSD_HOP_SECONDS = Histogram(
    "sampark_ussd_hop_seconds",
    "Time to answer a USSD hop, by provider",
    ["provider"],
    buckets=_LATENCY_BUCKETS,
)
USSD_SESSIONS_STARTED = Counter(
    "sampark_ussd_sessions_started", "USSD sessions started, by provider", ["provider"]
)
USSD_SESSIONS_COMPLETED = Counter(
    "sampark_ussd_sessions_completed",
    "USSD sessions that reached an end screen, by provider and outcome",
    ["provider", "outcome"],
)
REGISTRATIONS = Counter(
    "sampark_registrations",
    "Complaints registered, by channel and language",
    ["channel", "language"],
)
SMS = Counter(
    "sampark_sms",
    "SMS sends that ended (sent, delivered, failed, unknown: the answer was lost), by "
    "template, provider and state",
    ["template", "provider", "state"],
)
SMS_REPORTS = Counter(
    "sampark_sms_delivery_reports",
    "Delivery reports received, by provider and the state they report",
    ["provider", "state"],
)
SEND_SECONDS = Histogram(
    "sampark_sms_send_seconds",
    "Time a provider took to answer a send request, by provider",
    ["provider"],
    buckets=_SEND_BUCKETS,
)
PROVIDER_ERRORS = Counter(
    "sampark_provider_errors",
    "Sends a provider did not take, by provider and kind (transient, permanent: the "
    "request; recipient_transient, recipient_permanent: one recipient; answer_lost)",
    ["provider", "kind"],
)
ESCALATIONS = Counter(
    "sampark_escalations",
    "Complaints escalated past their deadline, by the level they moved to",
    ["level"],
)
CALLBACKS_REFUSED = Counter(
    "sampark_callbacks_refused",
    "Provider callback requests answered with a 4xx, by provider and status",
    ["provider", "status"],
)
DATABASE_ERRORS = Counter(
    "sampark_database_errors",
    "Database failures seen (unreachable, or refused a query), by where",
    ["where"],
)
REDIS_ERRORS = Counter("sampark_redis_errors", "Redis failures seen, by where", ["where"])
CAMPAIGN_RECIPIENTS = Counter(
    "sampark_campaign_recipients",
    "Campaign recipients, by provider and outcome: written (their message queued), "
    "opted_out (skipped), then each send's outcome (sent, delivered, failed, unknown: the "
    "answer was lost, retrying: to be tried again)",
    ["provider", "outcome"],
)
HTTP_REQUESTS = Counter(
    "sampark_http_requests",
    "HTTP requests answered, by route kind (api, callback, health, metrics, other) and "
    "status class",
    ["kind", "status"],
)


def ussd_hop(provider: str, outcome: str, seconds: float) -> None:
    """A USSD hop answered in ``seconds``."""
    USSD_HOPS.labels(provider, outcome).inc()
    USSD_HOP_SECONDS.labels(provider).observe(seconds)


def session_started(provider: str) -> None:
    USSD_SESSIONS_STARTED.labels(provider).inc()


def session_completed(provider: str, outcome: str) -> None:
    USSD_SESSIONS_COMPLETED.labels(provider, outcome).inc()


def registration(channel: str, language: str) -> None:
    """A complaint registered (not a repeated request returning the first one)."""
    REGISTRATIONS.labels(channel, language).inc()


def sms(template: str, provider: str, state: str) -> None:
    """A send of an SMS ended in ``state``."""
    SMS.labels(template, provider, state).inc()


def delivery_report(provider: str, state: str) -> None:
    SMS_REPORTS.labels(provider, state).inc()


def send_latency(provider: str, seconds: float) -> None:
    SEND_SECONDS.labels(provider).observe(seconds)


def provider_error(provider: str, kind: str, count: int = 1) -> None:
    PROVIDER_ERRORS.labels(provider, kind).inc(count)


def campaign_recipients(provider: str, outcome: str, count: int = 1) -> None:
    """``count`` recipients of a campaign reached ``outcome`` (written, opted_out, or a
    send's outcome)."""
    if count:
        CAMPAIGN_RECIPIENTS.labels(provider, outcome).inc(count)


def escalation(level: str) -> None:
    ESCALATIONS.labels(level).inc()


def callback_refused(provider: str, status: int) -> None:
    CALLBACKS_REFUSED.labels(provider, str(status)).inc()


def database_error(where: str) -> None:
    DATABASE_ERRORS.labels(where).inc()


def redis_error(where: str) -> None:
    REDIS_ERRORS.labels(where).inc()


def http_request(kind: str, status: int) -> None:
    HTTP_REQUESTS.labels(kind, f"{status // 100}xx").inc()


class _Families(Collector):
    """Metric families read just now (a collector for one scrape)."""

    def __init__(self, families: Iterable[GaugeMetricFamily]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return self._families


def queue_families(queues: Mapping[str, tuple[int, float]]) -> list[GaugeMetricFamily]:
    """Gauges of each arq queue's depth and its oldest due job's age (seconds; 0 when none
    is due), from ``queues``: queue name -> (depth, age)."""
    depth = GaugeMetricFamily(
        "sampark_queue_depth", "Jobs in an arq queue (due or deferred)", labels=["queue"]
    )
    age = GaugeMetricFamily(
        "sampark_queue_oldest_job_age_seconds",
        "How long the oldest due job of an arq queue has waited",
        labels=["queue"],
    )
    for queue, (n, seconds) in queues.items():
        depth.add_metric([queue], n)
        age.add_metric([queue], seconds)
    return [depth, age]


def campaign_families(left: Mapping[int, int]) -> list[GaugeMetricFamily]:
    """A gauge of the recipients each sending campaign has left to send (not yet written,
    or written and not yet handed to the provider), from ``left``: campaign ID -> count."""
    gauge = GaugeMetricFamily(
        "sampark_campaign_recipients_left",
        "Recipients a sending campaign has not yet handed to the provider",
        labels=["campaign"],
    )
    for campaign, n in left.items():
        gauge.add_metric([str(campaign)], n)
    return [gauge]


def exposition(extra: Iterable[GaugeMetricFamily] = ()) -> bytes:
    """Every metric in Prometheus' text format: every process's, in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    scraped = CollectorRegistry()
    scraped.register(_Families(extra))
    return text + generate_latest(scraped)

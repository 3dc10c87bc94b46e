"""Every benchmark, then one table against the targets: ``make bench``.

Embedded defaults (SQLite in a temporary directory, the embedded Redis); ``DATABASE_URL``
(PostgreSQL: each benchmark creates a scratch database on that server and drops it) and
``REDIS_URL`` point them elsewhere.
Each figure is measured next to its ceiling in the same run: on a shared, noisy machine
the ratios hold better than the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import campaign
import console_campaign
import console_pages
import escalation
import exotel
import outbound
import ussd_hops

from gateway.ops import event_loop


def machine() -> str:
    mem = ""
    if shutil.which("free"):
        out = subprocess.run(["free", "-m"], capture_output=True, text=True).stdout.split("\n")
        mem = f", {out[1].split()[1]} MB memory" if len(out) > 1 else ""
    return (
        f"{os.cpu_count()} CPUs{mem}, Python {sys.version.split()[0]}, event loop "
        f"{event_loop.chosen()}, Redis parser {redis_parser()}, load average "
        f"{os.getloadavg()[0]:.1f}"
    )


def redis_parser() -> str:
    """hiredis when redis-py reads Redis' answers through it, else Python."""
    from redis.utils import HIREDIS_AVAILABLE

    return "hiredis" if HIREDIS_AVAILABLE else "Python"


def _console_campaign(
    count: int, got: dict[str, float]
) -> list[tuple[str, str, str, str, str, str]]:
    """The campaign started from the browser: time to done, the polls' latency, memory."""
    live = got["live"] and got["gateway_mb"] < console_campaign.MEMORY_MB
    return [
        (
            f"Console campaign, {count:,}",
            f"{got['done_s']:.1f} s to done, gateway {got['gateway_mb']:.0f} MB",
            f"preview {got['preview_s']:.1f} s",
            "",
            "polls <500 ms, <300 MB",
            "yes" if live else "no",
        ),
        (
            "",
            f"progress p95 {got['json_p95']:.0f} max {got['json_max']:.0f} ms, "
            f"page p95 {got['page_p95']:.0f} max {got['page_max']:.0f} ms",
            f"{got['moves']:.0f} of {got['polls']:.0f} polls moved",
            "",
            "",
            "",
        ),
    ]


async def main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    levels = [int(x) for x in args.sessions.split(",")]
    hops = await ussd_hops.main(levels, args.seconds)
    reg_bare, reg = hops.registrations
    print()
    arq_s, direct_s, gateway_s = await outbound.main(args.messages)
    print()
    listing_s, job_s, moved, plan = await escalation.main(args.complaints, args.overdue)
    print()
    bulk = await campaign.main(args.recipients)
    print()
    pages = await console_pages.main(args.console_complaints, rounds=20)
    print()
    watched = await console_campaign.main(args.recipients)
    print()
    ex = await exotel.main(args.exotel_messages, args.exotel_recipients, args.exotel_paced)

    rows: list[tuple[str, str, str, str, str, str]] = []
    for n, bare, real in hops.levels:
        ratio = real.rps / bare.rps
        rows.append(
            (
                f"USSD hops, {n} sessions",
                f"{real.rps:.0f}/s p99 {real.pct(0.99):.0f} ms",
                f"{bare.rps:.0f}/s p99 {bare.pct(0.99):.0f} ms",
                f"{ratio:.2f}",
                ">=0.50" if n == 200 else "",
                ("yes" if ratio >= 0.5 else "no") if n == 200 else "",
            )
        )
    bare, real = hops.paced
    rows.append(
        (
            f"USSD hops, {ussd_hops.PACED_SESSIONS} paced sessions",
            f"p50 {real.pct(0.5):.0f} ms p99 {real.pct(0.99):.0f} ms",
            f"p99 {bare.pct(0.99):.0f} ms",
            "",
            "p99<100 ms",
            "yes" if real.pct(0.99) < 100 else "no",
        )
    )
    rows.append(
        (
            "Registrations, 50 sessions",
            f"{reg.walks_per_second:.1f}/s hop p99 {reg.pct(0.99):.0f} ms",
            f"{reg_bare.walks_per_second:.1f}/s",
            f"{reg.walks_per_second / reg_bare.walks_per_second:.2f}",
            "",
            "",
        )
    )
    n = args.messages
    rows.append(
        (
            "SMS, one per request",
            f"{n / gateway_s:.0f}/s",
            f"arq no-op {n / arq_s:.0f}/s",
            f"{arq_s / gateway_s:.2f}",
            ">=0.50",
            "yes" if arq_s / gateway_s >= 0.5 else "no",
        )
    )
    rows.append(("", "", f"direct {n / direct_s:.0f}/s", f"{direct_s / gateway_s:.2f}", "", ""))
    r = args.recipients
    per_s = r / bulk["send_s"]
    one_by_one = bulk["ceiling_s"] / bulk["send_s"]
    rows.append(
        (
            "SMS, bulk identical text",
            f"{per_s:.0f} recipients/s, {bulk['segments']:.0f} segments each",
            f"plain client, same requests one at a time {r / bulk['ceiling_s']:.0f}/s",
            f"{one_by_one:.2f}",
            ">=0.50",
            "yes" if one_by_one >= 0.5 else "no",
        )
    )
    rows.append(
        (
            "",
            f"(>= 5,000/s: {'yes' if per_s >= 5000 else 'no'})",
            f"the same, 50 at a time {r / bulk['ceiling_wide_s']:.0f}/s",
            f"{bulk['ceiling_wide_s'] / bulk['send_s']:.2f}",
            "",
            "",
        )
    )
    peak = max(bulk["gateway_mb"], bulk["fake_mb"], bulk["bench_mb"])
    rows.append(
        (
            f"Campaign, {r:,}",
            f"{bulk['total_s']:.1f} s, {bulk['requests']:,.0f} requests",
            "",
            "",
            "<60 s, <300 MB",
            "yes" if bulk["total_s"] < 60 and peak < 300 else "no",
        )
    )
    rows.append(
        (
            "",
            f"peak MB: gateway {bulk['gateway_mb']:.0f}, fake {bulk['fake_mb']:.0f}, "
            f"driver {bulk['bench_mb']:.0f}",
            "",
            "",
            "",
            "",
        )
    )
    rows.extend(_console_campaign(r, watched))
    indexed = "yes" if any("INDEX" in line.upper() for line in plan) else "NO: reads all"
    rows.append(
        (
            f"Escalation, {args.complaints:,}",
            f"{job_s:.2f} s ({moved:,} moved)",
            f"listing {listing_s * 1000:.0f} ms",
            f"index: {indexed}",
            "<2 s",
            "yes" if job_s < 2 else "no",
        )
    )
    worst = max(pages, key=lambda t: t.pct(0.95))
    rows.append(
        (
            f"Console pages, {args.console_complaints:,}",
            f"slowest p95 {worst.pct(0.95):.0f} ms ({worst.who}, {worst.page})",
            "",
            "",
            "<200 ms",
            "yes" if worst.pct(0.95) < console_pages.TARGET_MS else "no",
        )
    )

    rows += exotel_rows(ex, args)

    print(f"\nSampark benchmarks, {machine()}, {time.perf_counter() - started:.0f} s")
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    head = ("benchmark", "gateway", "ceiling", "ratio", "target", "met")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    for r in (head, tuple("-" * w for w in widths), *rows):
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def exotel_rows(
    ex: dict[str, exotel.Figures], args: argparse.Namespace
) -> list[tuple[str, str, str, str, str, str]]:
    """The Exotel parts' rows: each figure next to the plain client's, and the busiest
    minute at the default pacing against Exotel's 200."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    if (single := ex.get("outbound")) is not None:
        n = args.exotel_messages
        rows.append(
            (
                "Exotel SMS, one per request",
                f"{n / single.gateway_s:.0f}/s",
                f"plain client {n / single.ceiling_s:.0f}/s",
                f"{single.ratio:.2f}",
                "",
                "",
            )
        )
    if (bulk := ex.get("campaign")) is not None:
        r = args.exotel_recipients
        rows.append(
            (
                f"Exotel campaign, {r:,}",
                f"{r / bulk.gateway_s:.0f} recipients/s, {bulk.requests:,} requests",
                f"plain client {r / bulk.ceiling_s:.0f}/s",
                f"{bulk.ratio:.2f}",
                "",
                "",
            )
        )
    if (paced := ex.get("paced")) is not None:
        rows.append(
            (
                f"Exotel default pacing, {args.exotel_paced:,} SMS",
                f"busiest minute {paced.busiest_minute} requests",
                "",
                "",
                "<=200/min",
                "yes" if paced.busiest_minute <= 200 else "no",
            )
        )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per USSD run")
    parser.add_argument("--sessions", default="50,200,500")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--complaints", type=int, default=1_000_000)
    parser.add_argument("--overdue", type=int, default=10_000)
    parser.add_argument("--recipients", type=int, default=100_000, help="of the campaign")
    parser.add_argument("--console-complaints", type=int, default=100_000)
    parser.add_argument("--exotel-messages", type=int, default=2000)
    parser.add_argument("--exotel-recipients", type=int, default=100_000, help="of its campaign")
    parser.add_argument(
        "--exotel-paced",
        type=int,
        default=0,
        help="single SMS at Exotel's default pacing, counted a minute at the fake (450: 2.5 min)",
    )
    event_loop.install()  # the in-process parts (the outbound worker) on the gateway's loop
    asyncio.run(main(parser.parse_args()))

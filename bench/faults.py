"""Faults under real traffic, each part of the gateway its own OS process: ``make faults``.

For each scenario, on a scratch PostgreSQL database (``DATABASE_URL``, else
``TEST_POSTGRES_URL``, names the server) and a redis-server of its own: the fake Africa's
Talking, ``python server.py --no-worker`` and ``python -m gateway worker``, driven
through public interfaces (USSD registrations, inbound SMS, a campaign through the staff
API) while one fault is injected (``tests/fault_harness.py`` says how). Prints, for each,
the messages expected, delivered, lost and duplicated (with the README's rule that
allows each duplicate) and the time to drain, then one table. Exits 1 if a message was
lost or a duplicate is not one the README allows.

Run: ``python bench/faults.py [--citizens 30] [--campaign 500] [SCENARIO ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from run import machine
from scratch import scratch_workspace

from tests.fault_harness import SCENARIOS, Figures, Size, running_rig


async def run(name: str, size: Size) -> Figures:
    async with scratch_workspace(f"faults-{name}") as (tmp, database_url):
        async with running_rig(tmp, database_url, size) as rig:
            try:
                figures = await SCENARIOS[name](rig)
            except BaseException:
                print(f"scenario {name} failed; its processes' logs are in {tmp}", file=sys.stderr)
                raise
    print(figures.line(), flush=True)
    for note in figures.notes:
        print(f"  {note}")
    return figures


def table(results: list[Figures]) -> str:
    head = (
        "scenario",
        "messages",
        "delivered",
        "lost",
        "duplicated",
        "allowed by",
        "drain (single SMS)",
    )
    rows = [head]
    for f in results:
        rules = ", ".join(f"{r} ({n})" for r, n in sorted(f.by_rule.items())) or "-"
        rows.append(
            (
                f.scenario,
                str(f.expected),
                str(f.delivered),
                str(f.lost),
                str(f.duplicated),
                rules,
                f"{f.drain_seconds:.1f} s ({f.single_drain_seconds:.1f} s)",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    server = os.environ.get("DATABASE_URL") or os.environ.get("TEST_POSTGRES_URL") or ""
    if not server.startswith("postgres"):
        print(
            "make faults needs PostgreSQL (the web server and the worker are separate "
            "processes on one database): set DATABASE_URL=postgres://user@host/db",
            file=sys.stderr,
        )
        return 2
    os.environ["DATABASE_URL"] = server
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s) {unknown}: choose from {list(SCENARIOS)}", file=sys.stderr)
        return 2
    size = Size(
        citizens=args.citizens,
        campaign=args.campaign,
        segments_per_second=args.rate,
        deadline=args.deadline,
    )
    started = time.perf_counter()
    results = [await run(name, size) for name in args.scenarios or list(SCENARIOS)]
    print(f"\nSampark under faults, {machine()}, {time.perf_counter() - started:.0f} s")
    print(
        f"{size.citizens} USSD registrations (an acknowledgement and the officer's notice "
        f"each) and {size.citizens} status SMS, a campaign of {size.campaign}\n"
    )
    print(table(results))
    bad = [f for f in results if f.lost or f.by_rule.get("unexplained")]
    return 1 if bad else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenarios", nargs="*", help=f"of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--citizens", type=int, default=30, help="USSD registrations")
    parser.add_argument("--campaign", type=int, default=500, help="campaign recipients")
    parser.add_argument("--rate", type=float, default=200.0, help="campaign segments a second")
    parser.add_argument(
        "--deadline", type=float, default=300.0, help="seconds any one wait may take"
    )
    raise SystemExit(asyncio.run(main(parser.parse_args())))

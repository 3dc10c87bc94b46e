"""uvloop and hiredis, each on and off: the USSD hops (bench/ussd_hops.py, 200 sessions)
and the outbound SMS (bench/outbound.py), each next to its ceiling on the same loop.

Each of the four combinations runs in a process of its own (the outbound worker runs in
the benchmark's process): ``SAMPARK_EVENT_LOOP`` picks the loop of that process, of the
gateway and of the hop ceiling; hiredis is hidden, where it is off, by a module on
``PYTHONPATH`` that fails to import (redis-py then parses in Python). The rounds
alternate the combinations, so a machine growing busier weighs on all of them.
Run: ``python bench/fast_deps.py --rounds 2``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
COMBINATIONS = [("asyncio", False), ("uvloop", False), ("asyncio", True), ("uvloop", True)]
"""(event loop, hiredis) of each run."""


async def one(sessions: int, seconds: float, messages: int) -> dict[str, float]:
    """This process's figures (on the loop and parser it was started with)."""
    import outbound
    import ussd_hops
    from redis.utils import HIREDIS_AVAILABLE

    from gateway.ops import event_loop

    hops = await ussd_hops.main([sessions], seconds)
    _, bare, real = hops.levels[0]
    reg_bare, reg = hops.registrations
    arq_s, direct_s, gateway_s = await outbound.main(messages)
    return {
        "loop": 1.0 if event_loop.chosen() == "uvloop" else 0.0,
        "hiredis": 1.0 if HIREDIS_AVAILABLE else 0.0,
        "hops": real.rps,
        "hops_ceiling": bare.rps,
        "hops_p99": real.pct(0.99),
        "registrations": reg.walks_per_second,
        "registrations_ceiling": reg_bare.walks_per_second,
        "sms": messages / gateway_s,
        "sms_ceiling": messages / arq_s,
        "sms_direct": messages / direct_s,
    }


def run(loop: str, hiredis: bool, args: argparse.Namespace, hidden: Path) -> dict[str, float]:
    env = dict(os.environ, SAMPARK_EVENT_LOOP=loop)
    if not hiredis:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hidden), env.get("PYTHONPATH")]))
    cmd = [sys.executable, __file__, "--one", "--sessions", str(args.sessions)]
    cmd += ["--seconds", str(args.seconds), "--messages", str(args.messages)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{loop}, hiredis {hiredis}: {done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["hiredis"] == float(hiredis) and figures["loop"] == float(loop == "uvloop")
    return figures


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="sampark-nohiredis-") as tmp:
        hidden = Path(tmp)
        (hidden / "hiredis.py").write_text('raise ImportError("hidden by bench/fast_deps.py")\n')
        results: dict[tuple[str, bool], list[dict[str, float]]] = {}
        for r in range(args.rounds):
            for loop, hiredis in COMBINATIONS if r % 2 == 0 else COMBINATIONS[::-1]:
                got = run(loop, hiredis, args, hidden)
                results.setdefault((loop, hiredis), []).append(got)
                print(f"round {r + 1}, {loop}, hiredis {'on' if hiredis else 'off'}: {got}")
    print(f"\nload average {os.getloadavg()[0]:.1f}; means of {args.rounds} rounds")
    head = (
        f"{'loop':>8} {'hiredis':>7} | {'hops/s':>7} {'ceiling':>7} {'ratio':>5} "
        f"{'p99 ms':>6} | {'reg/s':>6} {'ratio':>5} | {'SMS/s':>6} {'arq no-op':>9} "
        f"{'ratio':>5} {'direct':>6}"
    )
    print(head)
    for (loop, hiredis), runs in results.items():

        def mean(key: str, runs: list[dict[str, float]] = runs) -> float:
            return sum(r[key] for r in runs) / len(runs)

        def ratio(a: str, b: str, runs: list[dict[str, float]] = runs) -> float:
            return sum(r[a] / r[b] for r in runs) / len(runs)

        print(
            f"{loop:>8} {'on' if hiredis else 'off':>7} | {mean('hops'):>7.0f} "
            f"{mean('hops_ceiling'):>7.0f} {ratio('hops', 'hops_ceiling'):>5.2f} "
            f"{mean('hops_p99'):>6.0f} | {mean('registrations'):>6.1f} "
            f"{ratio('registrations', 'registrations_ceiling'):>5.2f} | {mean('sms'):>6.0f} "
            f"{mean('sms_ceiling'):>9.0f} {ratio('sms', 'sms_ceiling'):>5.2f} "
            f"{mean('sms_direct'):>6.0f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        from gateway.ops import event_loop

        event_loop.install()
        got = asyncio.run(one(args.sessions, args.seconds, args.messages))
        print(json.dumps(got))
    else:
        main(args)

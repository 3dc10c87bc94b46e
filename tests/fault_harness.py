"""Faults injected into a running gateway whose parts are separate OS processes: the harness
behind ``tests/test_faults.py`` and ``make faults`` (``bench/faults.py``).

A :class:`Rig` starts, on a PostgreSQL database: a redis-server of its own, the fake
Africa's Talking with the phones behind it (:mod:`tests.fakes.africastalking_process`:
it counts what each number received and sends the delivery reports), ``python server.py
--no-worker`` (web) and ``python -m gateway worker``. Traffic goes in through public
interfaces only: USSD registrations over AT's callback, an inbound SMS from each citizen
asking for the status of their ticket, and a campaign through the staff API (its staff
member and token made with the staff CLI).

Each scenario injects one fault while the traffic runs, waits until everything has
settled (no message left to move in the outbox, no campaign sending, no delivery report
on its way) and measures, from the fake's counts and the outbox: the messages expected
(the outbox's rows), delivered, lost, duplicated (each duplicate with the rule of the
README's "How it works" that allows it) and the time to drain, from the end of the fault
to the last message settled. Nothing waits for a time: every wait is for a state, with
a generous deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml

from gateway.channels.signing import signed_path
from tests.fakes.africastalking_process import API_KEY, USERNAME

__all__ = [
    "SCENARIOS",
    "Figures",
    "Rig",
    "Size",
    "provider_faults",
    "redis_restart",
    "reports_lost",
    "running_rig",
    "scale_out",
    "worker_kill",
]

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = "2"
REGISTRATION = ("1", "2", "9", "2", "1", "1")
"""From the main menu: new complaint, Jal Shakti, Shimla, Theog, no water supply, submit."""
TICKET = re.compile(r"Ticket: (\d+)")
SETTINGS: dict[str, Any] = {
    "worker": {
        "embedded": False,
        "sweep_interval_seconds": 5,
        "send_lease_seconds": 10,
        "unknown_answer_retry_minutes": 1,
        "retry_base_seconds": 0.5,
        "retry_max_seconds": 5.0,
    },
    "sms": {"africastalking": {"timeout_seconds": 3.0}},
    "bulk": {"batch_size": 10, "quiet_hours": None},
    "callbacks": {"secrets": {"africastalking": "fault-harness-secret-0123456789"}},
}
"""The rig's gateway settings over the shipped ones: a sweep every 5 s and a 10 s lease
(the shipped 60 s and two minutes would only make the scenarios longer), a lost answer
sent once more after a minute, AT answering within 3 s."""


def _signed(path: str) -> str:
    """An Africa's Talking callback path with the rig's secret (``SETTINGS``)."""
    return signed_path(path, SETTINGS["callbacks"]["secrets"]["africastalking"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Timeout(AssertionError):
    """A state the rig waited for did not come within its deadline."""


async def until(check: Callable[[], Awaitable[bool]], what: str, *, within: float) -> None:
    """Wait until ``check()`` holds; :class:`Timeout` naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise Timeout(f"not within {within:g} s: {what}")
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Size:
    """How much traffic a scenario drives."""

    citizens: int
    """Registrations by USSD (each: an acknowledgement, the officer's notice), each
    followed by the citizen's STATUS SMS (a reply)."""
    campaign: int
    """Recipients of the campaign (0: no campaign)."""
    segments_per_second: float = 100.0
    """The campaign's rate (its Hindi text is two segments a recipient)."""
    deadline: float = 180.0
    """Seconds any one wait may take before the scenario fails."""


@dataclass
class Figures:
    """What one scenario measured."""

    scenario: str
    expected: int
    """Messages the gateway took on to send: its outbox rows."""
    delivered: int
    """Of those, how many reached their phone (at least once)."""
    lost: int
    duplicated: int
    """Copies beyond the first that reached a phone."""
    drain_seconds: float
    """From the end of the fault to the last message settled."""
    single_drain_seconds: float
    """From the end of the fault to the last message of no campaign settled."""
    requests: int
    answers_lost: int
    """Messages whose provider answer the fault lost (the fake's count)."""
    settled_by_report: int
    """Messages whose answer was lost that a delivery report settled (not sent again)."""
    sent_again_unanswered: int
    """Messages whose answer was lost, sent once more after the wait (rule 1)."""
    sending_at_fault: int = 0
    """Messages the worker held ("sending") when it was killed (rule 3's bound)."""
    by_rule: Counter[str] = field(default_factory=Counter)
    """Duplicates by the rule that allows them (README, "How it works": at-least-once
    remains in (1), (2) and (3)); "unexplained" is a defect."""
    failed: int = 0
    escalated: int = 0
    """Escalation SMS to citizens written (scale-out)."""
    escalated_mid_campaign: int = 0
    """Of those, written before the campaign finished."""
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        rules = ", ".join(f"{n} by {r}" for r, n in sorted(self.by_rule.items())) or "none"
        return (
            f"{self.scenario}: {self.expected} expected, {self.delivered} delivered, "
            f"{self.lost} lost, {self.duplicated} duplicated ({rules}); drained in "
            f"{self.drain_seconds:.1f} s (single SMS {self.single_drain_seconds:.1f} s); "
            f"{self.requests} provider requests, "
            f"{self.answers_lost} answers lost ({self.settled_by_report} settled by their "
            f"report, {self.sent_again_unanswered} sent once more)"
            + (f"; {self.sending_at_fault} sending when killed" if self.sending_at_fault else "")
            + (
                f"; {self.escalated} escalated ({self.escalated_mid_campaign} mid-campaign)"
                if self.escalated
                else ""
            )
        )


class Rig:
    """The gateway's processes and what drives them (see the module's docstring). Use
    :func:`running_rig`, which stops every process however the block ends."""

    def __init__(
        self, workdir: Path, database_url: str, size: Size, *, webs: int = 1, workers: int = 1
    ) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.size = size
        self.web_names = ["web", *(f"web{n}" for n in range(2, webs + 1))]
        self.worker_names = ["worker", *(f"worker{n}" for n in range(2, workers + 1))]
        self.ports = {name: free_port() for name in ("redis", "fake", *self.web_names)}
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.http: aiohttp.ClientSession | None = None
        self.token = ""
        self.tickets: dict[str, str] = {}
        self.sending_at_fault: set[int] = set()
        self._redis_runs = 0
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_file = self._write_config()

    # ----------------------------------------------------------------- processes

    @property
    def web(self) -> str:
        """The first web process's address."""
        return self.webs[0]

    @property
    def webs(self) -> list[str]:
        """Every web process's address (``webs`` of them: they take turns at the traffic)."""
        return [f"http://127.0.0.1:{self.ports[name]}" for name in self.web_names]

    @property
    def fake(self) -> str:
        return f"http://127.0.0.1:{self.ports['fake']}"

    def env(self) -> dict[str, str]:
        skip = {"SAMPARK_CONFIG", "PORT", "HOST", "DATABASE_URL", "REDIS_URL"}
        env = {k: v for k, v in os.environ.items() if k not in skip and not k.startswith("AT_")}
        env.update(
            SAMPARK_CONFIG=str(self.config_file),
            DATABASE_URL=self.database_url,
            REDIS_URL=f"redis://127.0.0.1:{self.ports['redis']}/0",
            PORT=str(self.ports["web"]),
            SMS_PROVIDER="africastalking",
            AT_USERNAME=USERNAME,
            AT_API_KEY=API_KEY,
            AT_BASE_URL=self.fake,
        )
        return env

    def _write_config(self) -> Path:
        raw = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
        for key in ("locales", "sms_templates"):
            raw["paths"][key] = str(ROOT / raw["paths"][key])
        raw["paths"]["data_dir"] = str(self.workdir / "data")
        for section, values in SETTINGS.items():
            _merge(raw.setdefault(section, {}), values)
        raw["bulk"]["segments_per_second"] = self.size.segments_per_second
        path = self.workdir / "config.yaml"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        return path

    async def _spawn(self, name: str, *args: str, port: int | None = None) -> None:
        env = self.env()
        if port is not None:
            env["PORT"] = str(port)
        with (self.workdir / f"{name}.log").open("ab") as log:
            self.processes[name] = await asyncio.create_subprocess_exec(
                *args,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def alive(self, name: str) -> bool:
        proc = self.processes.get(name)
        return proc is not None and proc.returncode is None

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _check_alive(self, *names: str) -> None:
        for name in names:
            if not self.alive(name):
                raise AssertionError(f"the {name} process ended:\n{self.log(name)[-4000:]}")

    async def start_redis(self) -> None:
        """A redis-server on the rig's port, empty (nothing saved, nothing loaded)."""
        self._redis_runs += 1
        directory = self.workdir / f"redis-{self._redis_runs}"
        directory.mkdir()
        await self._spawn(
            "redis",
            "redis-server",
            *("--port", str(self.ports["redis"]), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(directory)),
        )

        async def answers() -> bool:
            self._check_alive("redis")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.ports["redis"])
            except OSError:
                return False
            writer.close()
            return True

        await until(answers, "redis-server accepting connections", within=self.size.deadline)

    async def start_worker(self, name: str = "worker") -> None:
        await self._spawn(name, sys.executable, "-m", "gateway", "worker")

    async def kill(self, name: str) -> None:
        """SIGKILL: no chance to finish or record anything."""
        proc = self.processes[name]
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        await self.start_redis()
        await self._spawn(
            "fake",
            sys.executable,
            "-m",
            "tests.fakes.africastalking_process",
            str(self.ports["fake"]),
        )
        await until(self._fake_up, "the fake provider answering", within=self.size.deadline)
        # The first web server first: it applies the migrations the others then find done.
        for name in self.web_names:
            port = self.ports[name]
            await self._spawn(name, sys.executable, "server.py", "--no-worker", port=port)
            await until(partial(self._database_up, name), f"{name} up", within=self.size.deadline)
        for name in self.worker_names:
            await self.start_worker(name)
        await until(self.healthy, "the worker's health record", within=self.size.deadline)
        await self.control(reports=self.web + _signed("/sms/africastalking/delivery"))
        if self.size.campaign:
            await self.staff_token()

    async def stop(self) -> None:
        """Stop every process (the gateway's as Ctrl-C would, then for good)."""
        for name in (*self.worker_names, *self.web_names):
            proc = self.processes.get(name)
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGINT)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 15)
        for proc in self.processes.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if self.http is not None:
            await self.http.close()

    async def _get(self, url: str) -> tuple[int, Any]:
        assert self.http is not None
        try:
            async with self.http.get(url) as resp:
                return resp.status, await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
            return 0, None

    async def _fake_up(self) -> bool:
        self._check_alive("fake")
        return (await self._get(f"{self.fake}/stats"))[0] == 200

    async def _database_up(self, name: str = "web") -> bool:
        self._check_alive(name)
        status, body = await self._get(f"http://127.0.0.1:{self.ports[name]}/healthz")
        return status != 0 and isinstance(body, dict) and body.get("database") == "ok"

    async def healthy(self) -> bool:
        self._check_alive(*self.web_names, *self.worker_names)
        return (await self._get(f"{self.web}/healthz"))[0] == 200

    # ----------------------------------------------------------------- the fake

    async def control(self, **settings: Any) -> None:
        assert self.http is not None
        async with self.http.post(f"{self.fake}/control", json=settings) as resp:
            assert resp.status == 200, await resp.text()

    async def stats(self) -> dict[str, Any]:
        status, body = await self._get(f"{self.fake}/stats")
        assert status == 200 and isinstance(body, dict), (status, body)
        return body

    # ----------------------------------------------------------------- traffic

    async def _post(
        self, path: str, form: dict[str, str], *, web: str | None = None
    ) -> tuple[int, str]:
        assert self.http is not None
        try:
            async with self.http.post(f"{web or self.web}{path}", data=form) as resp:
                return resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError) as e:
            return 0, repr(e)

    async def register(self, phone: str, *, turn: int = 0) -> str:
        """A citizen registers a complaint by USSD, dialling again after any failure (an
        apology, a lost session) as people do; the ticket number. Each hop goes to the
        next web process, from the ``turn``-th (as a load balancer without stickiness
        would send them)."""

        async def attempt() -> str | None:
            session, inputs = f"ATUid_{uuid.uuid4().hex}", []
            hops = 0

            async def hop(value: str | None = None) -> str:
                nonlocal hops
                web = self.webs[(turn + hops) % len(self.webs)]
                hops += 1
                if value is not None:
                    inputs.append(value)
                form = {
                    "sessionId": session,
                    "serviceCode": "*1100#",
                    "phoneNumber": phone,
                    "networkCode": "40445",
                    "text": "*".join(inputs),
                }
                status, body = await self._post(_signed("/ussd/africastalking"), form, web=web)
                return body if status == 200 else "END"

            screen = await hop()
            if "unfinished complaint" in screen:
                screen = await hop("2")  # start over
            elif screen.startswith("CON") and "New complaint" not in screen:
                screen = await hop(ENGLISH)  # the language list
            for value in REGISTRATION:
                if not screen.startswith("CON"):
                    return None
                screen = await hop(value)
            found = TICKET.search(screen)
            return found.group(1) if found else None

        deadline = time.monotonic() + self.size.deadline
        while (ticket := await attempt()) is None:
            if time.monotonic() > deadline:
                raise Timeout(f"no registration within {self.size.deadline:g} s")
            await asyncio.sleep(0.5)
        self.tickets[phone] = ticket
        return ticket

    async def inbound(self, phone: str, text: str, *, turn: int = 0) -> None:
        """An SMS from ``phone``, posted as AT does (to the ``turn``-th web process) until
        the gateway takes it (2xx)."""
        form = {"from": phone, "to": "51100", "text": text, "id": uuid.uuid4().hex, "date": "now"}
        path, web = _signed("/sms/africastalking/inbound"), self.webs[turn % len(self.webs)]
        deadline = time.monotonic() + self.size.deadline
        while not 200 <= (await self._post(path, form, web=web))[0] < 300:
            if time.monotonic() > deadline:
                raise Timeout(f"inbound SMS not taken within {self.size.deadline:g} s")
            await asyncio.sleep(0.5)

    async def citizen(self, i: int) -> None:
        phone = f"+91981{i:07d}"
        ticket = await self.register(phone, turn=i)
        await self.inbound(phone, f"STATUS {ticket}", turn=i + 1)

    async def staff_token(self) -> str:
        """A state administrator and a token for them, made with the staff CLI."""
        cli = (sys.executable, "-m", "gateway", "staff")
        add = ("add", "--username", "faults", "--name", "Fault harness", "--role", "state_admin")
        for args in (add, ("token", "issue", "faults", "--label", "faults")):
            proc = await asyncio.create_subprocess_exec(
                *cli,
                *args,
                cwd=ROOT,
                env=self.env(),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await proc.communicate()
            assert proc.returncode == 0, out.decode()
        self.token = out.decode().strip().splitlines()[-1]
        return self.token

    async def campaign(self) -> int:
        """A CSV campaign of ``size.campaign`` numbers through the staff API (the last web
        process), started."""
        assert self.http is not None
        if not self.token:
            await self.staff_token()
        headers = {"Authorization": f"Bearer {self.token}"}
        numbers = "".join(f"+91962{i:07d}\n" for i in range(self.size.campaign))
        body = {
            "template": "area_update",
            "variables": {"service": "Water supply", "place": "Theog", "update": "restored"},
            "audience": {"csv": numbers},
        }
        api = f"{self.webs[-1]}/api/v1/campaigns"
        async with self.http.post(api, json=body, headers=headers) as resp:
            assert resp.status == 201, (resp.status, await resp.text())
            campaign = int((await resp.json())["id"])
        async with self.http.post(f"{api}/{campaign}/start", headers=headers) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
        return campaign

    async def traffic(self) -> None:
        """Every citizen's registration and status SMS (four at a time), and the campaign."""
        gate = asyncio.Semaphore(4)

        async def one(i: int) -> None:
            async with gate:
                await self.citizen(i)

        jobs: list[Awaitable[Any]] = [one(i) for i in range(self.size.citizens)]
        if self.size.campaign:
            jobs.append(self.campaign())
        await asyncio.gather(*jobs)

    async def accepted_at_least(self, n: int) -> bool:
        self._check_alive("fake", *self.web_names)
        return int((await self.stats())["accepted"]) >= n

    # ----------------------------------------------------------------- measuring

    async def _outbox(self) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return list(
                await conn.fetch(
                    "SELECT id, recipient, text, status, attempts, lost_answers, last_error "
                    "FROM outbound_message ORDER BY id"
                )
            )
        finally:
            await conn.close()

    async def sending_now(self) -> set[int]:
        return {int(r["id"]) for r in await self._outbox() if r["status"] == "sending"}

    async def _left(self) -> tuple[int, int]:
        """What is left to move: everything (messages queued, retrying, sending or waiting
        for their lost answer's report or one more try; campaigns sending; reports on
        their way), and the messages of no campaign among it."""
        self._check_alive("fake", *self.web_names, *self.worker_names)
        conn = await asyncpg.connect(self.database_url)
        try:
            moving = await conn.fetchrow(
                "SELECT count(*) AS all, count(*) FILTER (WHERE campaign_id IS NULL) AS single "
                "FROM outbound_message WHERE status IN ('queued', 'retrying', 'sending') "
                "OR (status = 'unknown' AND lost_answers <= 1)"
            )
            campaigns = await conn.fetchval(
                "SELECT count(*) FROM campaign WHERE status = 'sending'"
            )
        finally:
            await conn.close()
        reports = int((await self.stats())["reports"].get("pending", 0))
        return int(moving["all"]) + int(campaigns) + reports, int(moving["single"])

    async def drain(self, since: float) -> tuple[float, float]:
        """Wait until nothing is left to move; the seconds from ``since`` (monotonic) to
        then, and to the moment the messages of no campaign had all settled."""
        singles_done: float | None = None

        async def settled() -> bool:
            nonlocal singles_done
            left, singles = await self._left()
            if singles == 0 and singles_done is None:
                singles_done = time.monotonic()
            return left == 0

        await until(settled, "every message settled", within=self.size.deadline)
        end = time.monotonic()
        return end - since, (singles_done or end) - since

    async def measure(self, scenario: str, *, drained: tuple[float, float]) -> Figures:
        rows = await self._outbox()
        stats = await self.stats()
        received: Counter[tuple[str, str]] = Counter(
            {(str(n), str(t)): int(c) for n, t, c in stats["received"]}
        )
        expected: Counter[tuple[str, str]] = Counter((r["recipient"], r["text"]) for r in rows)
        by_key: dict[tuple[str, str], list[asyncpg.Record]] = {}
        for r in rows:
            by_key.setdefault((r["recipient"], r["text"]), []).append(r)
        figures = Figures(
            scenario=scenario,
            expected=len(rows),
            delivered=sum(min(n, received[k]) for k, n in expected.items()),
            lost=sum(max(0, n - received[k]) for k, n in expected.items()),
            duplicated=sum(max(0, received[k] - n) for k, n in expected.items()),
            drain_seconds=drained[0],
            single_drain_seconds=drained[1],
            requests=int(stats["requests"]),
            answers_lost=sum(int(v) for v in stats["lost_answers"].values()),
            settled_by_report=sum(
                1
                for r in rows
                if r["lost_answers"] >= 1
                and r["status"] in ("sent", "delivered")
                and not _sent_again(r)
            ),
            sent_again_unanswered=sum(1 for r in rows if r["lost_answers"] >= 1 and _sent_again(r)),
            sending_at_fault=len(self.sending_at_fault),
            failed=sum(1 for r in rows if r["status"] == "failed"),
        )
        for note in self._unwritten(rows):
            figures.lost += 1
            figures.notes.append(note)
        for key, n in received.items():
            if key not in expected:
                figures.by_rule["unexplained"] += n
                figures.notes.append(f"{n} message(s) to {key[0]} the outbox does not hold")
        for key, n in expected.items():
            extra = received[key] - n
            if extra > 0:
                rule = self._rule(by_key[key], extra)
                figures.by_rule[rule] += extra
                if rule == "unexplained":
                    figures.notes.append(
                        f"{key[0]}: {received[key]} received for {n} message(s): "
                        + "; ".join(f"{dict(r)}" for r in by_key[key])
                    )
        return figures

    def _unwritten(self, rows: list[asyncpg.Record]) -> list[str]:
        """What the gateway promised and the outbox does not hold: a registration's
        acknowledgement and the status reply (both carry the ticket), a campaign
        recipient's message."""
        missing = []
        for phone, ticket in self.tickets.items():
            mine = [r for r in rows if r["recipient"] == phone and ticket in r["text"]]
            if len(mine) < 2:
                missing.append(f"{phone}: {len(mine)} of 2 messages with ticket {ticket}")
        if self.size.campaign:
            recipients = {r["recipient"] for r in rows if r["recipient"].startswith("+91962")}
            if len(recipients) < self.size.campaign:
                missing.append(f"campaign: {len(recipients)} of {self.size.campaign} written")
        return missing

    def _rule(self, rows: list[asyncpg.Record], extra: int) -> str:
        """The README's rule that allows ``extra`` more copies of these messages, or
        "unexplained". Each rule allows one more copy of a message, never two."""
        if extra > len(rows):
            return "unexplained"
        if any(int(r["id"]) in self.sending_at_fault for r in rows):
            return "rule 3 (worker died mid-send)"
        if any(r["lost_answers"] >= 1 and _sent_again(r) for r in rows):
            return "rule 1 (answer lost, no report in time)"
        if any(
            r["attempts"] >= 2 and "no answer for recipient" in (r["last_error"] or "")
            for r in rows
        ):
            return "rule 2 (left out of AT's answer)"
        return "unexplained"


def _sent_again(row: asyncpg.Record) -> bool:
    """A message whose answer was lost and that was tried again (``retry_unanswered``)."""
    return int(row["attempts"]) >= 2 and int(row["lost_answers"]) >= 1


def _merge(into: dict[str, Any], values: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value)
        else:
            into[key] = value


@asynccontextmanager
async def running_rig(
    workdir: Path, database_url: str, size: Size, *, webs: int = 1, workers: int = 1
) -> AsyncIterator[Rig]:
    """A started :class:`Rig` (``webs`` web processes, ``workers`` workers); every process
    it started is stopped when the block ends, however it ends."""
    rig = Rig(workdir, database_url, size, webs=webs, workers=workers)
    try:
        await rig.start()
        yield rig
    except BaseException:
        for name in (*rig.web_names, *rig.worker_names, "fake"):
            print(f"--- the end of {name}.log:\n{rig.log(name)[-3000:]}", file=sys.stderr)
        raise
    finally:
        await rig.stop()


# --------------------------------------------------------------------------- scenarios


def _expected_messages(size: Size) -> int:
    return 3 * size.citizens + size.campaign


async def _during(traffic: asyncio.Future[Any], check: Callable[[], Awaitable[bool]]) -> bool:
    """``check()``, failing at once if the traffic failed."""
    if traffic.done():
        traffic.result()
    return await check()


async def _a_quarter_sent(rig: Rig, traffic: asyncio.Future[None]) -> None:
    quarter = max(2, _expected_messages(rig.size) // 4)
    await until(
        lambda: _during(traffic, lambda: rig.accepted_at_least(quarter)),
        "a quarter of the messages sent",
        within=rig.size.deadline,
    )


async def redis_restart(rig: Rig) -> Figures:
    """(a) Redis SIGKILLed a quarter of the way through the traffic and started again,
    empty: every job queued in it (messages, retries, the campaign's) is gone."""
    await rig.control(delay=0.05)
    traffic = asyncio.ensure_future(rig.traffic())
    try:
        await _a_quarter_sent(rig, traffic)
        await rig.kill("redis")
        await asyncio.sleep(1.0)  # an outage, not a blink: the workers and the web see it
        await rig.start_redis()
        over = time.monotonic()
        await traffic
    finally:
        traffic.cancel()
    return await rig.measure("redis restarted empty", drained=await rig.drain(over))


async def worker_kill(rig: Rig) -> Figures:
    """(b) The worker SIGKILLed while the provider holds sends in flight (each request
    waits half a second before the fake takes it), once some messages are out, and
    started again at once."""
    await rig.control(delay=0.5)
    traffic = asyncio.ensure_future(rig.traffic())
    try:

        async def mid_send() -> bool:
            # Some sends held by the provider: the moment to kill. Not also "some already
            # accepted": a small run's sends may all go in one burst, and that window
            # (half a second) can pass between two looks on a busy machine.
            return int((await rig.stats())["in_flight"]) >= 1

        await until(lambda: _during(traffic, mid_send), "sends in flight", within=rig.size.deadline)
        await rig.kill("worker")
        rig.sending_at_fault = await rig.sending_now()
        await rig.start_worker()
        over = time.monotonic()
        await traffic
    finally:
        traffic.cancel()
    return await rig.measure("worker killed mid-send", drained=await rig.drain(over))


OFFICERS = {1: "+919800100001", 2: "+919800100002"}
"""The Jal Shakti officers for Theog by level (``config.yaml``): block (a registration's
notice), tehsil (an escalation's)."""


async def make_overdue(rig: Rig, *, every: int) -> set[str]:
    """Every ``every``-th registered complaint's deadline put a day in the past, as time
    passing would (SQL: the gateway has no other way); their tickets."""
    tickets = {t for n, (_, t) in enumerate(sorted(rig.tickets.items())) if n % every == 0}
    conn = await asyncpg.connect(rig.database_url)
    try:
        await conn.execute(
            "UPDATE complaint SET due_at = now() - interval '1 day' WHERE ticket = ANY($1)",
            sorted(tickets),
        )
    finally:
        await conn.close()
    return tickets


def should_receive(rig: Rig, overdue: set[str]) -> Counter[tuple[str, str]]:
    """What each phone should have received, as (number, ticket) -> messages, from the
    gateway's promises alone (not its outbox): a citizen their acknowledgement and status
    reply, and the escalation if overdue; the block officer a notice per complaint, the
    tehsil officer one per escalated complaint."""
    should: Counter[tuple[str, str]] = Counter()
    for phone, ticket in rig.tickets.items():
        escalated = int(ticket in overdue)
        should[(phone, ticket)] = 2 + escalated
        should[(OFFICERS[1], ticket)] += 1
        should[(OFFICERS[2], ticket)] += escalated
    return +should


def received_by_ticket(
    rig: Rig, received: list[tuple[str, str, int]]
) -> tuple[Counter[tuple[str, str]], list[str]]:
    """What each phone received, as (number, ticket) -> distinct messages (copies beyond
    the first are :meth:`Rig.measure`'s), and every message to a phone other than a
    campaign recipient that does not name exactly one ticket of the run's."""
    ticket_of = {re.compile(rf"\b{re.escape(t)}\b"): t for t in rig.tickets.values()}
    got: Counter[tuple[str, str]] = Counter()
    odd = []
    for number, text, _ in received:
        if number.startswith("+91962"):
            continue
        tickets = [t for pattern, t in ticket_of.items() if pattern.search(text)]
        if len(tickets) != 1:
            odd.append(f"{number}: {text!r} names {len(tickets)} tickets of the run")
        for t in tickets:
            got[(number, t)] += 1
    return got, odd


async def scale_out(rig: Rig) -> Figures:
    """(e) Two web processes and two workers (``running_rig(..., webs=2, workers=2)``).
    Registrations take turns between the web processes hop by hop, as a load balancer
    without stickiness would send them; then half of the complaints are made overdue and
    a campaign starts. Mid-campaign, with sends in flight, one worker is SIGKILLed and
    another started in its place: its start runs the deadline job while the campaign
    sends, and the surviving worker's sweep takes over the dead one's messages.

    The figures' notes list every phone whose messages differ from what it should have
    received (:func:`should_receive`) and every copy beyond the first."""
    await rig.control(delay=0.2)
    await asyncio.gather(*(rig.citizen(i) for i in range(rig.size.citizens)))
    overdue = await make_overdue(rig, every=2)
    started = asyncio.ensure_future(rig.campaign())
    try:

        async def mid_campaign() -> bool:
            stats = await rig.stats()
            sent = sum(1 for n, _, _ in stats["received"] if str(n).startswith("+91962"))
            return started.done() and int(stats["in_flight"]) >= 1 and sent >= 1

        await until(lambda: _during(started, mid_campaign), "campaign sends in flight", within=60)
        await rig.kill("worker")
        rig.sending_at_fault = await rig.sending_now()
        await rig.start_worker("worker")
        over = time.monotonic()
        await started
    finally:
        started.cancel()
    figures = await rig.measure("scale-out, a worker killed", drained=await rig.drain(over))
    stats = await rig.stats()
    got, odd = received_by_ticket(rig, [(str(n), str(t), int(c)) for n, t, c in stats["received"]])
    should = should_receive(rig, overdue)
    for key in sorted(set(got) | set(should)):
        if got[key] != should[key]:
            figures.notes.append(f"{key[0]} ticket {key[1]}: {got[key]} of {should[key]}")
    figures.notes += odd
    figures.escalated, figures.escalated_mid_campaign = await _escalations(rig)
    return figures


async def _escalations(rig: Rig) -> tuple[int, int]:
    """Escalation SMS written, and of those, how many before the campaign finished."""
    conn = await asyncpg.connect(rig.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS all, count(*) FILTER (WHERE m.created_at < c.finished_at) "
            "AS mid FROM outbound_message m, campaign c "
            "WHERE m.template = 'complaint_escalated'"
        )
    finally:
        await conn.close()
    return int(row["all"]), int(row["mid"])


PROVIDER_FAULTS = {"slow": 0.1, "reset": 0.1, "garbage": 0.1}
"""The share of requests whose answer is lost, by how (spread evenly over them)."""


async def _lossy_provider(rig: Rig, scenario: str, **control: Any) -> Figures:
    """The traffic with :data:`PROVIDER_FAULTS` until everything has settled (the
    messages sent once more meet them too); the drain counts from the end of the traffic."""
    await rig.control(faults=PROVIDER_FAULTS, slow_seconds=5.0, **control)
    await rig.traffic()
    figures = await rig.measure(scenario, drained=await rig.drain(time.monotonic()))
    await rig.control(faults={})
    return figures


async def provider_faults(rig: Rig) -> Figures:
    """(c) The provider takes every request but loses the answer of three in ten: it
    answers after the gateway's timeout, resets the connection, or answers 201 with a
    body that is not JSON. Every message's delivery report comes (half a second after
    the message was taken, so a slow answer's report comes before the gateway gives up on
    the answer), and settles the message: nothing is sent twice."""
    return await _lossy_provider(rig, "provider timeouts, resets, garbage")


async def reports_lost(rig: Rig) -> Figures:
    """(d) As (c), but the report of a message whose answer was lost never comes: each
    such message is sent once more after ``worker.unknown_answer_retry_minutes`` (rule 1:
    at-least-once, where a lost answer leaves no other way to know)."""
    return await _lossy_provider(
        rig, "as (c), no report for a lost answer", reports_after_lost_answer=0.0, seed=7
    )


SCENARIOS: dict[str, Callable[[Rig], Awaitable[Figures]]] = {
    "redis": redis_restart,
    "worker": worker_kill,
    "provider": provider_faults,
    "reports": reports_lost,
}

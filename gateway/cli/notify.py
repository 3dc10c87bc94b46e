"""``python -m gateway notify ...``: bulk notifications from the command line.

Every command acts as a staff member (``--as USERNAME``), with that member's role and
scope, exactly as the API would; every change is audited under their name.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tqdm import tqdm

from gateway.app import build_campaigns, load_static, open_services
from gateway.campaigns.audience import ComplaintFilter, campaign_scope
from gateway.campaigns.progress import Progress, progress
from gateway.campaigns.service import CampaignConflict, Campaigns, Preview
from gateway.cli.base import say_database
from gateway.complaints.scope import Scope, scope_of
from gateway.config import Config, load_config
from gateway.errors import FieldError
from gateway.staff.audit import actor_of
from gateway.storage.db import using_database
from gateway.storage.models import Campaign, CampaignStatus, StaffMember, StaffRole
from gateway.text.csv_numbers import CsvReport, parse_numbers

if TYPE_CHECKING:
    from gateway.cli.base import Commands

__all__ = ["CampaignBar", "add_parser", "progress_bar", "run", "run_notify"]

SENDERS = (StaffRole.OFFICER, StaffRole.DISTRICT_ADMIN, StaffRole.STATE_ADMIN)


class _SweepScheduler:
    """With the embedded Redis (private to ``serve``), the CLI cannot queue jobs: the
    server's bulk worker finds campaigns marked sending by itself within a minute."""

    async def schedule(self, campaign_id: int, *, at: datetime | None = None) -> None:
        print(f"campaign {campaign_id}: the gateway's worker will pick it up within a minute")


def progress_bar(p: Progress, *, width: int = 30) -> str:
    """A snapshot in one line:
    ``[#####.....] 70/100  sent 60  delivered 8  failed 2  queued 30  (sending)``."""
    done, total = _done_of(p)
    filled = min(width, int(width * done / max(total, 1)))
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}  {_counts(p)}"


def _done_of(p: Progress) -> tuple[int, int]:
    """Recipients done with (sent, delivered, failed, cancelled or answer lost), and of
    how many."""
    done = p.sent + p.delivered + p.failed + p.cancelled + p.unknown
    return done, p.recipients if p.written else max(p.recipients, p.expected)


def _counts(p: Progress) -> str:
    return (
        f"sent {p.sent}  delivered {p.delivered}  failed {p.failed}  queued {p.queued}"
        + (f"  cancelled {p.cancelled}" if p.cancelled else "")
        + (f"  answer lost {p.unknown}" if p.unknown else "")
        + f"  ({p.status})"
        + (
            f"  waiting for quiet hours to end at {p.waiting_until:%H:%M %Z}"
            if p.waiting_until
            else ""
        )
    )


class CampaignBar:
    """What ``--follow`` shows: a tqdm bar of the recipients done, with the rate and the
    time left, then the counts and the status. Each state is drawn over the last on one
    line (tqdm blanks what a longer line left), and the last one stays."""

    def __init__(self, campaign_id: int, *, file: TextIO) -> None:
        self.campaign_id = campaign_id
        self.file = file
        self._bar: Any = None

    def show(self, p: Progress) -> None:
        done, total = _done_of(p)
        if self._bar is None:
            # Counted from what was done before: the rate and time left are this run's.
            self._bar = tqdm(
                desc=f"campaign {self.campaign_id}",
                total=total,
                initial=done,
                unit=" SMS",
                postfix=_counts(p),
                file=self.file,
                mininterval=0,
                smoothing=0,
                dynamic_ncols=True,
            )
            return
        self._bar.total = total
        self._bar.n = done
        self._bar.set_postfix_str(_counts(p), refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _print_preview(preview: Preview) -> None:
    print(f"recipients:        {preview.recipients}")
    print(f"skipped opted out: {preview.skipped_opted_out}")
    for lang, n in preview.languages.items():
        print(f"  {lang:8} {n:>8} x {preview.segments[lang]} segment(s)")
    if preview.outside_scope:
        print(f"  outside your scope {preview.outside_scope:>6} (not broken down)")
    print(f"total segments:    {preview.total_segments}")


def _print_report(report: CsvReport) -> None:
    for line in report.describe():
        print(line)


def _variables(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise FieldError("variables", f"--var {pair!r}: write NAME=VALUE")
        out[name.strip()] = value
    return out


def _filter(args: argparse.Namespace) -> ComplaintFilter:
    return ComplaintFilter(
        department=args.department,
        district=args.district,
        tehsil=args.tehsil,
        block=args.block,
        statuses=tuple(args.status or ()),
        open_only=args.open_only,
    )


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8-sig", errors="replace")


async def _file_text(path: Path) -> AsyncIterator[str]:
    """The file in pieces (UTF-8, a byte-order mark dropped), never held whole."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        while piece := await asyncio.to_thread(f.read, 64 * 1024):
            yield piece


async def _progress(campaign: Campaign, config: Config) -> Progress:
    return await progress(campaign, config=config, now=datetime.now(UTC))


async def _follow(campaign: Campaign, config: Config, *, interval: float = 1.0) -> Progress:
    bar = CampaignBar(campaign.id, file=sys.stdout)
    try:
        while True:
            p = await _progress(campaign, config)
            bar.show(p)
            if p.status != CampaignStatus.SENDING.value:
                return p
            await asyncio.sleep(interval)
    finally:
        bar.close()


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(run_notify(config, args))


async def run_notify(config: Config, args: argparse.Namespace) -> int:
    """Run one ``notify`` command; the exit status (0 ok, 1 refused, 2 bad input).

    On the gateway's services (:func:`gateway.app.open_services`); beside a server whose
    Redis is its own (embedded), on the database alone, the campaign left to the server's
    worker to find."""
    say_database(config)
    if config.redis.url == "embedded":
        static = load_static(config)
        async with using_database(config):
            return await _notify(
                build_campaigns(config, static=static, scheduler=_SweepScheduler()), args
            )
    async with open_services(config) as services:
        return await _notify(services.campaigns, args)


async def _notify(campaigns: Campaigns, args: argparse.Namespace) -> int:
    staff = await StaffMember.get_or_none(username=args.as_user, active=True)
    if staff is None:
        print(f"no active staff member {args.as_user!r}", file=sys.stderr)
        return 1
    writes = args.action != "status"
    allowed = SENDERS if writes else (*SENDERS, StaffRole.STATE_REVIEWER)
    if StaffRole(staff.role) not in allowed:
        print(f"{staff.username} ({staff.role}) may not do this", file=sys.stderr)
        return 1
    scope = scope_of(staff, campaigns.config)
    actor = actor_of(staff)
    try:
        return await _act(campaigns, staff, scope, actor, args)
    except FieldError as e:
        print(e, file=sys.stderr)
        return 2
    except CampaignConflict as e:
        print(e, file=sys.stderr)
        return 1


async def _act(
    campaigns: Campaigns, staff: StaffMember, scope: Scope, actor: str, args: argparse.Namespace
) -> int:
    config = campaigns.config
    if args.action in ("preview", "send"):
        variables = _variables(args.var or [])
        # A readable file: checked by argparse (readable_file) before anything is opened.
        csv_path: Path | None = Path(args.csv) if args.csv else None
        if csv_path is not None:
            if args.action == "preview":
                numbers, report = parse_numbers(
                    await asyncio.to_thread(_read_text, csv_path), region=config.service.country
                )
                preview = await campaigns.preview_numbers(
                    campaign_scope(scope, config), args.template, variables, numbers
                )
                _print_preview(preview)
                _print_report(report)
                return 0
        elif args.action == "preview":
            preview = await campaigns.preview_filter(
                campaign_scope(scope, campaigns.config), args.template, variables, _filter(args)
            )
            _print_preview(preview)
            return 0
        campaign = await campaigns.create(
            staff,
            scope,
            template=args.template,
            variables=variables,
            audience=_filter(args) if csv_path is None else None,
            actor=actor,
        )
        if csv_path is not None:
            report = await campaigns.add_numbers(campaign, _file_text(csv_path), actor=actor)
            _print_report(report)
        preview = await campaigns.refresh_totals(campaign)
        print(f"campaign {campaign.id} (draft)")
        _print_preview(preview)
        if not args.yes:
            answer = (await asyncio.to_thread(input, "send now? [y/N] ")).strip().lower()
            if answer not in ("y", "yes"):
                print(f"not sent; start it later with: notify start {campaign.id}")
                return 0
        await campaigns.start(campaign, actor=actor)
        print(f"campaign {campaign.id} sending")
        if args.follow:
            await _follow(campaign, config)
        return 0
    found = await campaigns.get(scope, args.id)
    if found is None:
        print(f"no campaign {args.id}", file=sys.stderr)
        return 1
    campaign = found
    if args.action == "status":
        if args.follow:
            await _follow(campaign, config)
        else:
            print(progress_bar(await _progress(campaign, config)))
        return 0
    step: Callable[..., Awaitable[Campaign]] = getattr(campaigns, args.action)
    campaign = await step(campaign, actor=actor)
    print(progress_bar(await _progress(campaign, config)))
    if args.action in ("start", "resume") and args.follow:
        await _follow(campaign, config)
    return 0


def readable_file(text: str) -> str:
    """An argparse type: a file this user can read (checked before the database is opened)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a directory")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text}: this user may not read it")
    return text


def add_parser(commands: Commands) -> None:
    """The ``notify`` subcommand and its actions."""
    p = commands.add_parser("notify", help="bulk notifications: preview, send, status, pause ...")
    actions = p.add_subparsers(dest="action", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--as", dest="as_user", required=True, help="act as this staff username")
        q.set_defaults(run=run)

    for name, text in (
        ("preview", "count the audience and the cost"),
        ("send", "create and start"),
    ):
        q = actions.add_parser(name, help=text)
        common(q)
        q.add_argument("--template", required=True, help="an SMS template, e.g. area_update")
        q.add_argument("--var", action="append", metavar="NAME=VALUE", help="a template variable")
        q.add_argument(
            "--csv",
            type=readable_file,
            help="a CSV file of phone numbers (first column; , ; tab or | between columns) "
            "instead of a filter",
        )
        q.add_argument("--department")
        q.add_argument("--district")
        q.add_argument("--tehsil")
        q.add_argument("--block")
        q.add_argument("--status", action="append", help="complaint status (repeatable)")
        q.add_argument("--open-only", action="store_true", help="complaints not yet resolved")
        if name == "send":
            q.add_argument("--yes", action="store_true", help="do not ask before sending")
            q.add_argument("--follow", action="store_true", help="show progress until done")
    for name in ("status", "start", "pause", "resume", "cancel"):
        q = actions.add_parser(
            name, help="show a campaign's progress" if name == "status" else f"{name} a campaign"
        )
        common(q)
        q.add_argument("id", type=int)
        if name in ("status", "start", "resume"):
            q.add_argument("--follow", action="store_true", help="show progress until done")

"""``python -m gateway staff ...``: staff accounts and their API tokens from the command line.

Every command is audited with the actor ``cli`` (listings too: who looked at the accounts
is worth knowing). A token is printed once, when issued; listings show its prefix only.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.cli.base import say_database
from gateway.config import Config, load_config
from gateway.errors import FieldError
from gateway.staff.accounts import (
    InvalidStaff,
    NewStaff,
    add_staff,
    deactivate_staff,
    issue_token,
    list_tokens,
    reactivate_staff,
    revoke_token,
)
from gateway.staff.audit import audit
from gateway.staff.passwords import set_password
from gateway.storage.db import using_database
from gateway.storage.models import ApiToken, StaffMember, StaffRole
from gateway.text.phone import mask_phone

if TYPE_CHECKING:
    from gateway.cli.base import Commands

__all__ = ["ACTOR", "add_arguments", "add_parser", "run", "staff_command"]

ACTOR = "cli"

Print = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def add_parser(commands: Commands) -> None:
    p = commands.add_parser("staff", help="staff accounts and their API tokens")
    add_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def on_the_database() -> int:
        say_database(config)
        async with using_database(config):
            return await staff_command(config, args)

    return asyncio.run(on_the_database())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``staff`` subcommands, on ``parser``."""
    sub = parser.add_subparsers(dest="staff_command", required=True)

    p = sub.add_parser("add", help="create a staff account")
    p.add_argument("--username", required=True)
    p.add_argument("--name", required=True, help="full name, as shown on events")
    p.add_argument("--role", required=True, choices=[r.value for r in StaffRole])
    p.add_argument("--department", help="officers: a department code (none: all departments)")
    p.add_argument("--level", help="officers: a level code (block, tehsil, district, state)")
    p.add_argument("--area", help="officers: the block, tehsil or district code of the level")
    p.add_argument("--district", help="district administrators and agents: a district code")
    p.add_argument("--officer-code", help="officers: the config `officers` entry they act as")
    p.add_argument("--phone", help="the staff member's mobile number")

    sub.add_parser("list", help="list staff accounts")

    p = sub.add_parser("deactivate", help="close an account (its tokens stop working)")
    p.add_argument("username")

    p = sub.add_parser("reactivate", help="reopen a closed account (its unrevoked tokens work)")
    p.add_argument("username")

    p = sub.add_parser("password", help="set a console password (prompted, never an argument)")
    p.add_argument("username")
    p.add_argument(
        "--password-stdin", action="store_true", help="read it from the first line of stdin"
    )

    p = sub.add_parser("token", help="API tokens: issue, list, revoke")
    tokens = p.add_subparsers(dest="token_command", required=True)
    t = tokens.add_parser("issue", help="issue a token (printed once)")
    t.add_argument("username")
    t.add_argument("--label", help="what the token is for, e.g. 'laptop' or 'dashboard'")
    t = tokens.add_parser("list", help="list tokens: prefix, label, last used, live or not")
    t.add_argument("username", nargs="?")
    t = tokens.add_parser("revoke", help="revoke a token by its prefix")
    t.add_argument("prefix")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


async def staff_command(
    config: Config, args: argparse.Namespace, *, out: Print = print, err: Print = _stderr
) -> int:
    """Run one ``staff`` command on an open database; returns the exit status (errors go
    to ``err``, so that ``out`` holds only what a script may want, e.g. the token)."""
    command = args.staff_command
    if command == "add":
        new = NewStaff(
            username=args.username,
            name=args.name,
            role=StaffRole(args.role),
            department=args.department,
            level=args.level,
            area=args.area,
            district=args.district,
            officer_code=args.officer_code,
            phone=args.phone,
        )
        try:
            staff = await add_staff(config, new, actor=ACTOR)
        except InvalidStaff as e:
            err(f"error: {e.field}: {e.problem}")
            return 2
        out(f"added {staff.username} ({staff.role.value})")
        return 0
    if command == "list":
        await audit(ACTOR, "staff.list")
        rows = await StaffMember.all().order_by("username")
        if not rows:
            out("No staff accounts.")
        for s in rows:
            where = ", ".join(
                f"{name}={value}"
                for name, value in (
                    ("department", s.department),
                    ("level", s.level),
                    ("area", s.area),
                    ("district", s.district),
                    ("officer", s.officer_code),
                )
                if value
            )
            state = "active" if s.active else "inactive"
            out(
                f"{s.username:<20} {s.role.value:<15} {state:<9} {s.name}"
                f"  [{where or 'state-wide'}]  phone {mask_phone(s.phone)}"
            )
        return 0
    if command == "deactivate":
        if not await deactivate_staff(args.username, actor=ACTOR):
            err(f"error: no active account {args.username!r}")
            return 1
        out(f"deactivated {args.username}")
        return 0
    if command == "reactivate":
        return await _reactivate(config, args.username, out, err)
    if command == "token":
        return await _token_command(args, out, err)
    if command == "password":
        return await _password(args.username, args.password_stdin, out, err)
    raise AssertionError(command)


def _read_password(from_stdin: bool) -> str:
    """The new password: stdin's first line (``--password-stdin``), or typed twice."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        raise FieldError("password", "the two entries differ")
    return first


async def _password(username: str, from_stdin: bool, out: Print, err: Print) -> int:
    staff = await StaffMember.get_or_none(username=username, active=True)
    if staff is None:
        err(f"error: no active account {username!r}")
        return 1
    try:
        await set_password(staff, _read_password(from_stdin), actor=ACTOR)
    except FieldError as e:
        err(f"error: {e.field}: {e.problem}")
        return 2
    out(f"password set for {username}: sign in at /console/")
    return 0


async def _reactivate(config: Config, username: str, out: Print, err: Print) -> int:
    try:
        staff = await reactivate_staff(config, username, actor=ACTOR)
    except InvalidStaff as e:
        err(f"error: {e.field}: {e.problem} (the config changed while the account was closed)")
        return 2
    if staff is None:
        err(f"error: no inactive account {username!r}")
        return 1
    live = [t.prefix for t in await list_tokens(username) if t.revoked_at is None]
    again = f"its tokens {', '.join(live)} work again" if live else "it has no token: issue one"
    out(f"reactivated {username}; {again}")
    return 0


def _token_state(token: ApiToken) -> str:
    """live, revoked (when), or inactive: not revoked, but its account is closed."""
    if token.revoked_at is not None:
        return f"revoked {_when(token.revoked_at)}"
    return "live" if token.staff.active else "inactive (account deactivated)"


async def _token_command(args: argparse.Namespace, out: Print, err: Print) -> int:
    command = args.token_command
    if command == "issue":
        staff = await StaffMember.get_or_none(username=args.username)
        if staff is None or not staff.active:
            err(f"error: no active account {args.username!r}")
            return 1
        issued = await issue_token(staff, label=args.label, actor=ACTOR)
        out(f"token for {staff.username} (prefix {issued.record.prefix}), shown only now:")
        out(issued.token)
        return 0
    if command == "list":
        await audit(ACTOR, "token.list", target=f"staff:{args.username}" if args.username else None)
        tokens = await list_tokens(args.username)
        if not tokens:
            out("No tokens.")
        for t in tokens:
            out(
                f"{t.prefix:<10} {t.staff.username:<20} {t.label or '-':<16} "
                f"created {_when(t.created_at)}  last used {_when(t.last_used_at)}  "
                f"{_token_state(t)}"
            )
        return 0
    if command == "revoke":
        if not await revoke_token(args.prefix, actor=ACTOR):
            err(f"error: no live token with prefix {args.prefix!r}")
            return 1
        out(f"revoked {args.prefix}")
        return 0
    raise AssertionError(command)

"""Rules written once: the open statuses, the essential templates, a level's area field.

Each rule has one definition; every place that applies it is checked here against that
definition, so that a second copy written somewhere and drifting apart fails.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from tortoise.transactions import in_transaction

from gateway.campaigns.audience import ComplaintFilter
from gateway.complaints.lifecycle import ALLOWED, OPEN
from gateway.complaints.routing import area_of, district_level, officer_for
from gateway.complaints.scope import Scope, scope_of
from gateway.config import AREA_FIELDS, Config, Officer, area_field
from gateway.sms.delivery import after_final_failure
from gateway.sms.outbox import MessageDraft, queue_messages
from gateway.sms.templates import TemplateBook
from gateway.staff.accounts import InvalidStaff, NewStaff, validate_staff
from gateway.storage.models import (
    Complaint,
    ComplaintStatus,
    MessageStatus,
    OutboundMessage,
    StaffMember,
    StaffRole,
)
from gateway.web.keys import CAMPAIGNS, CONFIG, LIFECYCLE, TEMPLATES
from ussd_menus.citizen import OPEN_STATUSES

from .conftest import ROOT
from .staff_helpers import ROLES, auth, make_staff_token
from .test_campaigns import VARIABLES
from .test_campaigns import complaint as stored_complaint


# The open statuses ---------------------------------------------------------------------
async def test_the_open_statuses_are_the_lifecycles_everywhere(
    client: TestClient[Any, Any],
) -> None:
    """One complaint in every status, all past their deadline: the open ones, and only
    they, are open to the lifecycle's actions, the deadline job, the API's overdue filter,
    a campaign's open_only audience and the USSD due date."""
    past = datetime.now(UTC) - timedelta(days=1)
    tickets: dict[ComplaintStatus, str] = {}
    for i, status in enumerate(ComplaintStatus):
        c = await stored_complaint(f"+9198130{i:05d}", status=status)
        await Complaint.filter(id=c.id).update(due_at=past)
        assert c.ticket is not None
        tickets[status] = c.ticket
    open_tickets = {tickets[s] for s in OPEN}
    assert 0 < len(open_tickets) < len(tickets)

    for action in ("note", "resolve", "transfer", "reassign", "escalate"):
        assert ALLOWED[action] == OPEN, action
    assert OPEN_STATUSES == {s.value for s in OPEN}

    audience = Complaint.filter(ComplaintFilter(open_only=True).q())
    assert set(await audience.values_list("ticket", flat=True)) == open_tickets

    token = await make_staff_token(client, "admin", **ROLES["state_admin"])
    for overdue, expected in (
        ("true", open_tickets),
        ("false", set(tickets.values()) - open_tickets),
    ):
        resp = await client.get(
            "/api/v1/complaints", params={"overdue": overdue}, headers=auth(token)
        )
        items = (await resp.json())["items"]
        assert {c["ticket"] for c in items} == expected, overdue
        assert all(c["overdue"] == (overdue == "true") for c in items)

    assert await client.app[LIFECYCLE].escalate_overdue() == len(OPEN)
    moved = await Complaint.filter(level=2).values_list("ticket", flat=True)
    assert set(moved) == open_tickets


# The essential templates ---------------------------------------------------------------
def _values(book: TemplateBook, name: str) -> dict[str, str]:
    return {v: "x" for v in book[name].variables}


async def test_an_opted_out_citizen_gets_the_essential_templates_and_no_other(
    client: TestClient[Any, Any],
) -> None:
    book = client.app[TEMPLATES]
    notices = client.app[LIFECYCLE].notices
    assert {t.essential for t in book} == {True, False}
    for tpl in book:
        for opted_out in (False, True):
            draft = notices.draft(
                tpl.name,
                to="+919812345678",
                language="en_IN",
                values=_values(book, tpl.name),
                key=f"rule:{tpl.name}:{opted_out}",
                complaint_id=None,
                opted_out=opted_out,
            )
            if opted_out and not tpl.essential:
                assert draft is None, tpl.name
            else:
                assert draft is not None and draft.sms.essential == tpl.essential, tpl.name
    bulk = [t for t in book if t.bulk]
    assert bulk
    for tpl in bulk:
        preview = await client.app[CAMPAIGNS].preview_numbers(
            Scope(), tpl.name, dict.fromkeys(tpl.variables, "x") | VARIABLES, []
        )
        assert preview.essential == tpl.essential, tpl.name


@dataclass
class _Recorder:
    """A second chance that only records what it was asked to schedule."""

    delay: timedelta = timedelta(minutes=30)
    scheduled: list[int] = field(default_factory=list)

    async def schedule(self, message_id: int) -> None:
        self.scheduled.append(message_id)


async def test_a_failed_message_gets_a_second_chance_when_essential_and_about_a_complaint(
    client: TestClient[Any, Any],
) -> None:
    book = client.app[TEMPLATES]
    config = client.app[CONFIG]
    c = await stored_complaint("+919813199999")
    drafts = [
        MessageDraft(
            sms=tpl.render("en_IN", _values(book, tpl.name), fallback="en_IN"),
            recipient="+919813199999",
            provider=config.sms.provider,
            idempotency_key=f"rule:{tpl.name}:{about}",
            complaint_id=c.id if about else None,
        )
        for tpl in book
        for about in (True, False)
    ]
    async with in_transaction() as conn:
        ids = await queue_messages(drafts, using_db=conn)
    await OutboundMessage.filter(id__in=ids).update(status=MessageStatus.FAILED)
    recorder = _Recorder()
    for message_id in ids:
        await after_final_failure(message_id, recorder)
    expected = [i for i, d in zip(ids, drafts, strict=True) if d.sms.essential and d.complaint_id]
    assert expected and recorder.scheduled == expected
    assert {m.essential for m in await OutboundMessage.filter(id__in=ids)} == {True, False}


MIGRATE_OVER_OLD_MESSAGES = """
import asyncio, sqlite3, sys
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate
from gateway.storage.db import MIGRATIONS_TORTOISE_ORM

async def main(path):
    config = {**MIGRATIONS_TORTOISE_ORM, "connections": {"default": f"sqlite://{path}"}}
    await migrate(config=config, target="models.0015_settings")
    await Tortoise.close_connections()
    with sqlite3.connect(path) as db:
        for template in sys.argv[2:]:
            db.execute(
                "INSERT INTO outbound_message (recipient, template, language, text, encoding, "
                "segments, provider, status, attempts, second_chance, idempotency_key, "
                "created_at, updated_at) VALUES ('+919800000001', ?, 'en_IN', 'x', 'gsm7', 1, "
                "'simulator', 'retrying', 1, 0, ?, '2026-11-01 10:00:00+00:00', "
                "'2026-11-01 10:00:00+00:00')",
                (template, f"old:{template}"),
            )
    await migrate(config=config)
    await Tortoise.close_connections()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT template FROM outbound_message WHERE essential").fetchall()
        print(sorted(r[0] for r in rows))

asyncio.run(main(sys.argv[1]))
"""


def test_messages_written_before_the_essential_column_keep_their_templates_word(
    tmp_path: Path,
) -> None:
    """A message in flight across the upgrade keeps its second chance: the migration marks
    essential those whose template's file said so when the column came."""
    essential_then = [
        "complaint_registered",
        "complaint_resolved",
        "feedback_reminder",
        "help_reply",
        "not_understood",
        "status_reply",
        "ticket_not_found",
    ]
    templates = [*essential_then, "complaint_closed", "officer_new_complaint", "area_update"]
    done = subprocess.run(
        [sys.executable, "-c", MIGRATE_OVER_OLD_MESSAGES, str(tmp_path / "old.db"), *templates],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == str(essential_then)


# A level's area field ------------------------------------------------------------------
def _complaint_at(level: int) -> Complaint:
    """A complaint whose district, tehsil and block are told apart by their codes."""
    return Complaint(
        department="jal_shakti", district="d_area", tehsil="t_area", block="b_area", level=level
    )


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_a_levels_area_field_is_one_rule(config: Config, level: int) -> None:
    """Config's officer areas, routing, an officer account's scope and the staff
    accounts' check all read a level's area from :func:`area_field`."""
    assert len(config.levels) == 4
    field_name = area_field(level)
    assert field_name == (AREA_FIELDS[level - 1] if level <= len(AREA_FIELDS) else None)
    c = _complaint_at(level)
    assert area_of(c, level) == (getattr(c, field_name) if field_name else None)

    kinds = {
        "district": {d.code for d in config.districts},
        "tehsil": {t.code for d in config.districts for t in d.tehsils},
        "block": {b.code for d in config.districts for b in d.blocks},
    }
    assert config.areas_at(level) == (kinds[field_name] if field_name else set())
    code = config.levels[level - 1].code
    for o in config.officers:
        if o.level == code and o.areas != "all":
            assert set(o.areas) <= config.areas_at(level), o.code

    # Routing: of one officer per place field, the one holding the level's field takes it.
    posts = [
        Officer(
            code=f"o_{name}",
            name=name,
            phone="+919800100099",
            department="jal_shakti",
            level=code,
            areas=[getattr(c, name)],
        )
        for name in AREA_FIELDS
    ] + [Officer(code="o_all", name="all", phone="+919800100098", department="all", level=code)]
    routed = officer_for(config.model_copy(update={"officers": posts}), c)
    assert routed is not None
    assert routed.code == (f"o_{field_name}" if field_name else "o_all")

    new = NewStaff(
        username="o", name="o", role=StaffRole.OFFICER, department="jal_shakti", level=code
    )
    if field_name is None:
        validate_staff(config, new)
        with pytest.raises(InvalidStaff, match="area"):
            validate_staff(config, replace(new, area="shimla"))
        return
    with pytest.raises(InvalidStaff, match="needs an area"):
        validate_staff(config, new)
    area = sorted(config.areas_at(level))[0]
    validate_staff(config, replace(new, area=area))
    for other in set(AREA_FIELDS) - {field_name}:
        wrong = sorted(kinds[other] - kinds[field_name])
        if wrong:
            with pytest.raises(InvalidStaff, match="area"):
                validate_staff(config, replace(new, area=wrong[0]))
    staff = StaffMember(
        username="o",
        name="o",
        role=StaffRole.OFFICER,
        department="jal_shakti",
        level=code,
        area=area,
    )
    scope = scope_of(staff, config)
    assert {n for n in AREA_FIELDS if getattr(scope, n) is not None} == {field_name}
    assert getattr(scope, field_name) == area


def test_with_fewer_levels_the_top_one_is_still_divided_by_its_area_field(
    config: Config,
) -> None:
    """Two levels: officers of the second work in tehsils, configured or with an account."""
    short = config.model_copy(update={"levels": config.levels[:2]})
    new = NewStaff(
        username="o", name="o", role=StaffRole.OFFICER, department="jal_shakti", level="tehsil"
    )
    with pytest.raises(InvalidStaff, match="needs an area"):
        validate_staff(short, new)
    validate_staff(short, replace(new, area="theog"))
    assert short.areas_at(2) == config.areas_at(2)


def test_the_district_level_is_the_level_whose_area_is_a_district(config: Config) -> None:
    assert area_field(district_level(config)) == "district"
    assert district_level(config.model_copy(update={"levels": config.levels[:2]})) == 2

"""``python -m gateway staff ...``: accounts and tokens from the command line, all audited."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.app import CONFIG
from gateway.cli.staff import add_arguments, staff_command
from gateway.storage.models import ApiToken, AuditRecord, StaffMember

from .conftest import ROOT


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


async def run(client: TestClient[Any, Any], *argv: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    status = await staff_command(
        client.app[CONFIG], parse(*argv), out=lines.append, err=lambda e: lines.append("!" + e)
    )
    return status, lines


async def test_add_issue_use_list_revoke_deactivate(client: TestClient[Any, Any]) -> None:
    status, out = await run(
        client, "add", "--username", "je_theog", "--name", "JE Theog", "--role", "officer",
        "--department", "jal_shakti", "--level", "block", "--area", "theog",
        "--phone", "9800100001",
    )  # fmt: skip
    assert status == 0, out
    assert (await StaffMember.get(username="je_theog")).phone == "+919800100001"

    status, out = await run(client, "token", "issue", "je_theog", "--label", "laptop")
    assert status == 0
    token = out[-1]
    assert token.startswith("spk_")
    assert not await ApiToken.filter(token_hash=token).exists()  # only the hash is kept

    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/me", headers=headers)).status == 200

    status, out = await run(client, "token", "list", "je_theog")
    prefix = token.split("_")[1]
    assert status == 0 and len(out) == 1
    assert out[0].startswith(prefix) and "laptop" in out[0] and "live" in out[0]
    assert "last used -" not in out[0]  # the request above was recorded
    assert token not in out[0]

    status, out = await run(client, "list")
    assert "je_theog" in out[0] and "+91******0001" in out[0] and "9800100001" not in out[0]

    assert (await run(client, "token", "revoke", prefix))[0] == 0
    assert (await client.get("/api/v1/me", headers=headers)).status == 401
    status, out = await run(client, "token", "list")
    assert "revoked" in out[0]
    assert (await run(client, "token", "revoke", prefix))[0] == 1

    status, out = await run(client, "token", "issue", "je_theog")
    headers = {"Authorization": f"Bearer {out[-1]}"}
    assert (await client.get("/api/v1/me", headers=headers)).status == 200
    assert (await run(client, "deactivate", "je_theog"))[0] == 0
    assert (await client.get("/api/v1/me", headers=headers)).status == 401
    assert (await run(client, "deactivate", "je_theog"))[0] == 1
    assert (await run(client, "token", "issue", "je_theog"))[0] == 1

    actions = await AuditRecord.filter(actor="cli").order_by("id").values_list("action", flat=True)
    assert actions == [
        "staff.add",
        "token.issue",
        "token.list",
        "staff.list",
        "token.revoke",
        "token.list",
        "token.issue",
        "staff.deactivate",
    ]


async def test_a_closed_account_is_reopened_and_its_tokens_shown_inactive_meanwhile(
    client: TestClient[Any, Any],
) -> None:
    status, out = await run(
        client, "add", "--username", "je_theog", "--name", "JE Theog", "--role", "officer",
        "--department", "jal_shakti", "--level", "block", "--area", "theog",
    )  # fmt: skip
    assert status == 0, out
    token = (await run(client, "token", "issue", "je_theog"))[1][-1]
    prefix = token.split("_")[1]
    headers = {"Authorization": f"Bearer {token}"}

    assert (await run(client, "deactivate", "je_theog"))[0] == 0
    assert (await client.get("/api/v1/me", headers=headers)).status == 401
    status, out = await run(client, "token", "list", "je_theog")
    assert status == 0 and out[0].startswith(prefix)
    assert out[0].endswith("inactive (account deactivated)") and "live" not in out[0]

    status, out = await run(client, "reactivate", "je_theog")
    assert (status, out) == (0, [f"reactivated je_theog; its tokens {prefix} work again"])
    assert (await StaffMember.get(username="je_theog")).active
    assert (await client.get("/api/v1/me", headers=headers)).status == 200
    status, out = await run(client, "token", "list", "je_theog")
    assert out[0].endswith("live")
    assert await run(client, "reactivate", "je_theog") == (
        1,
        ["!error: no inactive account 'je_theog'"],
    )

    records = await AuditRecord.filter(action="staff.reactivate")
    assert [(r.actor, r.target) for r in records] == [("cli", "staff:je_theog")]


async def test_a_closed_account_the_config_no_longer_allows_stays_closed(
    client: TestClient[Any, Any],
) -> None:
    status, out = await run(
        client, "add", "--username", "je_theog", "--name", "JE Theog", "--role", "officer",
        "--department", "jal_shakti", "--level", "block", "--area", "theog",
    )  # fmt: skip
    assert status == 0, out
    assert (await run(client, "deactivate", "je_theog"))[0] == 0
    # Meanwhile the department was dropped from the config.
    config = client.app[CONFIG]
    changed = config.model_copy(
        update={"departments": [d for d in config.departments if d.code != "jal_shakti"]}
    )
    errors: list[str] = []
    status = await staff_command(
        changed, parse("reactivate", "je_theog"), out=errors.append, err=errors.append
    )
    assert status == 2
    assert errors == [
        "error: department: unknown department 'jal_shakti'"
        " (the config changed while the account was closed)"
    ]
    assert not (await StaffMember.get(username="je_theog")).active
    assert not await AuditRecord.filter(action="staff.reactivate").exists()


async def test_a_wrong_account_names_the_field(client: TestClient[Any, Any]) -> None:
    status, out = await run(
        client, "add", "--username", "x", "--name", "X", "--role", "district_admin"
    )
    assert status == 2
    assert out == ["!error: district: a district administrator needs a district"]
    assert not await StaffMember.exists()


def test_the_real_command_line(tmp_path: Path, database_url: str, redis_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}

    def gateway(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "staff", *argv],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    username = f"admin_{tmp_path.name[-8:]}".replace("-", "_")
    done = gateway("add", "--username", username, "--name", "Admin", "--role", "state_admin")
    assert done.returncode == 0, done.stderr
    done = gateway("token", "issue", username)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("spk_")
    listed = gateway("list")
    assert username in listed.stdout

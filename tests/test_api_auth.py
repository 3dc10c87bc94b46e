"""The staff API's front door: bearer tokens, scopes, JSON errors, the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import CONFIG
from gateway.staff.accounts import InvalidStaff, NewStaff, add_staff, issue_token, revoke_token
from gateway.storage.models import ApiToken, AuditRecord, StaffRole


async def make_token(client: TestClient[Any, Any], **fields: Any) -> str:
    config = client.app[CONFIG]
    staff = await add_staff(config, NewStaff(**fields), actor="cli")
    return (await issue_token(staff, label="test", actor="cli")).token


async def test_a_token_opens_the_api_and_shows_the_callers_scope(
    client: TestClient[Any, Any],
) -> None:
    token = await make_token(
        client,
        username="je_theog",
        name="JE Theog",
        role=StaffRole.OFFICER,
        department="jal_shakti",
        level="block",
        area="theog",
    )
    resp = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    body = await resp.json()
    assert body["role"] == "officer"
    assert body["scope"]["department"] == "jal_shakti"
    assert body["scope"]["block"] == "theog"
    assert body["scope"]["district"] is None
    record = await ApiToken.get(prefix=token.split("_")[1])
    assert record.token_hash != token and token not in record.token_hash
    assert await AuditRecord.filter(action="token.issue").count() == 1


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer spk_nope_nope", "Basic dXNlcjpwYXNz", "spk_x"],
)
async def test_no_valid_token_is_401_json(client: TestClient[Any, Any], header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    resp = await client.get("/api/v1/me", headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthorized"


async def test_a_revoked_token_or_inactive_account_is_refused(
    client: TestClient[Any, Any],
) -> None:
    token = await make_token(client, username="admin", name="Admin", role=StaffRole.STATE_ADMIN)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/me", headers=headers)).status == 200
    assert await revoke_token(token.split("_")[1], actor="cli")
    assert (await client.get("/api/v1/me", headers=headers)).status == 401
    assert not await revoke_token(token.split("_")[1], actor="cli")


async def test_unknown_paths_answer_json_404(client: TestClient[Any, Any]) -> None:
    token = await make_token(client, username="admin", name="Admin", role=StaffRole.STATE_ADMIN)
    resp = await client.get("/api/v1/nothing", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


async def test_the_openapi_document_lists_the_operations(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    assert "get" in doc["paths"]["/api/v1/me"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (dict(role=StaffRole.OFFICER, department="jal_shakti", level="block"), "area"),
        (dict(role=StaffRole.OFFICER, department="jal", level="block", area="theog"), "department"),
        (dict(role=StaffRole.OFFICER, level="block", area="shimla"), "area"),
        (dict(role=StaffRole.OFFICER, level="moon", area="theog"), "level"),
        (dict(role=StaffRole.DISTRICT_ADMIN), "district"),
        (dict(role=StaffRole.DISTRICT_ADMIN, district="mars"), "district"),
        (dict(role=StaffRole.AGENT, level="block"), "level"),
        (dict(role=StaffRole.STATE_ADMIN, phone="12"), "phone"),
        # An officer code names the config officer the account acts as: it must be that
        # officer's post (level, department, area), and only officers have one.
        (
            dict(
                role=StaffRole.OFFICER,
                department="jal_shakti",
                level="block",
                area="mashobra",
                officer_code="js_theog_je",
            ),
            "officer_code",
        ),
        (
            dict(
                role=StaffRole.OFFICER,
                department="jal_shakti",
                level="tehsil",
                area="theog",
                officer_code="js_theog_je",
            ),
            "officer_code",
        ),
        (
            dict(
                role=StaffRole.OFFICER,
                department="revenue",
                level="block",
                area="theog",
                officer_code="js_theog_je",
            ),
            "officer_code",
        ),
        (dict(role=StaffRole.AGENT, district="shimla", officer_code="bdo_desk"), "officer_code"),
    ],
)
async def test_staff_accounts_are_checked_against_the_config(
    client: TestClient[Any, Any], fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidStaff) as e:
        await add_staff(client.app[CONFIG], NewStaff(username="x", name="X", **fields), actor="t")
    assert e.value.field == field


@pytest.mark.parametrize(
    "fields",
    [
        dict(department="jal_shakti", level="block", area="theog", officer_code="js_theog_je"),
        dict(department="jal_shakti", level="block", area="mashobra", officer_code="bdo_desk"),
        dict(level="block", area="theog", officer_code="bdo_desk"),
        dict(department="jal_shakti", level="state", officer_code="js_state_ce"),
    ],
)
async def test_an_officer_code_matching_the_post_is_accepted(
    client: TestClient[Any, Any], fields: dict[str, Any]
) -> None:
    staff = await add_staff(
        client.app[CONFIG],
        NewStaff(username="x", name="X", role=StaffRole.OFFICER, **fields),
        actor="t",
    )
    assert staff.officer_code == fields["officer_code"]

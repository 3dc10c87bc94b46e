"""Every staff API operation does what its declaration says before its handler runs: a
role it does not declare gets 403, and a body or query its models refuse gets 400 naming
the field, whatever the path names (so a refusal never depends on what exists)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.storage.models import AuditRecord, Campaign, Complaint, StaffRole
from gateway.web.api.openapi import OPERATIONS, Operation

from .staff_helpers import ROLES, auth, make_staff_token

_PARAM = re.compile(r"\{[^}]+\}")


def _url(op: Operation) -> str:
    """The operation's path, every parameter naming something that does not exist."""
    return "/api/v1" + _PARAM.sub("123456789", op.path)


def _name(op: Operation) -> str:
    return f"{op.method} {op.path}"


@pytest.fixture
async def tokens(client: TestClient[Any, Any]) -> dict[StaffRole, str]:
    return {
        role: await make_staff_token(client, role.value, **ROLES[role.value]) for role in StaffRole
    }


async def _call(
    client: TestClient[Any, Any], op: Operation, token: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    resp = await client.request(op.method, _url(op), headers=auth(token), **kwargs)
    answer = await resp.json() if resp.content_type == "application/json" else {}
    return resp.status, answer.get("error") or {}


@pytest.mark.parametrize("op", OPERATIONS, ids=_name)
async def test_a_role_the_operation_does_not_declare_gets_403_before_anything(
    client: TestClient[Any, Any], tokens: dict[StaffRole, str], op: Operation
) -> None:
    audited = await AuditRecord.all().count()
    for role in StaffRole:
        # A body and a query its models refuse: the role is checked before either.
        status, error = await _call(client, op, tokens[role], json=[], params={"limit": "0"})
        if op.roles and role not in op.roles:
            assert (status, error.get("code")) == (403, "forbidden"), (_name(op), role)
            assert all(r.value in error["message"] for r in op.roles)
        else:
            assert error.get("code") != "forbidden", (_name(op), role, status, error)
    assert not await Complaint.exists() and not await Campaign.exists()
    assert await AuditRecord.all().count() == audited


def _allowed(op: Operation) -> StaffRole:
    return op.roles[0] if op.roles else StaffRole.STATE_ADMIN


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.body is not None], ids=_name)
async def test_the_body_is_parsed_as_declared_before_the_handler(
    client: TestClient[Any, Any], tokens: dict[StaffRole, str], op: Operation
) -> None:
    """An empty object misses the model's required fields: 400 naming one, although the
    path names nothing that exists (the handler would answer 404)."""
    assert op.body is not None
    required = {n for n, f in op.body.model_fields.items() if f.is_required()}
    assert required, _name(op)
    status, error = await _call(client, op, tokens[_allowed(op)], json={})
    assert (status, error.get("code")) == (400, "invalid"), (_name(op), error)
    assert error["field"] in required
    status, error = await _call(client, op, tokens[_allowed(op)], data=b"not json")
    assert (status, error.get("code")) == (400, "invalid_json"), (_name(op), error)


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.query is not None], ids=_name)
async def test_the_query_is_parsed_as_declared_before_the_handler(
    client: TestClient[Any, Any], tokens: dict[StaffRole, str], op: Operation
) -> None:
    """Each of the model's parameters, given a value no column takes, is refused by name."""
    assert op.query is not None
    for name, model_field in op.query.model_fields.items():
        param = model_field.alias or name
        status, error = await _call(client, op, tokens[_allowed(op)], params={param: "a\x00"})
        assert (status, error.get("field")) == (400, param), (_name(op), param, error)


def test_every_operation_declares_its_roles_as_staff_roles() -> None:
    assert OPERATIONS
    for op in OPERATIONS:
        assert all(isinstance(r, StaffRole) for r in op.roles), _name(op)
        assert len(set(op.roles)) == len(op.roles), _name(op)

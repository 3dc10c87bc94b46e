"""Making staff accounts and their tokens in tests (the real accounts code, no shortcuts)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from gateway.app import CONFIG
from gateway.staff.accounts import NewStaff, add_staff, issue_token
from gateway.storage.models import StaffRole

__all__ = ["ROLES", "auth", "make_staff_token"]

ROLES: dict[str, dict[str, Any]] = {
    "agent": dict(role=StaffRole.AGENT, district="shimla"),
    "officer": dict(
        role=StaffRole.OFFICER,
        department="jal_shakti",
        level="block",
        area="theog",
        officer_code="js_theog_je",
    ),
    "officer_elsewhere": dict(
        role=StaffRole.OFFICER, department="jal_shakti", level="block", area="chamba"
    ),
    "district_admin": dict(role=StaffRole.DISTRICT_ADMIN, district="shimla"),
    "district_admin_elsewhere": dict(role=StaffRole.DISTRICT_ADMIN, district="kangra"),
    "state_reviewer": dict(role=StaffRole.STATE_REVIEWER),
    "state_admin": dict(role=StaffRole.STATE_ADMIN),
}
"""One account of every kind, seen from a Jal Shakti complaint in Theog block (Shimla)."""


async def make_staff_token(client: TestClient[Any, Any], username: str, **fields: Any) -> str:
    """Create the account ``username`` with ``fields`` and return a fresh bearer token."""
    staff = await add_staff(
        client.app[CONFIG], NewStaff(username=username, name=username, **fields), actor="test"
    )
    return (await issue_token(staff, label="test", actor="test")).token


def auth(token: str, **extra: str) -> dict[str, str]:
    """Request headers carrying ``token``."""
    return {"Authorization": f"Bearer {token}", **extra}

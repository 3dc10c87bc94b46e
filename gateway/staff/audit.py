"""Audit records: staff actions that are not complaint events (tokens, campaigns, reports)."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from gateway.storage.models import AuditRecord, StaffMember

__all__ = ["actor_of", "audit"]


def actor_of(staff: StaffMember) -> str:
    """How a staff member is named on complaint events and audit records."""
    return f"staff:{staff.username}"


async def audit(
    actor: str,
    action: str,
    *,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> AuditRecord:
    """Record one staff action (in ``conn``'s transaction when given)."""
    return await AuditRecord.create(
        actor=actor, action=action, target=target, detail=detail, using_db=conn
    )

"""Database models (tortoise-orm). Times are stored in UTC."""

from __future__ import annotations

import enum

from tortoise import fields
from tortoise.models import Model

__all__ = [
    "Channel",
    "Citizen",
    "Complaint",
    "ComplaintEvent",
    "ComplaintStatus",
    "EventKind",
    "InboundMessage",
    "MessageStatus",
    "OutboundMessage",
    "UssdSession",
]


class ComplaintStatus(enum.StrEnum):
    REGISTERED = "registered"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    """Resolved by the officer, awaiting the citizen's feedback."""
    CLOSED = "closed"
    """The citizen said the problem is solved."""
    REOPENED = "reopened"
    CLOSED_NO_RESPONSE = "closed_no_response"
    TRANSFERRED = "transferred"


class Channel(enum.StrEnum):
    USSD = "ussd"
    SMS = "sms"
    PHONE_CALL = "phone_call"
    WEB = "web"


class EventKind(enum.StrEnum):
    REGISTERED = "registered"
    ASSIGNED = "assigned"
    STATUS_CHANGED = "status_changed"
    NOTE = "note"
    """A status update from the officer (आख्या)."""
    RESOLVED = "resolved"
    TRANSFERRED = "transferred"
    ESCALATED = "escalated"
    FEEDBACK = "feedback"
    REMINDED = "reminded"
    CLOSED = "closed"
    REOPENED = "reopened"
    FLAGGED = "flagged"
    """Past the last level: flagged for the state review."""
    CITIZEN_MESSAGE = "citizen_message"
    """Something the citizen wrote by SMS that the service did not act on, kept on record."""
    MESSAGE_FAILED = "message_failed"


class MessageStatus(enum.StrEnum):
    QUEUED = "queued"
    """Written, waiting for the worker."""
    SENDING = "sending"
    """Handed to the provider; no answer recorded yet."""
    RETRYING = "retrying"
    """A transient failure; the worker will try again."""
    SENT = "sent"
    """Accepted by the provider; a delivery report should follow."""
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (MessageStatus.DELIVERED, MessageStatus.FAILED)


class Citizen(Model):
    id = fields.IntField(primary_key=True)
    phone = fields.CharField(max_length=16, unique=True, description="E.164 with +")
    language = fields.CharField(max_length=12, null=True)
    opted_out = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    complaints: fields.ReverseRelation[Complaint]

    class Meta:
        table = "citizen"


class Complaint(Model):
    id = fields.IntField(primary_key=True)
    ticket = fields.CharField(max_length=16, unique=True, null=True)
    """Set from the row's id in the same transaction that creates it."""
    citizen: fields.ForeignKeyRelation[Citizen] = fields.ForeignKeyField(
        "models.Citizen", related_name="complaints", on_delete=fields.RESTRICT
    )
    language = fields.CharField(max_length=12)
    department = fields.CharField(max_length=40)
    issue_type = fields.CharField(max_length=40, null=True)
    description = fields.TextField(null=True)
    district = fields.CharField(max_length=40)
    tehsil = fields.CharField(max_length=40)
    block = fields.CharField(max_length=40)
    channel = fields.CharEnumField(Channel, max_length=12)
    status = fields.CharEnumField(
        ComplaintStatus, max_length=20, default=ComplaintStatus.REGISTERED
    )
    level = fields.SmallIntField(default=1)
    due_at = fields.DatetimeField()
    officer = fields.CharField(max_length=40, null=True, description="code of the officer")
    transfers = fields.SmallIntField(default=0)
    needs_review = fields.BooleanField(default=False, description="past the last level")
    resolved_at = fields.DatetimeField(null=True)
    reminded_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    source_key = fields.CharField(max_length=160, unique=True)
    """Identifies the request that created it (``ussd:<session id>``): a retry finds it."""
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    events: fields.ReverseRelation[ComplaintEvent]
    messages: fields.ReverseRelation[OutboundMessage]

    class Meta:
        table = "complaint"
        indexes = (("status", "due_at"), ("department", "district", "block"))


class ComplaintEvent(Model):
    """The complaint's audit trail: kept forever."""

    id = fields.IntField(primary_key=True)
    complaint: fields.ForeignKeyRelation[Complaint] = fields.ForeignKeyField(
        "models.Complaint", related_name="events", on_delete=fields.RESTRICT
    )
    kind = fields.CharEnumField(EventKind, max_length=20)
    actor = fields.CharField(max_length=64, description="citizen, system, officer:<id>, ...")
    from_status = fields.CharField(max_length=20, null=True)
    to_status = fields.CharField(max_length=20, null=True)
    remark = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "complaint_event"


class OutboundMessage(Model):
    """An SMS the system decided to send: written with the decision, delivered by the worker."""

    id = fields.IntField(primary_key=True)
    complaint: fields.ForeignKeyNullableRelation[Complaint] = fields.ForeignKeyField(
        "models.Complaint", related_name="messages", null=True, on_delete=fields.RESTRICT
    )
    recipient = fields.CharField(max_length=16)
    template = fields.CharField(max_length=60)
    language = fields.CharField(max_length=12)
    text = fields.TextField()
    encoding = fields.CharField(max_length=8)
    segments = fields.SmallIntField()
    dlt_template_id = fields.CharField(max_length=40, null=True)
    provider = fields.CharField(max_length=30)
    provider_message_id = fields.CharField(max_length=100, null=True, db_index=True)
    provider_status = fields.CharField(max_length=60, null=True)
    status = fields.CharEnumField(MessageStatus, max_length=12, default=MessageStatus.QUEUED)
    attempts = fields.SmallIntField(default=0)
    second_chance = fields.BooleanField(default=False, description="retried once after failing")
    last_error = fields.TextField(null=True)
    idempotency_key = fields.CharField(max_length=160, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    sent_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbound_message"
        indexes = (("status", "created_at"),)


class InboundMessage(Model):
    """An SMS received. Its provider ID makes a retried callback a no-op."""

    id = fields.IntField(primary_key=True)
    provider = fields.CharField(max_length=30)
    provider_message_id = fields.CharField(max_length=100)
    sender = fields.CharField(max_length=16)
    text = fields.TextField()
    received_at = fields.DatetimeField(auto_now_add=True)
    intent = fields.CharField(max_length=20, null=True)
    complaint: fields.ForeignKeyNullableRelation[Complaint] = fields.ForeignKeyField(
        "models.Complaint", related_name=False, null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "inbound_message"
        unique_together = (("provider", "provider_message_id"),)


class UssdSession(Model):
    """What is known of one USSD session, from its hops and the network's end notice."""

    id = fields.IntField(primary_key=True)
    session_id = fields.CharField(max_length=128, unique=True)
    phone = fields.CharField(max_length=16)
    service_code = fields.CharField(max_length=32)
    network_code = fields.CharField(max_length=16, null=True)
    language = fields.CharField(max_length=12, null=True)
    started_at = fields.DatetimeField(auto_now_add=True)
    ended_at = fields.DatetimeField(null=True)
    outcome = fields.CharField(max_length=30, null=True, description="what the session achieved")
    complaint: fields.ForeignKeyNullableRelation[Complaint] = fields.ForeignKeyField(
        "models.Complaint", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    end_status = fields.CharField(max_length=30, null=True, description="network: Success, ...")
    duration_ms = fields.IntField(null=True)
    hops = fields.SmallIntField(null=True)
    last_input = fields.TextField(null=True)
    last_response = fields.TextField(null=True)
    error_message = fields.TextField(null=True)
    cost = fields.CharField(max_length=40, null=True)

    class Meta:
        table = "ussd_session"

"""Database models (tortoise-orm). Times are stored in UTC."""

from __future__ import annotations

import enum
from typing import Any

from tortoise import fields
from tortoise.models import Model

__all__ = [
    "ApiToken",
    "AuditRecord",
    "Campaign",
    "CampaignContact",
    "CampaignStatus",
    "Channel",
    "Citizen",
    "Complaint",
    "ComplaintEvent",
    "ComplaintStatus",
    "EventKind",
    "InboundMessage",
    "MessageStatus",
    "OutboundMessage",
    "Setting",
    "StaffMember",
    "StaffRole",
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
    UNKNOWN = "unknown"
    """Sent, answer unknown: the request may have reached the provider but its answer was
    lost. A delivery report to the number settles it; without one it is sent once more
    (``worker.unknown_answer_retry_minutes`` after ``sent_at``)."""
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (MessageStatus.DELIVERED, MessageStatus.FAILED)


class StaffRole(enum.StrEnum):
    AGENT = "agent"
    """Call-centre agent: registers complaints for callers, updates them (a district, or all)."""
    OFFICER = "officer"
    """Bound to a department (or all) and one area at one escalation level."""
    DISTRICT_ADMIN = "district_admin"
    STATE_REVIEWER = "state_reviewer"
    """Reads everything, changes nothing."""
    STATE_ADMIN = "state_admin"


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    """Previewed, not yet started."""
    SENDING = "sending"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"
    """Every recipient handed to the outbox (delivery reports may still arrive)."""


class Citizen(Model):
    id = fields.IntField(primary_key=True)
    phone = fields.CharField(max_length=16, unique=True, description="E.164 with +")
    language = fields.CharField(max_length=12, null=True)
    latin_only = fields.BooleanField(
        default=False, description="the handset shows only Latin letters: SMS in GSM-7"
    )
    script = fields.CharField(
        max_length=4, null=True, description="ISO 15924: the script the handset draws, if marked"
    )
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
        # (due_at): the escalation job lists the overdue ones in due order; with most
        # complaints open, (status, due_at) leaves SQLite scanning the table.
        # (citizen_id, created_at): a number's complaints (this month's count before each
        # registration, "my complaints"); without it both read every complaint.
        # (district, status, due_at) and (status, level): the console's lists and counts
        # for a district's staff, and its open complaints per level for the state's.
        indexes = (
            ("status", "due_at"),
            ("department", "district", "block"),
            ("district", "status", "due_at"),
            ("status", "level"),
            ("created_at", "id"),
            ("due_at",),
            ("citizen_id", "created_at"),
        )


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
    officer = fields.CharField(
        max_length=40, null=True, description="who held the complaint when it happened"
    )
    """The officer code the complaint was with just before this event (the one an
    escalation or a reopening is held against); for registration, the first officer."""
    level = fields.SmallIntField(null=True, description="the complaint's level after it")
    due_at = fields.DatetimeField(null=True, description="the deadline in force before it")
    source_key = fields.CharField(max_length=160, unique=True, null=True)
    """Identifies the request that caused it (``inbound:<inbound message id>``), when a
    retry of that request must find it rather than act again."""
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "complaint_event"
        indexes = (("kind", "created_at"), ("complaint_id", "created_at"))


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
    essential = fields.BooleanField(
        default=False, db_default=False, description="sent to opted-out citizens too"
    )
    # db_default: rows written before it, and by raw inserts, count none.
    lost_answers = fields.SmallIntField(
        default=0, db_default=0, description="sends whose answer was lost (status unknown)"
    )
    next_attempt_at = fields.DatetimeField(null=True, description="when a retrying one is due")
    campaign: fields.ForeignKeyNullableRelation[Campaign] = fields.ForeignKeyField(
        "models.Campaign", related_name="messages", null=True, on_delete=fields.RESTRICT
    )
    last_error = fields.TextField(null=True)
    idempotency_key = fields.CharField(max_length=160, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    sent_at = fields.DatetimeField(null=True)
    """When the provider took it; for an ``unknown`` message, when the unanswered request
    was made."""
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbound_message"
        # (complaint_id): a complaint's messages (its detail for staff, its failures).
        indexes = (("status", "created_at"), ("campaign_id", "status"), ("complaint_id",))


class InboundMessage(Model):
    """An SMS received. Its provider ID finds it again when the provider retries the
    callback: a retry of a handled message is a no-op, of an unhandled one is acted on."""

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
    handled_at = fields.DatetimeField(null=True, description="acted on and answered")
    claimed_until = fields.DatetimeField(
        null=True, description="being handled (by one request) until then, unless it ends first"
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


class StaffMember(Model):
    """A member of district or state staff, or a call-centre agent, who uses the staff API.

    Scope (what complaints they may see and act on) follows from role, department, level and
    area: see :mod:`gateway.complaints.scope`.
    """

    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=40, unique=True)
    name = fields.CharField(max_length=80)
    role = fields.CharEnumField(StaffRole, max_length=20)
    department = fields.CharField(max_length=40, null=True, description="officers, null for all")
    level = fields.CharField(max_length=20, null=True, description="officers: a level code")
    area = fields.CharField(
        max_length=40, null=True, description="block, tehsil or district code for the level"
    )
    district = fields.CharField(max_length=40, null=True, description="district admins, agents")
    officer_code = fields.CharField(
        max_length=40, null=True, description="the config officer this account acts as"
    )
    phone = fields.CharField(max_length=16, null=True)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    password_hash = fields.CharField(
        max_length=200,
        null=True,
        description="argon2id hash for the console (null: cannot sign in)",
    )
    console_language = fields.CharField(
        max_length=10, null=True, description="the console language chosen by the member"
    )
    password_link_hash = fields.CharField(
        max_length=64,
        null=True,
        description="SHA-256 of the secret of a one-time set-password link",
    )
    password_link_expires_at = fields.DatetimeField(null=True)

    tokens: fields.ReverseRelation[ApiToken]

    class Meta:
        table = "staff_member"


class ApiToken(Model):
    """A bearer token for the staff API: only its SHA-256 is kept."""

    id = fields.IntField(primary_key=True)
    staff: fields.ForeignKeyRelation[StaffMember] = fields.ForeignKeyField(
        "models.StaffMember", related_name="tokens", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=12, description="shown in listings to tell tokens apart")
    label = fields.CharField(max_length=80, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_token"


class AuditRecord(Model):
    """A staff action that is not a complaint event (tokens, campaigns, reports): kept forever."""

    id = fields.IntField(primary_key=True)
    actor = fields.CharField(max_length=64, description="staff:<username>, cli, system")
    action = fields.CharField(max_length=40)
    target = fields.CharField(max_length=80, null=True)
    detail: dict[str, Any] | None = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "audit_record"
        indexes = (("actor", "created_at"),)


class Campaign(Model):
    """A bulk status notification: one DLT template to many citizens, each in their language.

    Its recipients are :class:`OutboundMessage` rows carrying its ID (written in batches as
    the campaign proceeds; the idempotency key ``campaign:<id>:<phone>`` de-duplicates).
    """

    id = fields.IntField(primary_key=True)
    created_by: fields.ForeignKeyRelation[StaffMember] = fields.ForeignKeyField(
        "models.StaffMember", related_name="campaigns", on_delete=fields.RESTRICT
    )
    status = fields.CharEnumField(CampaignStatus, max_length=12, default=CampaignStatus.DRAFT)
    template = fields.CharField(max_length=60)
    variables: dict[str, str] = fields.JSONField(
        description="template variables, same in every language"
    )
    audience: dict[str, Any] = fields.JSONField(
        description="{'filter': {...}} or {'csv': <upload id>}"
    )
    scope: dict[str, Any] = fields.JSONField(description="the creator's scope when it was made")
    essential = fields.BooleanField(default=False, description="sent to opted-out citizens too")
    recipients_total = fields.IntField(default=0)
    segments_total = fields.IntField(default=0)
    skipped = fields.IntField(default=0, description="opted out, or not a phone number")
    cursor = fields.CharField(
        max_length=40, null=True, description="where writing recipients stopped (resumable)"
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)

    messages: fields.ReverseRelation[OutboundMessage]

    class Meta:
        table = "campaign"


class CampaignContact(Model):
    """A phone number of a campaign's uploaded CSV audience (de-duplicated per campaign)."""

    id = fields.IntField(primary_key=True)
    campaign: fields.ForeignKeyRelation[Campaign] = fields.ForeignKeyField(
        "models.Campaign", related_name="contacts", on_delete=fields.CASCADE
    )
    phone = fields.CharField(max_length=16)

    class Meta:
        table = "campaign_contact"
        unique_together = (("campaign", "phone"),)
        # Sending walks a campaign's numbers in id order, a batch at a time.
        indexes = (("campaign_id", "id"),)


class Setting(Model):
    """A value the gateway chose at its first start and keeps (the ticket key)."""

    name = fields.CharField(max_length=64, primary_key=True)
    value = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "setting"


class MissedCall(Model):
    """A missed call to the helpline's number, and whether the caller was texted back (at
    most once an hour per number). Its provider ID makes a retried callback a no-op."""

    id = fields.IntField(primary_key=True)
    provider = fields.CharField(max_length=30)
    call_id = fields.CharField(max_length=100)
    phone = fields.CharField(max_length=16)
    called = fields.CharField(max_length=20, null=True)
    received_at = fields.DatetimeField()
    replied = fields.BooleanField(default=False, description="an SMS went back for it")

    class Meta:
        table = "missed_call"
        unique_together = (("provider", "call_id"),)
        indexes = (("phone", "received_at"),)

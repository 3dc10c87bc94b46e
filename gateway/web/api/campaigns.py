"""``/campaigns``: bulk status notifications (preview, create, upload numbers, steer, follow).

District administrators, officers and state administrators send; state reviewers may
only read; agents may not touch campaigns (403). A campaign outside the caller's scope is
answered 404, like one that does not exist, and a filter audience is always narrowed to
the caller's scope.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, model_validator

from gateway.campaigns.audience import ComplaintFilter, campaign_scope
from gateway.campaigns.progress import progress
from gateway.campaigns.service import CampaignConflict, Campaigns
from gateway.staff.audit import actor_of, audit
from gateway.storage.models import Campaign, ComplaintStatus, StaffRole
from gateway.text.csv_numbers import parse_numbers
from gateway.web.api.common import (
    ApiError,
    request_body,
    request_scope,
    request_staff,
)
from gateway.web.api.openapi import operation
from gateway.web.keys import CAMPAIGNS, CLOCK, CONFIG

__all__ = ["routes"]

routes = web.RouteTableDef()

SENDERS = (StaffRole.OFFICER, StaffRole.DISTRICT_ADMIN, StaffRole.STATE_ADMIN)
READERS = (*SENDERS, StaffRole.STATE_REVIEWER)
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
"""A CSV upload's limit (some 1,000,000 numbers); read as a stream, never held whole."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilterIn(_In):
    department: str | None = None
    district: str | None = None
    tehsil: str | None = None
    block: str | None = None
    statuses: list[ComplaintStatus] = []
    open_only: bool = False
    """Only complaints not yet resolved or closed."""


class AudienceIn(_In):
    """Exactly one of ``filter`` (complaints in the caller's scope) and ``csv`` (phone
    numbers, one a row, first column, any of ``,;|`` or tab between columns; ``""`` to
    upload them afterwards)."""

    filter: FilterIn | None = None
    csv: str | None = None

    @model_validator(mode="after")
    def _one(self) -> AudienceIn:
        if (self.filter is None) == (self.csv is None):
            raise ValueError("give exactly one of filter and csv")
        return self


class CampaignIn(_In):
    template: str
    variables: dict[str, str] = {}
    audience: AudienceIn


class PreviewOut(BaseModel):
    recipients: int
    skipped_opted_out: int
    languages: dict[str, int]
    segments_per_message: dict[str, int]
    total_segments: int
    essential: bool
    outside_scope: int
    """CSV numbers with no complaint in your scope: counted, not broken down."""
    csv: dict[str, Any] | None = None
    """A CSV audience's report: numbers, duplicates, the rows refused (``refused``, the
    first 20 with line number and reason; ``refused_by_reason``, all counted)."""


class ProgressOut(BaseModel):
    status: str
    expected: int
    """The audience size the preview counted."""
    recipients: int
    """Messages written so far (all of them once all_written)."""
    all_written: bool
    queued: int
    sent: int
    delivered: int
    failed: int
    cancelled: int
    skipped: int
    unknown: int
    """Handed to the provider with the answer lost: a delivery report or one more try
    (after ``worker.unknown_answer_retry_minutes``) settles them."""
    waiting_until: str | None
    """Set while quiet hours hold a sending campaign: when sending resumes (ISO 8601)."""


class CampaignOut(BaseModel):
    id: int
    status: str
    template: str
    variables: dict[str, str]
    audience: dict[str, Any]
    essential: bool
    created_by: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    recipients_total: int
    """The preview's audience size (when it was last computed)."""
    segments_total: int
    progress: ProgressOut
    csv: dict[str, Any] | None = None


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]


def _service(request: web.Request) -> Campaigns:
    return request.config_dict[CAMPAIGNS]


def _filter(f: FilterIn) -> ComplaintFilter:
    return ComplaintFilter(
        department=f.department,
        district=f.district,
        tehsil=f.tehsil,
        block=f.block,
        statuses=tuple(s.value for s in f.statuses),
        open_only=f.open_only,
    )


def _conflict(e: CampaignConflict) -> ApiError:
    return ApiError(409, "conflict", str(e))


async def _out(
    request: web.Request, campaign: Campaign, csv: dict[str, Any] | None = None
) -> dict[str, Any]:
    got = await progress(
        campaign, config=request.config_dict[CONFIG], now=request.config_dict[CLOCK]()
    )
    out = CampaignOut(
        id=campaign.id,
        status=campaign.status.value,
        template=campaign.template,
        variables=campaign.variables,
        audience=campaign.audience,
        essential=campaign.essential,
        created_by=campaign.created_by_id,  # type: ignore[attr-defined]
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
        recipients_total=campaign.recipients_total,
        segments_total=campaign.segments_total,
        progress=ProgressOut(**got.as_json()),
        csv=csv,
    )
    return out.model_dump(mode="json")


async def _campaign(request: web.Request) -> Campaign:
    try:
        campaign_id = int(request.match_info["id"])
    except ValueError:
        raise ApiError.not_found("campaign") from None
    if not 0 < campaign_id < 2**31:  # Campaign.id is a 32-bit integer column
        raise ApiError.not_found("campaign")
    campaign = await _service(request).get(request_scope(request), campaign_id)
    if campaign is None:
        raise ApiError.not_found("campaign")
    return campaign


@operation(
    routes,
    "POST",
    "/campaigns/preview",
    summary="What a campaign would send: audience size, languages, segments, total cost",
    roles=SENDERS,
    body=CampaignIn,
    response=PreviewOut,
    status=200,
)
async def preview(request: web.Request) -> web.Response:
    body = request_body(request, CampaignIn)
    campaigns = _service(request)
    scope = campaign_scope(request_scope(request), campaigns.config)
    csv: dict[str, Any] | None = None
    if body.audience.filter is not None:
        result = await campaigns.preview_filter(
            scope, body.template, body.variables, _filter(body.audience.filter)
        )
    else:
        numbers, report = await asyncio.to_thread(
            parse_numbers, body.audience.csv or "", region=campaigns.config.service.country
        )
        result = await campaigns.preview_numbers(scope, body.template, body.variables, numbers)
        csv = report.as_json()
    await audit(
        actor_of(request_staff(request)),
        "campaign.preview",
        detail={"template": body.template, "recipients": result.recipients},
    )
    out = PreviewOut(**result.as_json(), csv=csv)
    return web.json_response(out.model_dump())


async def _text_of(text: str) -> AsyncIterator[str]:
    yield text


@operation(
    routes,
    "POST",
    "/campaigns",
    summary="Create a draft campaign (a filter audience, or CSV numbers inline or uploaded)",
    roles=SENDERS,
    body=CampaignIn,
    response=CampaignOut,
)
async def create(request: web.Request) -> web.Response:
    staff = request_staff(request)
    body = request_body(request, CampaignIn)
    campaigns = _service(request)
    actor = actor_of(staff)
    audience = body.audience.filter
    csv: dict[str, Any] | None = None
    try:
        campaign = await campaigns.create(
            staff,
            request_scope(request),
            template=body.template,
            variables=body.variables,
            audience=_filter(audience) if audience is not None else None,
            actor=actor,
        )
        if body.audience.csv:
            report = await campaigns.add_numbers(campaign, _text_of(body.audience.csv), actor=actor)
            csv = report.as_json()
    except CampaignConflict as e:
        raise _conflict(e) from None
    await campaign.refresh_from_db()
    return web.json_response(await _out(request, campaign, csv), status=201)


@operation(
    routes,
    "GET",
    "/campaigns",
    summary="Campaigns in the caller's scope, newest first (at most 100)",
    roles=READERS,
    response=CampaignList,
)
async def list_campaigns(request: web.Request) -> web.Response:
    campaigns = _service(request)
    scope = request_scope(request)
    found: list[dict[str, Any]] = []
    # Newest first; scope is checked per campaign (their stored scopes are small JSON).
    for c in await Campaign.all().order_by("-id").limit(500):
        if await campaigns.get(scope, c.id) is not None:
            found.append(await _out(request, c))
        if len(found) >= 100:
            break
    return web.json_response({"campaigns": found})


@operation(
    routes,
    "GET",
    "/campaigns/{id}",
    summary="A campaign and its progress (queued, sent, delivered, failed)",
    roles=READERS,
    response=CampaignOut,
)
async def detail(request: web.Request) -> web.Response:
    return web.json_response(await _out(request, await _campaign(request)))


async def _body_text(request: web.Request) -> AsyncIterator[str]:
    """The request body as text, read as a stream (never the whole upload in memory);
    UTF-8, a byte-order mark dropped."""
    size = 0
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise ApiError(413, "too_large", f"the upload is larger than {MAX_UPLOAD_BYTES} bytes")
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


@operation(
    routes,
    "POST",
    "/campaigns/{id}/numbers",
    summary="Upload phone numbers (text/csv, first column) to a draft CSV campaign",
    roles=SENDERS,
    response=CampaignOut,
    body_media_type="text/csv",
)
async def upload(request: web.Request) -> web.Response:
    staff = request_staff(request)
    campaign = await _campaign(request)
    if request.content_type not in ("text/csv", "text/plain"):
        raise ApiError(415, "unsupported_media_type", "send the numbers as text/csv", field="body")
    try:
        report = await _service(request).add_numbers(
            campaign, _body_text(request), actor=actor_of(staff)
        )
    except CampaignConflict as e:
        raise _conflict(e) from None
    await campaign.refresh_from_db()
    return web.json_response(await _out(request, campaign, report.as_json()))


def _action(name: str, summary: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        campaign = await _campaign(request)
        campaigns = _service(request)
        try:
            campaign = await getattr(campaigns, name)(
                campaign, actor=actor_of(request_staff(request))
            )
        except CampaignConflict as e:
            raise _conflict(e) from None
        return web.json_response(await _out(request, campaign))

    handler.__name__ = name
    operation(
        routes,
        "POST",
        f"/campaigns/{{id}}/{name}",
        summary=summary,
        roles=SENDERS,
        response=CampaignOut,
        extra_responses={409: "The campaign's status does not allow it"},
    )(handler)


_action("start", "Start sending a draft campaign")
_action("pause", "Pause a campaign that is sending")
_action("resume", "Resume a paused campaign")
_action("cancel", "Cancel a campaign (what was sent stays sent)")

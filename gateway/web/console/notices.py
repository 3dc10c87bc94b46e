"""Bulk notices (campaigns) in the console: compose, audience, preview, start, progress.

The staff API's roles (:data:`gateway.web.api.campaigns.SENDERS` send, ``READERS`` look)
and its domain calls (:class:`gateway.campaigns.service.Campaigns`) with the signed-in
member's scope, so that the browser and the API allow and refuse the same things: a
filter audience is narrowed to the scope, a campaign outside it is a 404.

Previewing makes a draft (its CSV numbers stored, the refused rows listed): its page is the
preview, with the text in each language of its audience, the cost and the start buttons;
once started, the same page shows the progress, polled by ``notices.js``.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp_session import get_session

from gateway.campaigns.audience import ComplaintFilter
from gateway.campaigns.progress import Progress, progress
from gateway.campaigns.quiet_hours import in_quiet_hours
from gateway.campaigns.service import CampaignConflict, Campaigns, Preview
from gateway.errors import FieldError
from gateway.staff.audit import actor_of
from gateway.storage.models import Campaign, CampaignStatus, StaffMember, StaffRole
from gateway.text.csv_numbers import CsvReport
from gateway.web.api.campaigns import READERS, SENDERS
from gateway.web.console.pages import render
from gateway.web.console.session import current_scope, current_staff, flash
from gateway.web.console.text import C_
from gateway.web.keys import CAMPAIGNS, CLOCK, CONFIG

__all__ = ["UPLOAD_LIMIT", "routes", "upload_middleware"]

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

UPLOAD_LIMIT = 4 * 1024 * 1024
"""The compose form's largest body: a CSV file of some 250,000 numbers (larger lists go
through the API's streamed upload)."""
MAX_SEGMENTS = 2
"""More segments than this in a language: the compose page warns (each costs again)."""
UPLOAD_PIECE = 64 * 1024


@web.middleware
async def upload_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Lets the compose form (with its CSV file) be up to :data:`UPLOAD_LIMIT`: the
    gateway's own limit (every other form, and the callbacks) is far smaller, and the
    request's limit is the root application's."""
    if request.method == "POST" and request.path == "/console/notices":
        await get_session(request)  # loaded on the original: the session middleware saves it
        request = request.clone(client_max_size=UPLOAD_LIMIT)
    return await handler(request)


def _staff(request: web.Request, roles: tuple[StaffRole, ...]) -> StaffMember:
    staff = current_staff(request)
    if StaffRole(staff.role) not in roles:
        raise web.HTTPForbidden(text="403: bulk notices are not for your role")
    return staff


def _service(request: web.Request) -> Campaigns:
    return request.config_dict[CAMPAIGNS]


async def _campaign(request: web.Request) -> Campaign:
    raw = request.match_info["id"]
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise web.HTTPNotFound()
    campaign = await _service(request).get(current_scope(request), int(raw))
    if campaign is None:
        raise web.HTTPNotFound()
    return campaign


def _bulk_templates(campaigns: Campaigns) -> list[Any]:
    return [t for t in campaigns.templates if t.bulk]


def _values(form: Any) -> dict[str, str]:
    keys = ("template", "audience", "department", "district", "block", "open_only")
    values = {k: str(form.get(k, "")).strip()[:80] for k in keys}
    for k, v in form.items():
        if k.startswith("var_") and isinstance(v, str):
            values[k] = v.strip()
    return values


def _filter(values: dict[str, str]) -> ComplaintFilter:
    return ComplaintFilter(
        department=values.get("department") or None,
        district=values.get("district") or None,
        block=values.get("block") or None,
        open_only=values.get("open_only") == "yes",
    )


def _variables(campaigns: Campaigns, values: dict[str, str]) -> dict[str, str]:
    name = values.get("template", "")
    tpl = next((t for t in _bulk_templates(campaigns) if t.name == name), None)
    if tpl is None:
        raise FieldError("template", "choose a bulk template")
    return {v: values.get(f"var_{v}", "") for v in tpl.variables}


async def _compose(
    request: web.Request, *, values: dict[str, str], error: str | None = None, status: int = 200
) -> web.Response:
    campaigns = _service(request)
    return await render(
        request,
        "notice_new.html",
        status=status,
        templates=_bulk_templates(campaigns),
        values=values,
        error=error,
        config=request.config_dict[CONFIG],
    )


@routes.get("/notices")
async def notices_page(request: web.Request) -> web.StreamResponse:
    staff = _staff(request, READERS)
    config, now = request.config_dict[CONFIG], request.config_dict[CLOCK]()
    found = await _service(request).visible(current_scope(request))
    rows = [(c, await progress(c, config=config, now=now)) for c in found]
    return await render(
        request,
        "notices.html",
        rows=rows,
        sends=StaffRole(staff.role) in SENDERS,
        campaign_labels=CAMPAIGN_LABELS,
    )


@routes.get("/notices/new")
async def new_page(request: web.Request) -> web.StreamResponse:
    _staff(request, SENDERS)
    values = {k: v[:80] for k, v in request.query.items()}
    values.setdefault("audience", "filter")
    return await _compose(request, values=values)


async def _pieces(raw: bytes) -> AsyncIterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    for i in range(0, len(raw), UPLOAD_PIECE):
        yield decoder.decode(raw[i : i + UPLOAD_PIECE])
    yield decoder.decode(b"", final=True)


@routes.post("/notices")
async def create(request: web.Request) -> web.StreamResponse:
    """Make a draft from the compose form (a CSV file in it, or a filter), and show its
    preview (with the CSV's refused rows)."""
    staff = _staff(request, SENDERS)
    form = await request.post()
    values = _values(form)
    campaigns = _service(request)
    upload = form.get("csv")
    use_csv = values["audience"] == "csv"
    if use_csv and not isinstance(upload, web.FileField):
        return await _compose(request, values=values, error="csv: choose a file", status=400)
    try:
        variables = _variables(campaigns, values)
        campaign = await campaigns.create(
            staff,
            current_scope(request),
            template=values["template"],
            variables=variables,
            audience=None if use_csv else _filter(values),
            actor=actor_of(staff),
        )
        report = None
        if isinstance(upload, web.FileField) and use_csv:
            raw = upload.file.read()
            report = await campaigns.add_numbers(campaign, _pieces(raw), actor=actor_of(staff))
    except FieldError as e:
        return await _compose(request, values=values, error=str(e), status=400)
    await campaign.refresh_from_db()
    return await _show(request, campaign, report=report)


async def _show(
    request: web.Request, campaign: Campaign, *, report: CsvReport | None = None
) -> web.Response:
    config, now = request.config_dict[CONFIG], request.config_dict[CLOCK]()
    staff = current_staff(request)
    campaigns = _service(request)
    got = await progress(campaign, config=config, now=now)
    preview = texts = None
    if campaign.status is CampaignStatus.DRAFT:
        preview = await campaigns.refresh_totals(campaign)
        texts = _texts(campaigns, campaign, preview)
    quiet = config.bulk.quiet_hours
    tz = ZoneInfo(config.service.timezone)
    return await render(
        request,
        "notice.html",
        campaign=campaign,
        progress=got,
        percent=_percent(got),
        preview=preview,
        texts=texts,
        report=report,
        cost=_cost(config.bulk.price_per_segment, preview),
        currency=config.bulk.currency,
        quiet=quiet,
        quiet_now=in_quiet_hours(config, now),
        start_min=(now + timedelta(minutes=5)).astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        sends=StaffRole(staff.role) in SENDERS,
        max_segments=MAX_SEGMENTS,
        campaign_labels=CAMPAIGN_LABELS,
        default_language=config.service.default_language,
        refused_labels=REFUSED_LABELS,
    )


def _texts(campaigns: Campaigns, campaign: Campaign, preview: Preview) -> list[Any]:
    """The message in each language of the audience (the default language's when none is
    known: numbers outside the scope get their own language, or that one)."""
    rendered = campaigns.render_all(campaign.template, campaign.variables)
    default = campaigns.config.service.default_language
    wanted = list(preview.languages) or [default]
    if preview.outside_scope and default not in wanted:
        wanted.append(default)
    return [
        (lang, preview.languages.get(lang, 0) + (preview.outside_scope if lang == default else 0),
         rendered[lang])
        for lang in wanted
    ]  # fmt: skip


def _cost(price: float, preview: Preview | None) -> str | None:
    if preview is None or price <= 0:
        return None
    return f"{preview.total_segments * price:,.2f}"


def _percent(got: Progress) -> int:
    """Settled (sent, delivered, failed, unknown, cancelled) of the expected audience."""
    total = max(got.expected, got.recipients)
    if total == 0:
        return 100 if got.status == CampaignStatus.DONE.value else 0
    done = got.sent + got.delivered + got.failed + got.cancelled + got.unknown
    return min(100, done * 100 // total)


@routes.get("/notices/{id}")
async def campaign_page(request: web.Request) -> web.StreamResponse:
    _staff(request, READERS)
    return await _show(request, await _campaign(request))


@routes.get("/notices/{id}/progress")
async def progress_json(request: web.Request) -> web.StreamResponse:
    """The counts ``notices.js`` polls (the API's progress, and the bar's percent)."""
    _staff(request, READERS)
    campaign = await _campaign(request)
    config, now = request.config_dict[CONFIG], request.config_dict[CLOCK]()
    got = await progress(campaign, config=config, now=now)
    return web.json_response({**got.as_json(), "percent": _percent(got)})


def _start_time(request: web.Request, raw: str) -> datetime | None:
    """The form's local date-time (service time zone) as an aware time; None: now."""
    if not raw:
        return None
    config = request.config_dict[CONFIG]
    try:
        local = datetime.strptime(raw[:16], "%Y-%m-%dT%H:%M")
    except ValueError:
        raise FieldError("at", "a date and time, like 2026-05-01T10:00") from None
    return local.replace(tzinfo=ZoneInfo(config.service.timezone)).astimezone(UTC)


async def _steer(request: web.Request, name: str) -> web.StreamResponse:
    staff = _staff(request, SENDERS)
    campaign = await _campaign(request)
    campaigns = _service(request)
    actor = actor_of(staff)
    try:
        if name == "start":
            form = await request.post()
            when = str(form.get("when", "now"))
            at = _start_time(request, str(form.get("at", ""))) if when == "at" else None
            await campaigns.start(campaign, actor=actor, at=at)
        else:
            await getattr(campaigns, name)(campaign, actor=actor)
    except (FieldError, CampaignConflict) as e:
        await flash(request, "{problem}", kind="error", problem=str(e))
    else:
        await flash(request, STEERED[name])
    raise web.HTTPSeeOther(f"/console/notices/{campaign.id}")


CAMPAIGN_LABELS = {
    "draft": C_("draft"),
    "sending": C_("sending"),
    "paused": C_("paused"),
    "cancelled": C_("cancelled"),
    "done": C_("done"),
}
REFUSED_LABELS = {
    "not_a_number": C_("not a phone number"),
    "invalid": C_("not a valid number"),
    "foreign": C_("a number of another country"),
    "landline": C_("a landline"),
    "toll_free": C_("a toll-free number"),
    "premium_rate": C_("a premium-rate number"),
    "not_mobile": C_("not a mobile number"),
    "no_number": C_("no number in the row"),
    "unreadable": C_("unreadable"),
}
"""A CSV row's reason (:class:`gateway.text.phone.PhoneProblem` and the file's own)."""
STEERED = {
    "start": C_("The notice is on its way."),
    "pause": C_("Paused."),
    "resume": C_("Resumed."),
    "cancel": C_("Cancelled: what was sent stays sent."),
}


def _steering(name: str) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _steer(request, name)

    handler.__name__ = f"notice_{name}"
    routes.post(f"/notices/{{id}}/{name}")(handler)


for _name in STEERED:
    _steering(_name)

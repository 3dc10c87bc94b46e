"""Bulk notices in the console over HTTP: the API's roles and scope, a CSV upload with its
refused rows, the preview's texts and cost, start, progress, pause, resume and cancel."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import FormData
from aiohttp.test_utils import TestClient

from gateway.storage.models import Campaign, CampaignStatus, OutboundMessage, StaffRole
from gateway.web.console.notices import MAX_SEGMENTS
from tests.test_api_campaigns import ACCOUNTS, FILTER_BODY, bulk_client, tokens
from tests.test_campaigns import VARIABLES, complaint, number, run_bulk
from tests.test_console import PASSWORD, csrf, sign_in

__all__ = ["bulk_client"]  # the fixture, used by name


async def _accounts(client: TestClient[Any, Any]) -> dict[str, dict[str, str]]:
    from gateway.staff.passwords import set_password
    from gateway.storage.models import StaffMember

    auth = await tokens(client)
    for username in ACCOUNTS:
        await set_password(await StaffMember.get(username=username), PASSWORD, actor="test")
    return auth


def _form(token: str, **fields: str) -> dict[str, str]:
    base = {"csrf": token, "template": "area_update", "audience": "filter"}
    base.update({f"var_{k}": v for k, v in VARIABLES.items()})
    return {**base, **fields}


def _csv_form(token: str, text: str) -> FormData:
    data = FormData()
    for name, value in _form(token, audience="csv").items():
        data.add_field(name, value)
    data.add_field("csv", text.encode(), filename="numbers.csv", content_type="text/csv")
    return data


def _id_of(html: str) -> int:
    found = re.search(r'action="/console/notices/(\d+)/start"', html)
    assert found, html[:800]
    return int(found.group(1))


async def test_the_console_allows_and_refuses_what_the_api_does(
    bulk_client: TestClient[Any, Any],
) -> None:
    client = bulk_client
    auth = await _accounts(client)
    await complaint(number(1))
    await complaint(number(2), block="dharamshala")  # Kangra
    for username, (role, _) in ACCOUNTS.items():
        api = await client.post(
            "/api/v1/campaigns/preview", json=FILTER_BODY, headers=auth[username]
        )
        assert (await sign_in(client, username))[0] == 303
        token = await csrf(client)
        listing = await client.get("/console/notices")
        made = await client.post("/console/notices", data=_form(token, block="theog"))
        if role is StaffRole.AGENT:  # no campaigns at all
            assert api.status == 403 and listing.status == 403 and made.status == 403
        elif role is StaffRole.STATE_REVIEWER:  # reads them, sends none
            assert api.status == 403 and made.status == 403 and listing.status == 200
        else:
            assert api.status == 200 and made.status == 200, username
        await client.post("/console/signout", data={"csrf": token})
    assert not await Campaign.filter(created_by__username__in=["agent", "reviewer"]).exists()


async def test_a_filter_outside_the_scope_reaches_no_one_as_in_the_api(
    bulk_client: TestClient[Any, Any],
) -> None:
    client = bulk_client
    auth = await _accounts(client)
    await complaint(number(1), block="dharamshala")  # Kangra: not dc_shimla's
    body = {**FILTER_BODY, "audience": {"filter": {"district": "kangra"}}}
    api = await client.post("/api/v1/campaigns/preview", json=body, headers=auth["dc_shimla"])
    assert api.status == 200 and (await api.json())["recipients"] == 0
    await sign_in(client, "dc_shimla")
    token = await csrf(client)
    page = await client.post("/console/notices", data=_form(token, district="kangra"))
    html = await page.text()
    assert page.status == 200
    assert re.search(r'class="recipients">0<', html)
    started = await client.post(
        f"/console/notices/{_id_of(html)}/start", data={"csrf": token, "when": "now"}
    )
    assert "no recipients" in await started.text()
    assert (await Campaign.get(id=_id_of(html))).status is CampaignStatus.DRAFT
    # Another district's notice is not found, as in the API.
    theirs = await client.post("/api/v1/campaigns", json=body, headers=auth["dc_kullu"])
    other = (await theirs.json())["id"]
    assert (await client.get(f"/console/notices/{other}")).status == 404
    assert (await client.get(f"/console/notices/{other}/progress")).status == 404
    pause = await client.post(f"/console/notices/{other}/cancel", data={"csrf": token})
    assert pause.status == 404
    assert (await Campaign.get(id=other)).status is CampaignStatus.DRAFT


async def test_a_csv_notice_from_upload_to_done_with_pause_and_resume(
    bulk_client: TestClient[Any, Any],
) -> None:
    client = bulk_client
    await _accounts(client)
    await complaint(number(1), language="hi")
    await complaint(number(3), language="en_IN", citizen_language="en_IN")
    await sign_in(client, "dc_shimla")
    token = await csrf(client)
    csv = f"phone\n{number(1)}\n{number(2)}\nnot a number\n{number(3)}\n{number(2)}\n12\n"
    page = await client.post("/console/notices", data=_csv_form(token, csv))
    html = await page.text()
    assert page.status == 200, html[:500]
    assert "Rows refused" in html and re.search(r"<td[^>]*>4</td>", html)  # line 4 refused
    assert "Theog" in html and "UCS2" in html and "GSM7" in html  # Hindi and English texts
    assert "INR" in html  # the estimated cost
    campaign_id = _id_of(html)
    assert (await Campaign.get(id=campaign_id)).recipients_total == 3
    start = await client.post(
        f"/console/notices/{campaign_id}/start",
        data={"csrf": token, "when": "now"},
        allow_redirects=False,
    )
    assert start.status == 303
    pause = await client.post(f"/console/notices/{campaign_id}/pause", data={"csrf": token})
    assert pause.status == 200 and "Resume" in await pause.text()
    resumed = await client.post(f"/console/notices/{campaign_id}/resume", data={"csrf": token})
    assert "Pause" in await resumed.text()
    await run_bulk(client)
    got = await (await client.get(f"/console/notices/{campaign_id}/progress")).json()
    assert got["status"] == "done" and got["percent"] == 100 and got["sent"] + got["delivered"] == 3
    listing = await (await client.get("/console/notices")).text()
    assert f'href="/console/notices/{campaign_id}"' in listing
    # A form without its token, and a notice's buttons from an expired form: refused.
    no_token = await client.post(f"/console/notices/{campaign_id}/cancel", data={})
    assert no_token.status == 403


async def test_a_long_value_warns_and_bad_input_names_the_field(
    bulk_client: TestClient[Any, Any],
) -> None:
    client = bulk_client
    await _accounts(client)
    await complaint(number(1), language="hi")
    await sign_in(client, "je_theog")
    token = await csrf(client)
    long = "पानी की आपूर्ति बहाल हुई है अब"  # 30 characters of Devanagari: 3 UCS-2 segments
    page = await client.post(
        "/console/notices", data=_form(token, var_update=long, var_place=long, var_service=long)
    )
    html = await page.text()
    assert page.status == 200 and f"Longer than {MAX_SEGMENTS} segments" in html
    for bad, field in (
        ({"template": "complaint_registered"}, "template"),
        ({"var_place": ""}, "variables.place"),
        ({"var_place": "x" * 31}, "variables.place"),
        ({"block": "nowhere"}, "audience.filter.block"),
        ({"audience": "csv"}, "csv"),
    ):
        answer = await client.post("/console/notices", data=_form(token, **bad))
        assert answer.status == 400 and field in await answer.text(), bad
    for path in ("/console/notices/0", "/console/notices/x", "/console/notices/" + "9" * 20):
        assert (await client.get(path)).status == 404
    when = await client.post("/console/notices/1/start", data={"csrf": token, "when": "at"})
    assert when.status in (200, 404)


async def test_a_notice_started_for_later_waits_for_its_time(
    bulk_client: TestClient[Any, Any],
) -> None:
    """In the console and the API alike (the same domain call): nothing goes before then."""
    client = bulk_client
    auth = await _accounts(client)
    await complaint(number(1))
    await sign_in(client, "dc_shimla")
    token = await csrf(client)
    html = await (await client.post("/console/notices", data=_form(token, block="theog"))).text()
    campaign_id = _id_of(html)
    later = datetime.now(ZoneInfo("Asia/Kolkata")) + timedelta(hours=2)
    too_late = later + timedelta(days=31)
    refused = await client.post(
        f"/console/notices/{campaign_id}/start",
        data={"csrf": token, "when": "at", "at": too_late.strftime("%Y-%m-%dT%H:%M")},
    )
    assert "at most 30 days ahead" in await refused.text()
    start = await client.post(
        f"/console/notices/{campaign_id}/start",
        data={"csrf": token, "when": "at", "at": later.strftime("%Y-%m-%dT%H:%M")},
    )
    assert "Starts at" in await start.text()
    made = await client.post("/api/v1/campaigns", json=FILTER_BODY, headers=auth["dc_shimla"])
    api_id = (await made.json())["id"]
    far = await client.post(
        f"/api/v1/campaigns/{api_id}/start",
        params={"at": too_late.isoformat()},
        headers=auth["dc_shimla"],
    )
    assert far.status == 400 and "at" in await far.text()
    started = await client.post(
        f"/api/v1/campaigns/{api_id}/start",
        params={"at": later.isoformat()},
        headers=auth["dc_shimla"],
    )
    assert started.status == 200
    deadline = time.monotonic() + 1.5

    async def a_while() -> bool:
        return time.monotonic() > deadline

    await run_bulk(client, until=a_while)
    for cid in (campaign_id, api_id):
        campaign = await Campaign.get(id=cid)
        assert campaign.status is CampaignStatus.SENDING and campaign.started_at is not None
        assert abs((campaign.started_at - later).total_seconds()) < 60
        assert not await OutboundMessage.filter(campaign_id=cid).exists()


async def test_a_csv_file_larger_than_other_forms_is_taken(
    bulk_client: TestClient[Any, Any],
) -> None:
    """The gateway's bodies are small (64 KiB); the compose form's CSV may be 4 MiB."""
    client = bulk_client
    await _accounts(client)
    await sign_in(client, "dc_shimla")
    token = await csrf(client)
    csv = "".join(f"+91981{i:07d}\n" for i in range(20_000))  # 280 kB
    page = await client.post("/console/notices", data=_csv_form(token, csv))
    assert page.status == 200
    campaign = await Campaign.get(id=_id_of(await page.text()))
    assert campaign.recipients_total == 20_000
    big = await client.post("/console/notices", data=_csv_form(token, csv * 16))  # 4.5 MB
    assert big.status == 413
    other = await client.post("/console/accounts", data={"csrf": token, "name": "x" * 70_000})
    assert other.status == 413

"""The campaign API: every endpoint against every role, scopes (404 outside), bodies and
errors, CSV audiences (inline and streamed upload), and a campaign driven end to end by
HTTP against the fake Africa's Talking server."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.storage.models import AuditRecord, Campaign, CampaignStatus, ComplaintStatus, StaffRole
from tests.conftest import AppFactory, signed
from tests.fakes.africastalking import FakeAfricasTalking
from tests.test_campaigns import (
    VARIABLES,
    bulk_config,
    complaint,
    number,
    run_bulk,
    staff,
)


@pytest.fixture
async def bulk_client(
    start_app: AppFactory,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    fake: FakeAfricasTalking,
) -> TestClient[Any, Any]:
    return await start_app(bulk_config(tmp_path, database_url, redis_url, fake))


FILTER_BODY = {
    "template": "area_update",
    "variables": VARIABLES,
    "audience": {"filter": {"department": "jal_shakti", "block": "theog", "open_only": True}},
}

ACCOUNTS: dict[str, tuple[StaffRole, dict[str, Any]]] = {
    "state_admin": (StaffRole.STATE_ADMIN, {}),
    "reviewer": (StaffRole.STATE_REVIEWER, {}),
    "dc_shimla": (StaffRole.DISTRICT_ADMIN, {"district": "shimla"}),
    "dc_kullu": (StaffRole.DISTRICT_ADMIN, {"district": "kullu"}),
    "je_theog": (
        StaffRole.OFFICER,
        {"department": "jal_shakti", "level": "block", "area": "theog"},
    ),
    "je_rohru": (
        StaffRole.OFFICER,
        {"department": "jal_shakti", "level": "block", "area": "rohru"},
    ),
    "agent": (StaffRole.AGENT, {"district": "shimla"}),
}


async def tokens(client: TestClient[Any, Any]) -> dict[str, dict[str, str]]:
    out = {}
    for username, (role, fields) in ACCOUNTS.items():
        _, token = await staff(client, username, role, **fields)
        out[username] = {"Authorization": f"Bearer {token}"}
    return out


async def test_a_campaign_by_http_from_preview_to_delivered(
    bulk_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    client = bulk_client
    auth = await tokens(client)
    for i in range(1, 6):
        await complaint(number(i), language="en_IN")
    await complaint(number(6), block="rohru")
    await complaint(number(7), status=ComplaintStatus.CLOSED)

    resp = await client.post(
        "/api/v1/campaigns/preview", json=FILTER_BODY, headers=auth["je_theog"]
    )
    assert resp.status == 200, await resp.text()
    preview = await resp.json()
    assert preview["recipients"] == 5
    assert preview["languages"] == {"en_IN": 5}
    assert preview["total_segments"] == 5 * preview["segments_per_message"]["en_IN"]

    resp = await client.post("/api/v1/campaigns", json=FILTER_BODY, headers=auth["je_theog"])
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["status"] == "draft" and created["recipients_total"] == 5
    cid = created["id"]

    resp = await client.post(f"/api/v1/campaigns/{cid}/start", headers=auth["je_theog"])
    assert resp.status == 200
    assert (await resp.json())["status"] == "sending"
    await run_bulk(client)
    resp = await client.get(f"/api/v1/campaigns/{cid}", headers=auth["dc_shimla"])
    body = await resp.json()
    assert body["status"] == "done"
    assert body["progress"]["sent"] == 5 and body["progress"]["queued"] == 0
    url = str(client.make_url(signed(client, "/sms/africastalking/delivery")))
    for m in fake.sent:
        await fake.send_delivery_report(url, m.message_id, "Success", phone=m.number)
    body = await (await client.get(f"/api/v1/campaigns/{cid}", headers=auth["je_theog"])).json()
    assert body["progress"]["delivered"] == 5
    assert Counter(m.number for m in fake.sent) == Counter({number(i): 1 for i in range(1, 6)})
    actions = await AuditRecord.filter(actor="staff:je_theog").values_list("action", flat=True)
    assert {"campaign.preview", "campaign.create", "campaign.start"} <= set(actions)


async def test_every_campaign_endpoint_by_role_and_scope(
    bulk_client: TestClient[Any, Any],
) -> None:
    client = bulk_client
    auth = await tokens(client)
    await complaint(number(1))
    resp = await client.post("/api/v1/campaigns", json=FILTER_BODY, headers=auth["je_theog"])
    cid = (await resp.json())["id"]

    # Creating and previewing: senders only.
    for who, status in [
        ("state_admin", 200),
        ("dc_shimla", 200),
        ("je_theog", 200),
        ("reviewer", 403),
        ("agent", 403),
    ]:
        resp = await client.post("/api/v1/campaigns/preview", json=FILTER_BODY, headers=auth[who])
        assert resp.status == status, who
        resp = await client.post("/api/v1/campaigns", json=FILTER_BODY, headers=auth[who])
        assert resp.status == (201 if status == 200 else 403), who

    # Reading: the campaign is seen within scope, 404 outside it, 403 for agents.
    for who, status in [
        ("state_admin", 200),
        ("reviewer", 200),
        ("dc_shimla", 200),
        ("je_theog", 200),
        ("dc_kullu", 404),
        ("je_rohru", 404),
        ("agent", 403),
    ]:
        resp = await client.get(f"/api/v1/campaigns/{cid}", headers=auth[who])
        assert resp.status == status, who
        listing = await client.get("/api/v1/campaigns", headers=auth[who])
        if status == 403:
            assert listing.status == 403
        else:
            ids = [c["id"] for c in (await listing.json())["campaigns"]]
            assert (cid in ids) == (status == 200), who

    # Steering: outside scope 404, read-only and agent roles 403; the rest move it.
    for action in ("start", "pause", "resume", "cancel"):
        for who, status in [
            ("dc_kullu", 404),
            ("je_rohru", 404),
            ("reviewer", 403),
            ("agent", 403),
        ]:
            resp = await client.post(f"/api/v1/campaigns/{cid}/{action}", headers=auth[who])
            assert resp.status == status, (action, who)
            assert (await resp.json())["error"]["code"] in ("not_found", "forbidden")
    assert (
        await client.post(f"/api/v1/campaigns/{cid}/start", headers=auth["je_theog"])
    ).status == 200
    assert (
        await client.post(f"/api/v1/campaigns/{cid}/pause", headers=auth["dc_shimla"])
    ).status == 200
    resp = await client.post(f"/api/v1/campaigns/{cid}/pause", headers=auth["dc_shimla"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "conflict"
    assert (
        await client.post(f"/api/v1/campaigns/{cid}/resume", headers=auth["state_admin"])
    ).status == 200
    assert (
        await client.post(f"/api/v1/campaigns/{cid}/cancel", headers=auth["je_theog"])
    ).status == 200
    assert (await Campaign.get(id=cid)).status is CampaignStatus.CANCELLED

    # Upload: 404 outside scope, 403 for the roles that may not.
    for who, status in [("dc_kullu", 404), ("reviewer", 403), ("agent", 403)]:
        resp = await client.post(
            f"/api/v1/campaigns/{cid}/numbers",
            data="9812345678\n",
            headers={**auth[who], "Content-Type": "text/csv"},
        )
        assert resp.status == status, who
    assert (await client.get("/api/v1/campaigns/999", headers=auth["state_admin"])).status == 404
    assert (await client.get("/api/v1/campaigns/x", headers=auth["state_admin"])).status == 404
    for too_big in ("9" * 23, str(2**63), str(2**31)):  # past SQLite's and PostgreSQL's int
        resp = await client.post(f"/api/v1/campaigns/{too_big}/pause", headers=auth["state_admin"])
        assert resp.status == 404, await resp.text()
        resp = await client.get(f"/api/v1/campaigns/{too_big}", headers=auth["state_admin"])
        assert resp.status == 404, await resp.text()
    assert (await client.get(f"/api/v1/campaigns/{cid}")).status == 401


async def test_an_officer_cannot_reach_other_departments_through_the_filter(
    bulk_client: TestClient[Any, Any],
) -> None:
    auth = await tokens(bulk_client)
    await complaint(number(1), department="pwd")
    await complaint(number(2), block="rohru")
    body = {
        **FILTER_BODY,
        "audience": {"filter": {"department": "pwd", "district": "shimla"}},
    }
    resp = await bulk_client.post("/api/v1/campaigns/preview", json=body, headers=auth["je_theog"])
    assert (await resp.json())["recipients"] == 0
    body["audience"] = {"filter": {}}
    resp = await bulk_client.post("/api/v1/campaigns/preview", json=body, headers=auth["je_theog"])
    assert (await resp.json())["recipients"] == 0
    resp = await bulk_client.post("/api/v1/campaigns/preview", json=body, headers=auth["dc_shimla"])
    assert (await resp.json())["recipients"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**FILTER_BODY, "template": "nope"}, "template"),
        # Lifecycle messages are never sent in bulk, whoever asks.
        (
            {**FILTER_BODY, "template": "complaint_resolved", "variables": {"ticket": "1"}},
            "template",
        ),
        ({**FILTER_BODY, "variables": {"service": "x", "place": "y"}}, "variables.update"),
        ({**FILTER_BODY, "variables": {**VARIABLES, "update": "x" * 31}}, "variables.update"),
        ({**FILTER_BODY, "variables": {**VARIABLES, "extra": "x"}}, "variables.extra"),
        ({**FILTER_BODY, "audience": {}}, "audience"),
        ({**FILTER_BODY, "audience": {"filter": {"block": "atlantis"}}}, "audience.filter.block"),
        (
            {**FILTER_BODY, "audience": {"filter": {"statuses": ["lost"]}}},
            "audience.filter.statuses.0",
        ),
        ({"variables": VARIABLES, "audience": {"csv": ""}}, "template"),
    ],
)
async def test_bad_bodies_name_the_field(
    bulk_client: TestClient[Any, Any], body: dict[str, Any], field: str
) -> None:
    auth = await tokens(bulk_client)
    for path in ("/api/v1/campaigns/preview", "/api/v1/campaigns"):
        resp = await bulk_client.post(path, json=body, headers=auth["dc_shimla"])
        assert resp.status == 400, (path, await resp.text())
        assert (await resp.json())["error"]["field"] == field


async def test_a_csv_audience_inline_and_uploaded(
    bulk_client: TestClient[Any, Any], fake: FakeAfricasTalking
) -> None:
    client = bulk_client
    auth = await tokens(client)
    await complaint(number(2), citizen_language="en_IN")
    await complaint(number(3), opted_out=True)
    csv = "phone,name\n+91 98100 00001,A\n9810000002\nnot a number\n09810000001\n\n12\n"
    body = {"template": "area_update", "variables": VARIABLES, "audience": {"csv": csv}}
    resp = await client.post("/api/v1/campaigns/preview", json=body, headers=auth["dc_shimla"])
    preview = await resp.json()
    assert preview["recipients"] == 2
    # Number 1 has no complaint in the sender's scope: counted, its language not shown.
    assert preview["languages"] == {"en_IN": 1} and preview["outside_scope"] == 1
    assert preview["csv"]["bad_lines"] == 2 and preview["csv"]["bad_line_numbers"] == [4, 7]
    assert preview["csv"]["duplicates"] == 1

    resp = await client.post("/api/v1/campaigns", json=body, headers=auth["dc_shimla"])
    assert resp.status == 201
    created = await resp.json()
    assert created["recipients_total"] == 2 and created["csv"]["numbers"] == 2
    cid = created["id"]
    upload = "\n".join(number(i) for i in range(3, 300)) + "\n" + number(1)
    resp = await client.post(
        f"/api/v1/campaigns/{cid}/numbers",
        data=upload.encode(),
        headers={**auth["dc_shimla"], "Content-Type": "text/csv"},
    )
    assert resp.status == 200, await resp.text()
    after = await resp.json()
    assert after["csv"]["numbers"] == 297 and after["csv"]["duplicates"] == 1
    assert after["recipients_total"] == 2 + 297 - 1  # number 3 opted out
    assert (
        await client.post(f"/api/v1/campaigns/{cid}/start", headers=auth["dc_shimla"])
    ).status == 200
    await run_bulk(client)
    sent = Counter(m.number for m in fake.sent)
    assert len(sent) == 298 and set(sent.values()) == {1}
    assert number(3) not in sent
    resp = await client.post(
        f"/api/v1/campaigns/{cid}/numbers",
        data=b"9810000009\n",
        headers={**auth["dc_shimla"], "Content-Type": "text/csv"},
    )
    assert resp.status == 409


# A CSV audience as spreadsheets write it: (case, file, numbers accepted, rows refused as
# (line, reason)). Every case but the header and the blank lines is read wrongly by a
# split(",") of each line.
CSV_FILES: list[tuple[str, str, int, list[tuple[int, str]]]] = [
    ("excel-bom-crlf", "\ufeff9810000001\r\n9810000002\r\n", 2, []),
    ("semicolons", "phone;name\r\n98100 00001;Ram\r\n9810000002;Sita\r\n", 2, []),
    ("tabs", "phone\tname\n9810000001\tRam\n9810000002\tSita\n", 2, []),
    (
        "quoted-with-a-line-break",
        'phone,name,address\n"9810000001","Ram, Singh","House 5\nTheog"\n9810000002,Sita,x\n',
        2,
        [],
    ),
    ("header", "Mobile No.,Name\n9810000001,Ram\n", 1, []),
    ("blank-lines", "\n\nphone\n\n9810000001\n\n\n9810000002\n", 2, []),
    (
        "the-issue's-numbers",
        "0177-2623456\n98123456789\n1800112233\n+91 98100 00001\n",
        1,
        [(1, "landline"), (2, "invalid"), (3, "toll_free")],
    ),
    (
        "refused-rows-counted-in-crlf-lines",
        "phone;name\r\n9810000001;Ram\r\n\r\n0177-2623456;Office\r\n;Sita\r\n+447911123456;Uncle\r\n",
        1,
        [(4, "landline"), (5, "no_number"), (6, "foreign")],
    ),
]


async def test_a_csv_audience_is_read_as_spreadsheets_write_it(
    bulk_client: TestClient[Any, Any],
) -> None:
    auth = await tokens(bulk_client)
    for case, text, numbers, refused in CSV_FILES:
        body = {"template": "area_update", "variables": VARIABLES, "audience": {"csv": text}}
        resp = await bulk_client.post(
            "/api/v1/campaigns/preview", json=body, headers=auth["dc_shimla"]
        )
        assert resp.status == 200, (case, await resp.text())
        report = (await resp.json())["csv"]
        assert report["numbers"] == numbers, case
        assert [(r["line"], r["reason"]) for r in report["refused"]] == refused, case
        assert report["bad_line_numbers"] == [line for line, _ in refused], case
        assert all(r["message"] for r in report["refused"]), case


async def test_an_uploaded_csv_reports_refused_rows_by_line_and_reason(
    bulk_client: TestClient[Any, Any],
) -> None:
    """A file of several request chunks (Excel's CSV UTF-8 with ';'): every number read,
    the refused rows named by line; a long list of them is cut short but counted."""
    auth = await tokens(bulk_client)
    resp = await bulk_client.post(
        "/api/v1/campaigns",
        json={"template": "area_update", "variables": VARIABLES, "audience": {"csv": ""}},
        headers=auth["dc_shimla"],
    )
    cid = (await resp.json())["id"]
    rows = ["phone;name"] + [f"{number(i)[3:]};Citizen {i}" for i in range(6000)]
    rows[4321] = "0177-2623456;Tehsil office"
    rows += ["98123456789;typo"] * 30
    upload = ("\ufeff" + "\r\n".join(rows) + "\r\n").encode()
    assert len(upload) > 2 * 64 * 1024
    resp = await bulk_client.post(
        f"/api/v1/campaigns/{cid}/numbers",
        data=upload,
        headers={**auth["dc_shimla"], "Content-Type": "text/csv"},
    )
    assert resp.status == 200, await resp.text()
    report = (await resp.json())["csv"]
    assert report["numbers"] == 5999 and report["delimiter"] == ";"
    assert report["bad_lines"] == 31
    assert report["refused_by_reason"] == {"invalid": 30, "landline": 1}
    assert report["refused"][0] == {
        "line": 4322,
        "reason": "landline",
        "message": "a landline: cannot receive SMS",
    }
    assert [r["line"] for r in report["refused"][1:]] == list(range(6002, 6021))


async def test_a_csv_preview_shows_nothing_of_citizens_outside_the_senders_scope(
    bulk_client: TestClient[Any, Any],
) -> None:
    """A Theog block officer previewing a one-number CSV of a Kangra citizen (opted out,
    Punjabi) learns what they would learn of a number nobody knows: one number outside
    their scope, no language, no opt-out; their own block's citizens are broken down."""
    auth = await tokens(bulk_client)
    await complaint(number(1), block="dharamshala", citizen_language="pa", opted_out=True)
    await complaint(number(2), department="pwd", citizen_language="en_IN")  # not jal_shakti
    await complaint(number(3), citizen_language="en_IN")

    async def preview(*numbers: str) -> dict[str, Any]:
        body = {
            "template": "area_update",
            "variables": VARIABLES,
            "audience": {"csv": "\n".join(numbers)},
        }
        resp = await bulk_client.post(
            "/api/v1/campaigns/preview", json=body, headers=auth["je_theog"]
        )
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())

    unknown = await preview(number(9))
    assert await preview(number(1)) == unknown
    assert await preview(number(2)) == unknown
    assert unknown["outside_scope"] == 1
    assert unknown["languages"] == {} and unknown["skipped_opted_out"] == 0
    mine = await preview(number(1), number(3))
    assert mine["languages"] == {"en_IN": 1} and mine["outside_scope"] == 1

    # Nor does the draft's stored audience size and cost tell them apart.
    drafts = []
    for n in (number(1), number(9)):
        resp = await bulk_client.post(
            "/api/v1/campaigns",
            json={"template": "area_update", "variables": VARIABLES, "audience": {"csv": n}},
            headers=auth["je_theog"],
        )
        created = await resp.json()
        drafts.append((created["recipients_total"], created["segments_total"]))
    assert drafts[0] == drafts[1]

"""A hand-made month of complaints for the monthly review tests (October 2026, IST).

October 2026 in Asia/Kolkata is [2026-09-30 18:30Z, 2026-10-31 18:30Z). Each complaint and
event is written directly with explicit times; the expected figures are written out by hand
in the tests, from this story:

A  jal_shakti/shimla/theog  registered 10-02 04:00 (js_theog_je, due 10-09), resolved 10-05
   04:00 on time, closed solved 10-07.
B  jal_shakti/shimla/theog  registered 09-30 19:00Z (1 Oct 00:30 IST: October), escalated
   10-08 to tehsil (from js_theog_je), resolved 10-10 19:00 by js_theog_ae (due 10-15),
   reopened 10-12 to district (js_shimla_xen now). Open at month end.
C  jal_shakti/shimla/theog  registered 09-01, resolved 10-20 by js_theog_je late (due
   09-08), closed without response 10-28.
D  jal_shakti/shimla/theog  registered 10-31 18:45Z (1 Nov IST): November.
E  revenue/bilaspur         registered 10-03 (bdo_desk), escalated 10-10 to tehsil (from
   bdo_desk), 10-17 to district (from sdm_desk; dc_desk now). Open.
F  revenue/bilaspur         registered 08-01 (bdo_desk), never touched. Open.
G  jal_shakti/shimla/theog  registered 09-20, resolved 09-25, citizen said not solved 10-02
   (reopened to tehsil, from js_theog_je), resolved 10-04 by js_theog_ae (due 10-09) on
   time, closed solved 11-02 (November). Resolved, not open, at month end.
H  jal_shakti/shimla/theog  registered 09-01, resolved 09-03, closed 09-05.
I  revenue/shimla/theog     registered 10-20 (bdo_desk), resolved 11-03. Open at month end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.storage.models import (
    Channel,
    Citizen,
    Complaint,
    ComplaintEvent,
    ComplaintStatus,
    EventKind,
)

S = ComplaintStatus


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


class Story:
    def __init__(self) -> None:
        self.citizen: Citizen | None = None
        self.n = 0

    async def complaint(
        self,
        ticket: str,
        *,
        department: str,
        district: str,
        tehsil: str,
        block: str,
        officer: str,
        created: datetime,
    ) -> Complaint:
        if self.citizen is None:
            self.citizen = await Citizen.create(phone="+919812300000", language="hi")
        self.n += 1
        c = await Complaint.create(
            ticket=ticket,
            citizen=self.citizen,
            language="hi",
            department=department,
            district=district,
            tehsil=tehsil,
            block=block,
            channel=Channel.USSD,
            status=S.ASSIGNED,
            level=1,
            due_at=created + timedelta(days=7),
            officer=officer,
            source_key=f"test:{ticket}",
        )
        await Complaint.filter(id=c.id).update(created_at=created)
        await self.event(c, EventKind.REGISTERED, created, S.REGISTERED, officer=officer, level=1)
        await self.event(c, EventKind.ASSIGNED, created, S.ASSIGNED, officer=officer, level=1)
        return c

    async def event(
        self,
        c: Complaint,
        kind: EventKind,
        when: datetime,
        to_status: ComplaintStatus,
        *,
        officer: str | None,
        level: int,
        due_at: datetime | None = None,
    ) -> None:
        e = await ComplaintEvent.create(
            complaint=c,
            kind=kind,
            actor="test",
            to_status=to_status.value,
            officer=officer,
            level=level,
            due_at=due_at,
        )
        await ComplaintEvent.filter(id=e.id).update(created_at=when)

    async def now(
        self, c: Complaint, status: ComplaintStatus, *, officer: str, level: int, **more: object
    ) -> None:
        """The complaint's row as it stands today (after all its events)."""
        await Complaint.filter(id=c.id).update(status=status, officer=officer, level=level, **more)


async def build_october() -> None:
    s = Story()
    shimla = dict(department="jal_shakti", district="shimla", tehsil="theog", block="theog")
    bilaspur = dict(
        department="revenue", district="bilaspur", tehsil="ghumarwin", block="ghumarwin"
    )
    je, ae, xen = "js_theog_je", "js_theog_ae", "js_shimla_xen"

    a = await s.complaint("A0001", officer=je, created=at(10, 2, 4), **shimla)
    await s.event(a, EventKind.RESOLVED, at(10, 5, 4), S.RESOLVED, officer=je, level=1,
                  due_at=at(10, 9, 4))  # fmt: skip
    await s.event(a, EventKind.CLOSED, at(10, 7), S.CLOSED, officer=je, level=1)
    await s.now(a, S.CLOSED, officer=je, level=1, closed_at=at(10, 7))

    b = await s.complaint("B0002", officer=je, created=at(9, 30, 19), **shimla)
    await s.event(b, EventKind.ESCALATED, at(10, 8), S.ASSIGNED, officer=je, level=2,
                  due_at=at(10, 7, 19))  # fmt: skip
    await s.event(b, EventKind.RESOLVED, at(10, 10, 19), S.RESOLVED, officer=ae, level=2,
                  due_at=at(10, 15))  # fmt: skip
    await s.event(b, EventKind.REOPENED, at(10, 12), S.REOPENED, officer=ae, level=3,
                  due_at=at(10, 15))  # fmt: skip
    await s.now(b, S.REOPENED, officer=xen, level=3)

    c = await s.complaint("C0003", officer=je, created=at(9, 1), **shimla)
    await s.event(c, EventKind.RESOLVED, at(10, 20), S.RESOLVED, officer=je, level=1,
                  due_at=at(9, 8))  # fmt: skip
    await s.event(c, EventKind.CLOSED, at(10, 28), S.CLOSED_NO_RESPONSE, officer=je, level=1)
    await s.now(c, S.CLOSED_NO_RESPONSE, officer=je, level=1, closed_at=at(10, 28))

    await s.complaint("D0004", officer=je, created=at(10, 31, 18, 45), **shimla)

    e = await s.complaint("E0005", officer="bdo_desk", created=at(10, 3), **bilaspur)
    await s.event(e, EventKind.ESCALATED, at(10, 10), S.ASSIGNED, officer="bdo_desk", level=2,
                  due_at=at(10, 10))  # fmt: skip
    await s.event(e, EventKind.ESCALATED, at(10, 17), S.ASSIGNED, officer="sdm_desk", level=3,
                  due_at=at(10, 17))  # fmt: skip
    await s.now(e, S.ASSIGNED, officer="dc_desk", level=3)

    await s.complaint("F0006", officer="bdo_desk", created=at(8, 1), **bilaspur)

    g = await s.complaint("G0007", officer=je, created=at(9, 20), **shimla)
    await s.event(g, EventKind.RESOLVED, at(9, 25), S.RESOLVED, officer=je, level=1,
                  due_at=at(9, 27))  # fmt: skip
    await s.event(g, EventKind.REOPENED, at(10, 2), S.REOPENED, officer=je, level=2,
                  due_at=at(9, 27))  # fmt: skip
    await s.event(g, EventKind.RESOLVED, at(10, 4), S.RESOLVED, officer=ae, level=2,
                  due_at=at(10, 9))  # fmt: skip
    await s.event(g, EventKind.CLOSED, at(11, 2), S.CLOSED, officer=ae, level=2)
    await s.now(g, S.CLOSED, officer=ae, level=2, closed_at=at(11, 2))

    h = await s.complaint("H0008", officer=je, created=at(9, 1), **shimla)
    await s.event(h, EventKind.RESOLVED, at(9, 3), S.RESOLVED, officer=je, level=1,
                  due_at=at(9, 8))  # fmt: skip
    await s.event(h, EventKind.CLOSED, at(9, 5), S.CLOSED, officer=je, level=1)
    await s.now(h, S.CLOSED, officer=je, level=1, closed_at=at(9, 5))

    i = await s.complaint(
        "I0009", officer="bdo_desk", created=at(10, 20),
        department="revenue", district="shimla", tehsil="theog", block="theog",
    )  # fmt: skip
    await s.event(i, EventKind.RESOLVED, at(11, 3), S.RESOLVED, officer="bdo_desk", level=1,
                  due_at=at(10, 27))  # fmt: skip
    await s.now(i, S.RESOLVED, officer="bdo_desk", level=1, resolved_at=at(11, 3))

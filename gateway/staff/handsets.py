"""What a citizen's handset can draw, as the citizen showed it or staff were told.

A citizen who chooses a language written in Latin letters marks their number Latin-only;
one who chooses a language's script variant (Kashmiri in Devanagari) marks the script. A
citizen who tells an agent "the SMS show boxes" is marked here by staff: from then on their
SMS go in the language's Latin alternative, or in the same language in a script the handset
draws (:meth:`gateway.config.Config.sms_language` reads the mark).
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.transactions import in_transaction

from gateway.complaints.scope import OutOfScope, Scope
from gateway.config import Config
from gateway.errors import FieldError
from gateway.staff.audit import audit
from gateway.storage.models import Citizen, Complaint

OWN = "own"
"""The handset draws the language's own script."""
LATIN = "Latn"
"""The handset draws Latin letters only."""


@dataclass(frozen=True, slots=True)
class Handset:
    """What a number's handset draws: :data:`OWN`, :data:`LATIN` or an ISO 15924 script."""

    shows: str
    choices: tuple[str, ...]
    """What staff may mark it as, for the citizen's language."""


def handset_of(config: Config, citizen: Citizen, language: str) -> Handset:
    """The mark on ``citizen``'s number and the marks their ``language`` allows."""
    lang = config.language(citizen.language or language)
    own = lang.script if lang is not None else None
    if lang is not None and lang.latin:  # nothing to fall back to from Latin letters
        return Handset(OWN, (OWN,))
    shows = OWN
    if citizen.latin_only:
        shows = LATIN
    elif citizen.script and citizen.script != own:
        shows = citizen.script
    alternatives = tuple(lang.scripts) if lang is not None else ()
    return Handset(shows, (OWN, LATIN, *alternatives))


async def mark_handset(
    config: Config, complaint_id: int, shows: str, *, actor: str, scope: Scope
) -> Handset:
    """Mark what the handset of ``complaint_id``'s citizen draws, within ``scope``; the
    citizen's later SMS (lifecycle, replies, notices) follow it. Audited."""
    async with in_transaction() as conn:
        c = await Complaint.filter(id=complaint_id).using_db(conn).get()
        refusal = scope.refusal(c)
        if refusal is not None:
            raise OutOfScope(c.ticket, refusal)
        citizen = await Citizen.get(id=c.citizen_id, using_db=conn)  # type: ignore[attr-defined]
        handset = handset_of(config, citizen, c.language)
        if shows not in handset.choices:
            raise FieldError("shows", f"one of {', '.join(handset.choices)}")
        lang = config.language(citizen.language or c.language)
        citizen.latin_only = shows == LATIN
        citizen.script = (
            shows if shows not in (OWN, LATIN) else lang.script if lang is not None else None
        )
        await citizen.save(using_db=conn, update_fields=["latin_only", "script", "updated_at"])
        await audit(actor, "citizen.handset", target=c.ticket, detail={"shows": shows}, conn=conn)
    return Handset(shows, handset.choices)

"""Rendering an SMS template for a recipient and writing it to the outbox, in the caller's
transaction: the one place that knows languages, dates and opt-outs for outgoing SMS."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.config import Config, Officer
from gateway.sms.outbox import MessageDraft
from gateway.sms.templates import TemplateBook
from gateway.storage.models import Complaint
from gateway.text.i18n import N_, Catalogs

__all__ = ["Notices"]


class Notices:
    """Writes template messages to the outbox; returns what was written, for dispatch."""

    def __init__(self, *, config: Config, catalogs: Catalogs, templates: TemplateBook) -> None:
        self.config = config
        self.catalogs = catalogs
        self.templates = templates
        self.tz = ZoneInfo(config.service.timezone)

    def date(self, language: str, when: datetime) -> str:
        return self.catalogs.format_date(language, when.astimezone(self.tz))

    def name(self, texts: Mapping[str, str], language: str) -> str:
        return texts.get(language) or texts[self.config.service.default_language]

    def department(self, code: str, language: str) -> str:
        dept = self.config.department(code)
        return self.name(dept.name, language) if dept else code

    def level(self, index: int, language: str) -> str:
        levels = self.config.levels
        return self.name(levels[min(index, len(levels)) - 1].name, language)

    def status(self, status: str, language: str) -> str:
        return self.catalogs.gettext(language, STATUS_WORDS.get(status, status))

    def draft(
        self,
        template: str,
        *,
        to: str,
        language: str,
        values: Mapping[str, str],
        key: str,
        complaint_id: int | None,
        opted_out: bool = False,
    ) -> MessageDraft | None:
        """``template`` rendered for ``to``, to be written with idempotency key ``key``
        (``None`` for a citizen who ``opted_out``, unless the template is essential)."""
        tpl = self.templates[template]
        if opted_out and not tpl.essential:
            return None
        sms = tpl.render(language, values, fallback=self.config.service.default_language)
        return MessageDraft(
            sms=sms,
            recipient=to,
            provider=self.config.sms.provider,
            idempotency_key=key,
            complaint_id=complaint_id,
        )

    def draft_to_officer(
        self, c: Complaint, officer: Officer, template: str, *, key: str
    ) -> MessageDraft | None:
        """``template`` telling ``officer`` about complaint ``c`` (what, where, by when), in
        the default language (officers read the state's working language)."""
        lang = self.config.service.default_language
        dept = self.config.department(c.department)
        issue = dept.issue(c.issue_type) if dept and c.issue_type else None
        what = self.name(issue.name, lang) if issue else (c.description or "")
        district = self.config.district(c.district)
        block = next((b for b in district.blocks if b.code == c.block), None) if district else None
        assert c.ticket is not None
        values = {
            "ticket": c.ticket,
            "issue": what,
            "place": self.name(block.name, lang) if block else c.block,
            "due_date": self.date(lang, c.due_at),
            "level": self.level(c.level, lang),
        }
        needed = self.templates[template].variables
        return self.draft(
            template,
            to=officer.phone,
            language=lang,
            values={k: v for k, v in values.items() if k in needed},
            key=f"complaint:{c.id}:{template}:{officer.code}:{key}",
            complaint_id=c.id,
        )


# Status words shown to citizens (marked for translation where they are defined).
STATUS_WORDS = {
    "registered": N_("Registered"),
    "assigned": N_("With the officer"),
    "in_progress": N_("In progress"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
    "reopened": N_("Reopened"),
    "closed_no_response": N_("Closed"),
    "transferred": N_("Transferred"),
}

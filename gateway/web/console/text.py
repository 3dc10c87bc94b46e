"""The console's own words in Hindi and English: the ``console`` gettext domain.

The console's catalogs (``locales/<lang>/LC_MESSAGES/console.po``) are apart from the
citizens' ``messages`` domain, which every configured language must translate in full:
the console is offered in ``console.languages`` only. ``make translations`` extracts the
templates and this package (``babel-console.cfg``), updates and compiles them. The ``.po``
files are read directly at start-up (no ``.mo`` needed).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from babel.messages.pofile import read_po

__all__ = [
    "CHANNEL_LABELS",
    "C_",
    "DOMAIN",
    "EVENT_LABELS",
    "LANGUAGE_NAMES",
    "SMS_LABELS",
    "STATUS_LABELS",
    "VARIABLE_LABELS",
    "ConsoleText",
]

DOMAIN = "console"
LANGUAGE_NAMES = {"en_IN": "English", "hi": "हिन्दी"}
"""Each console language in its own script, for the switch."""


def C_(message: str) -> str:
    """Marks ``message`` for the console's catalog (``-k C_``), translated where shown: not
    ``_`` or ``N_``, which the citizens' catalog extracts."""
    return message


STATUS_LABELS = {
    "registered": C_("Registered"),
    "assigned": C_("With the officer"),
    "in_progress": C_("In progress"),
    "resolved": C_("Resolved, awaiting the citizen"),
    "closed": C_("Closed"),
    "reopened": C_("Reopened"),
    "closed_no_response": C_("Closed, no response"),
    "transferred": C_("Transferred"),
}
EVENT_LABELS = {
    "registered": C_("Registered"),
    "assigned": C_("Assigned"),
    "status_changed": C_("Status changed"),
    "note": C_("Status update"),
    "resolved": C_("Resolved"),
    "transferred": C_("Transferred"),
    "escalated": C_("Escalated"),
    "feedback": C_("Citizen's feedback"),
    "reminded": C_("Reminder sent"),
    "closed": C_("Closed"),
    "reopened": C_("Reopened"),
    "flagged": C_("Flagged for the state review"),
    "citizen_message": C_("Citizen's SMS"),
    "message_failed": C_("An SMS could not be delivered"),
}
VARIABLE_LABELS = {
    "service": C_("Service (e.g. water supply)"),
    "place": C_("Place (e.g. Theog bazaar)"),
    "update": C_("What to tell (e.g. restored by 6 pm)"),
    "ticket": C_("Ticket"),
    "remark": C_("Remark"),
    "department": C_("Department"),
    "due_date": C_("Due date"),
}
"""Labels of a bulk template's values on the compose form; a variable not here is shown
by its name."""
CHANNEL_LABELS = {
    "ussd": C_("by USSD"),
    "sms": C_("by SMS"),
    "phone_call": C_("by phone, through an agent"),
    "web": C_("on the web"),
}
SMS_LABELS = {
    "queued": C_("queued"),
    "sending": C_("sending"),
    "retrying": C_("retrying"),
    "sent": C_("sent"),
    "delivered": C_("delivered"),
    "failed": C_("failed"),
    "unknown": C_("unknown"),
}


class ConsoleText:
    """Each console language's translations, loaded once."""

    def __init__(self, locales_dir: Path, languages: Iterable[str]) -> None:
        self.languages = list(languages)
        self._texts: dict[str, dict[str, str]] = {}
        for lang in self.languages:
            path = locales_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
            if not path.exists():
                self._texts[lang] = {}
                continue
            with path.open("rb") as f:
                catalog = read_po(f, locale=lang)
            self._texts[lang] = {
                str(m.id): str(m.string)
                for m in catalog
                if m.id and isinstance(m.id, str) and m.string and not m.fuzzy
            }

    def gettext(self, lang: str, message: str) -> str:
        """``message`` in ``lang``; the English message itself when there is no translation."""
        return self._texts.get(lang, {}).get(message, message)

    def choose(self, wanted: str | None) -> str:
        """``wanted`` if the console speaks it, else its first language."""
        return wanted if wanted in self.languages else self.languages[0]

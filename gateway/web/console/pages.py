"""Rendering a console page: the template, the language, and what every page shows.

Names of departments, places and levels come from ``config.yaml`` in the page's language;
times are shown in ``service.timezone``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session
from babel import Locale

from gateway.config import Config
from gateway.storage.models import StaffMember, StaffRole
from gateway.web.console.session import session_context, signed_in_staff
from gateway.web.console.text import (
    CHANNEL_LABELS,
    EVENT_LABELS,
    LANGUAGE_NAMES,
    SMS_LABELS,
    STATUS_LABELS,
    VARIABLE_LABELS,
    ConsoleText,
)
from gateway.web.keys import CLOCK, CONFIG

__all__ = ["CONSOLE_TEXT", "Names", "page_language", "render"]

CONSOLE_TEXT = web.AppKey("console_text", ConsoleText)


class Names:
    """Config names and times in one language, for templates."""

    def __init__(self, config: Config, lang: str, now: datetime) -> None:
        self.config = config
        self.lang = lang
        self.now = now
        self.tz = ZoneInfo(config.service.timezone)

    def _pick(self, texts: Mapping[str, str]) -> str:
        return texts.get(self.lang) or texts.get("en_IN") or next(iter(texts.values()))

    def department(self, code: str) -> str:
        dept = self.config.department(code)
        return self._pick(dept.name) if dept else code

    def issue(self, department: str, code: str | None) -> str:
        dept = self.config.department(department)
        issue = dept.issue(code) if dept and code else None
        return self._pick(issue.name) if issue else (code or "")

    def district(self, code: str) -> str:
        district = self.config.district(code)
        return self._pick(district.name) if district else code

    def place(self, code: str) -> str:
        """A block's or tehsil's name."""
        for district in self.config.districts:
            for tehsil in district.tehsils:
                if tehsil.code == code:
                    return self._pick(tehsil.name)
                for block in tehsil.blocks:
                    if block.code == code:
                        return self._pick(block.name)
        return code

    def level(self, number: int) -> str:
        levels = self.config.levels
        return self._pick(levels[min(max(number, 1), len(levels)) - 1].name)

    def language(self, code: str) -> str:
        lang = self.config.language(code)
        return lang.name if lang else code

    def script(self, code: str) -> str:
        """A script's name (ISO 15924 ``Deva``) in the page's language, from CLDR."""
        try:
            return str(Locale.parse(self.lang).scripts.get(code, code))
        except (ValueError, LookupError):
            return code

    def when(self, value: datetime | None) -> str:
        return value.astimezone(self.tz).strftime("%d-%m-%Y %H:%M") if value else "–"

    def span(self, delta: timedelta) -> tuple[int, str]:
        """A duration as (number, unit): days when a day or more, else hours."""
        seconds = abs(delta.total_seconds())
        if seconds >= 86400:
            return int(seconds // 86400), "d"
        return max(int(seconds // 3600), 0), "h"


def page_language(request: web.Request, staff: StaffMember | None, session_lang: Any) -> str:
    text = request.config_dict[CONSOLE_TEXT]
    wanted = staff.console_language if staff and staff.console_language else session_lang
    return text.choose(wanted if isinstance(wanted, str) else None)


async def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    """``template`` with ``context`` and what every page has: the signed-in member, the
    language and its switch, ``_`` for the console's words, ``names``, the CSRF token."""
    session = await get_session(request)
    staff = signed_in_staff(request)
    lang = page_language(request, staff, session.get("lang"))
    text = request.config_dict[CONSOLE_TEXT]

    def gettext(message: str) -> str:
        return text.gettext(lang, message)

    def label(labels: Mapping[str, str]) -> Callable[[str], str]:
        return lambda code: gettext(labels.get(code, code))

    config = request.config_dict[CONFIG]
    base: dict[str, Any] = {
        "_": gettext,
        "lang": lang,
        "languages": [(code, LANGUAGE_NAMES.get(code, code)) for code in text.languages],
        "staff": staff,
        "names": Names(config, lang, request.config_dict[CLOCK]()),
        "path": request.path_qs,
        "status_label": label(STATUS_LABELS),
        "event_label": label(EVENT_LABELS),
        "sms_label": label(SMS_LABELS),
        "channel_label": label(CHANNEL_LABELS),
        "variable_label": label(VARIABLE_LABELS),
        "simulator_open": config.sms.provider == "simulator"
        or bool(staff and staff.role == StaffRole.STATE_ADMIN and config.console.simulator_numbers),
        **session_context(session),
    }
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)

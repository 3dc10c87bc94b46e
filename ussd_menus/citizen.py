"""The citizen's USSD menu: choose a language, register a complaint.

Screen texts are English message ids marked with ``N_`` and translated per citizen from
``locales/``; names of departments, districts and blocks come from ``config.yaml``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from itertools import groupby
from typing import Protocol
from zoneinfo import ZoneInfo

from gateway.complaints.lifecycle import OPEN
from gateway.complaints.registration import (
    ComplaintView,
    InvalidComplaint,
    NewComplaint,
    Registration,
)
from gateway.config import Config, Language
from gateway.sms.notices import STATUS_WORDS
from gateway.storage.models import Channel
from gateway.text.i18n import N_
from gateway.text.tickets import InvalidTicket
from gateway.ussd.menu import (
    BACK,
    NAV_BACK,
    Action,
    Choice,
    Context,
    Discard,
    End,
    Goto,
    Menu,
    Node,
    Option,
    Reject,
    Restart,
    Resume,
    TextInput,
    Transition,
    localized,
    verbatim,
)
from gateway.ussd.screen import Budget, compose

__all__ = ["CitizenServices", "build_menu"]


class CitizenServices(Protocol):
    """What this menu needs of the application."""

    async def language_of(self, phone: str) -> str | None: ...

    async def set_language(self, phone: str, language: str) -> None: ...

    async def register(self, new: NewComplaint) -> Registration: ...

    async def may_register(self, phone: str) -> bool: ...

    async def recent(self, phone: str, *, limit: int = 20) -> list[ComplaintView]: ...

    async def find(self, ticket: str, *, phone: str) -> ComplaintView | None: ...

    def parse_ticket(self, raw: str) -> str: ...

    async def rate(self, ticket: str, *, phone: str, satisfied: bool) -> bool: ...


Ctx = Context[CitizenServices]
"""What this menu's nodes see."""


OPEN_STATUSES = frozenset(s.value for s in OPEN)
"""The statuses whose complaint shows its due date (with an officer, on a deadline)."""

# Flow answers kept in ctx.data.
DEPARTMENT, DISTRICT, BLOCK, ISSUE, DESCRIPTION = (
    "department",
    "district",
    "block",
    "issue_type",
    "description",
)


async def start(ctx: Ctx) -> str:
    language = await ctx.services.language_of(ctx.phone)
    if language is None:
        return "language"
    ctx.language = language
    return "main"


def language_title(ctx: Ctx) -> str:
    # Shown before the citizen has a language: the word in the default language and English.
    default = ctx.catalogs.gettext(ctx.config.service.default_language, "Language")
    return default if default == "Language" else f"{default}/Language"


MORE_LANGUAGES = N_("More languages")
"""The last option of the first screen, translated short ("अन्य": shown as "अन्य/More"),
and the title of the screen listing the other languages (in English)."""
MORE_GROUP = "more_group"
"""Which group of the other languages the "More languages" screen shows (``ctx.data``)."""
ALL_GROUPS = "all"
"""The "More languages" screen shows every group (the first screen had room for one way)."""
LANGUAGE_INVALID = N_("Wrong choice.")
"""Shorter than other screens' hint: the first screen is the most crowded."""


def _choose(code: str) -> Action[CitizenServices]:
    async def action(c: Ctx) -> Transition:
        await c.services.set_language(c.phone, code)
        c.language = code
        return Restart("main")

    return action


async def _change_language(ctx: Ctx) -> Transition:
    # A new root: the first screen has no room for "0 Back" (choosing the language the
    # caller has goes back as well).
    return Restart("language")


def first_languages(ctx: Ctx) -> list[str]:
    """The languages of the first screen: the caller's network circle's, then the state's
    own (``language_menu``); every language when the state names none."""
    menu = ctx.config.language_menu
    if not menu.first:
        return [lang.code for lang in ctx.config.languages]
    return list(dict.fromkeys([*menu.networks.get(ctx.network, []), *menu.first]))


def language_options(ctx: Ctx) -> Sequence[Option[CitizenServices]]:
    codes = first_languages(ctx)
    labels, more = _first_screen_labels(ctx, codes, more_language_groups(ctx))
    options = [
        Option(label=verbatim(label), action=_choose(code))
        for code, label in zip(codes, labels, strict=True)
    ]
    if len(more) == 1:
        return [*options, Option(label=verbatim(more[0]), action=_show_group(ALL_GROUPS))]
    options += [
        Option(label=verbatim(label), action=_show_group(str(i))) for i, label in enumerate(more)
    ]
    return options


def _first_screen_labels(
    ctx: Ctx, codes: Sequence[str], groups: Sequence[Sequence[Language]]
) -> tuple[list[str], list[str]]:
    """The first screen's labels, the fullest that fit on one screen: each language's name
    with its Latin hint ("हिन्दी (Hindi)"), else its name alone; "More languages" in the
    caller's word and English ("अन्य/More A-K"), else in English ("More A-K"). The state's
    languages and the way to the others stay on one screen (a handset that cannot draw a
    script has English and Roman Hindi)."""
    langs = [lang for lang in map(ctx.config.language, codes) if lang is not None]
    hinted = [f"{lang.name} ({lang.hint})" if lang.hint else lang.name for lang in langs]
    names = [lang.name for lang in langs]
    word = more_languages_label(ctx)
    candidates = [(hinted, word), (names, word), (names, "More")]
    # Laid out as the Choice lays its pages out: for the longer of title and wrong-input hint.
    header = max(language_title(ctx), ctx.t(LANGUAGE_INVALID), key=len)
    for labels, more_word in candidates:
        more = more_labels(groups, more_word)
        items = [f"{i} {label}" for i, label in enumerate([*labels, *more], start=1)]
        if not groups or ctx.budget.fits(compose(header, items, "")):
            return labels, more
    # No room for a way into each group (a network circle added a language): one way into
    # them all, paged on the next screen.
    return names, [word] if groups else []


def more_languages_label(ctx: Ctx) -> str:
    default = ctx.t(MORE_LANGUAGES)
    return default if default == MORE_LANGUAGES else f"{default}/More"


def latin_name(lang: Language) -> str:
    """How the "More languages" screens list a language: by its Latin name."""
    return lang.hint or lang.name


def more_language_groups(ctx: Ctx) -> list[list[Language]]:
    """The languages not on the first screen, by Latin name, in as few screens as hold
    them (each one GSM-7 screen, so that every language is within two screens of the
    first), split evenly where they fit so: ``A-M``, ``N-U``."""
    first = set(first_languages(ctx))
    rest = tuple(
        sorted((latin_name(lang), lang.code) for lang in ctx.config.languages
               if lang.code not in first)
    )  # fmt: skip
    if not rest:
        return []
    shown = _latin_language(ctx.config)
    texts = ctx if shown is None else replace(ctx, language=shown)
    header = max(texts.t(MORE_LANGUAGES), texts.t(LANGUAGE_INVALID), key=len)
    footer = f"{NAV_BACK} {texts.t(BACK)}"
    groups = _grouped(rest, header, footer, ctx.budget)
    return [[lang for code in g if (lang := ctx.config.language(code))] for g in groups]


Named = tuple[str, str]
"""A language's Latin name and its code."""


@functools.lru_cache(maxsize=64)
def _grouped(
    rest: tuple[Named, ...], header: str, footer: str, budget: Budget
) -> tuple[tuple[str, ...], ...]:
    """The codes of ``rest`` in screens that fit ``budget``. Cached: the same few inputs
    come on every hop of the language screens, and laying them out measures a screen some
    fifty times (0.4 ms a hop, measured)."""

    def fits(group: Sequence[Named]) -> bool:
        items = [f"{i} {name}" for i, (name, _) in enumerate(group, start=1)]
        return budget.fits(compose(header, items, footer))

    # Cut between initial letters where a group can (so that "A-M" and "N-U" never share
    # a letter a citizen must guess about), as evenly as the screens allow.
    groups: list[list[Named]] = [[]]
    for _, run in groupby(rest, key=lambda named: named[0][:1]):
        letter = list(run)
        if groups[-1] and not fits([*groups[-1], *letter]):
            groups.append([])
        for named in letter:  # a letter too long for one screen is cut within it
            if groups[-1] and not fits([*groups[-1], named]):
                groups.append([])
            groups[-1].append(named)
    return tuple(tuple(code for _, code in g) for g in _balanced(groups, fits))


def _balanced(
    groups: list[list[Named]], fits: Callable[[Sequence[Named]], bool]
) -> list[list[Named]]:
    """Two groups made as even as the letter boundaries and the screen allow (the first
    holds all it can): "A-K", "L-U" rather than "A-S", "T-U"."""
    if len(groups) != 2:
        return groups
    everyone = [*groups[0], *groups[1]]
    cuts = [
        i
        for i in range(1, len(everyone))
        if everyone[i][0][:1] != everyone[i - 1][0][:1]
        and fits(everyone[:i])
        and fits(everyone[i:])
    ]
    if not cuts:
        return groups
    best = min(cuts, key=lambda i: abs(len(everyone) - 2 * i))
    return [everyone[:best], everyone[best:]]


def more_labels(groups: Sequence[Sequence[Language]], word: str) -> list[str]:
    """The first screen's "More languages" options: one, or one per group with the first
    letters of its Latin names ("अन्य/More A-K")."""
    if len(groups) < 2:
        return [word] * len(groups)
    return [
        f"{word} {latin_name(g[0])[:1].upper()}-{latin_name(g[-1])[:1].upper()}" for g in groups
    ]


def _show_group(group: str) -> Action[CitizenServices]:
    async def action(c: Ctx) -> Transition:
        c.data[MORE_GROUP] = group
        return Goto("more_languages")

    return action


def more_language_options(ctx: Ctx) -> Sequence[Option[CitizenServices]]:
    # By their Latin names, so that the screen is GSM-7 and holds a group whole.
    groups = more_language_groups(ctx)
    if not groups:
        return []
    chosen = ctx.data.get(MORE_GROUP, ALL_GROUPS)
    if chosen.isdigit():
        group = groups[min(int(chosen), len(groups) - 1)]
    else:  # one way into them all: paged with 98
        group = [lang for g in groups for lang in g]
    return [Option(label=verbatim(latin_name(lang)), action=_choose(lang.code)) for lang in group]


def main_title(ctx: Ctx) -> str:
    return ctx.name(ctx.config.service.name)


async def new_complaint(ctx: Ctx) -> Transition:
    ctx.data.clear()
    if not await ctx.services.may_register(ctx.phone):
        limit = ctx.config.lifecycle.monthly_limit_per_number
        text = ctx.t(
            "You have registered {limit} complaints this month, the most allowed. "
            "Please try again next month."
        )
        return End(text.format(limit=limit), outcome="monthly_limit")
    return Goto("department")


# "My complaints" and "Check status": the complaint shown is kept in ctx.data.
MINE, SHOWN = "mine", "shown"
NO_COMPLAINTS = N_("You have no complaints yet.")
NOT_FOUND = N_("No complaint has that number. Type it again:")


async def my_complaints(ctx: Ctx) -> Transition:
    views = await ctx.services.recent(ctx.phone)
    if not views:
        return Reject(ctx.t(NO_COMPLAINTS))
    ctx.data[MINE] = ";".join(f"{v.ticket}:{v.status}" for v in views)
    return Goto("mine")


def mine_options(ctx: Ctx) -> Sequence[Option[CitizenServices]]:
    entries = [e.split(":") for e in ctx.data.get(MINE, "").split(";") if e]
    return [
        Option(
            label=verbatim(f"{ticket} {ctx.t(STATUS_WORDS.get(status, status))}"),
            action=_show(ticket),
        )
        for ticket, status in entries
    ]


def _show(ticket: str) -> Action[CitizenServices]:
    async def show(ctx: Ctx) -> Transition:
        return await _show_complaint(ctx, ticket)

    return show


async def _show_complaint(ctx: Ctx, ticket: str) -> Transition:
    view = await ctx.services.find(ticket, phone=ctx.phone)
    if view is None:
        return Reject(ctx.t(NOT_FOUND))
    ctx.data[SHOWN] = "|".join(
        (
            view.ticket,
            view.status,
            view.department,
            view.due_at.isoformat(),
            "1" if view.owned else "",
        )
    )
    return Goto("complaint")


async def check_ticket(ctx: Ctx) -> Transition:
    try:
        ticket = ctx.services.parse_ticket(ctx.data.pop("typed_ticket", ""))
    except InvalidTicket:
        return Reject(ctx.t("That number is not right. Check it and type again:"))
    return await _show_complaint(ctx, ticket)


def complaint_title(ctx: Ctx) -> str:
    ticket, status, department, due, _owned = ctx.data.get(SHOWN, "||||").split("|")
    dept = ctx.config.department(department)
    ticket_word = ctx.t("Ticket")
    lines = [
        f"{ticket_word} {ticket}",
        ctx.name(dept.name) if dept else department,
        ctx.t(STATUS_WORDS.get(status, status)),
    ]
    if status in OPEN_STATUSES and due:
        when = datetime.fromisoformat(due).astimezone(ZoneInfo(ctx.config.service.timezone))
        due_word = ctx.t("Due by")
        lines.append(f"{due_word} {ctx.catalogs.format_date(ctx.language, when)}")
    return "\n".join(lines)


def complaint_options(ctx: Ctx) -> Sequence[Option[CitizenServices]]:
    _ticket, status, _dept, _due, owned = ctx.data.get(SHOWN, "||||").split("|")
    if status != "resolved" or not owned:
        return []
    return [
        Option(N_("Solved"), action=_rate(satisfied=True)),
        Option(N_("Not solved"), action=_rate(satisfied=False)),
    ]


def _rate(*, satisfied: bool) -> Action[CitizenServices]:
    async def rate(ctx: Ctx) -> Transition:
        ticket = ctx.data.get(SHOWN, "").split("|")[0]
        await ctx.services.rate(ticket, phone=ctx.phone, satisfied=satisfied)
        if satisfied:
            return End(ctx.t("Thank you. Your complaint is closed."), outcome="rated")
        return End(
            ctx.t("Sorry. Your complaint is reopened and sent to a senior officer."),
            outcome="rated",
        )

    return rate


def department_options(ctx: Ctx) -> Sequence[Option[CitizenServices]]:
    return [Option(label=localized(d.name), value=d.code) for d in ctx.config.departments]


def district_options(ctx: Ctx) -> Sequence[Option[CitizenServices]]:
    return [Option(label=localized(d.name), value=d.code) for d in ctx.config.districts]


def block_options(ctx: Ctx) -> Sequence[Option[CitizenServices]]:
    district = ctx.config.district(ctx.data.get(DISTRICT, ""))
    if district is None:
        return []
    return [Option(label=localized(b.name), value=b.code) for b in district.blocks]


async def _chose_issue(ctx: Ctx) -> Transition:
    ctx.data.pop(DESCRIPTION, None)
    return Goto("confirm")


async def _other_issue(ctx: Ctx) -> Transition:
    ctx.data.pop(ISSUE, None)
    return Goto("description")


def issue_options(ctx: Ctx) -> Sequence[Option[CitizenServices]]:
    dept = ctx.config.department(ctx.data.get(DEPARTMENT, ""))
    issues = dept.issues if dept is not None else []
    options = [Option(label=localized(i.name), value=i.code, action=_chose_issue) for i in issues]
    options.append(Option(label=N_("Other (type it)"), action=_other_issue))
    return options


def confirm_title(ctx: Ctx) -> str:
    cfg = ctx.config
    dept = cfg.department(ctx.data.get(DEPARTMENT, ""))
    district = cfg.district(ctx.data.get(DISTRICT, ""))
    block = (
        next((b for b in district.blocks if b.code == ctx.data.get(BLOCK)), None)
        if district
        else None
    )
    issue = dept.issue(ctx.data.get(ISSUE, "")) if dept else None
    what = ctx.name(issue.name) if issue else ctx.data.get(DESCRIPTION, "")
    where = ", ".join(ctx.name(x.name) for x in (block, district) if x is not None)
    dept_name = ctx.name(dept.name) if dept else ""
    heading = ctx.t("Confirm complaint:")
    return f"{heading}\n{dept_name}: {what}\n{where}"


async def submit(ctx: Ctx) -> Transition:
    data = ctx.data
    try:
        registration = await ctx.services.register(
            NewComplaint(
                phone=ctx.phone,
                language=ctx.language,
                department=data.get(DEPARTMENT, ""),
                district=data.get(DISTRICT, ""),
                block=data.get(BLOCK, ""),
                issue_type=data.get(ISSUE),
                description=data.get(DESCRIPTION),
                channel=Channel.USSD,
                source_key=f"ussd:{ctx.session_id}",
            )
        )
    except InvalidComplaint:
        # Only when the configuration changed under a kept draft: choose again.
        return Reject(ctx.t("Please choose the department again."))
    text = ctx.t("Complaint registered. Ticket: {ticket}. You will get an SMS.")
    return End(
        text.format(ticket=registration.ticket), outcome="registered", reference=registration.ticket
    )


def build_menu(config: Config) -> Menu[CitizenServices]:
    """The citizen menu, as the gateway runs it."""
    nodes: list[Node[CitizenServices]] = [
        Choice(
            "language",
            title=language_title,
            options=language_options,
            invalid=LANGUAGE_INVALID,
            root=True,
        ),
        Choice(
            "more_languages",
            title=MORE_LANGUAGES,
            options=more_language_options,
            shown_in=_latin_language(config),
            # The short hint, as on the first screen: pages are laid out for the longer of
            # title and hint, and a group of languages should fill its screen.
            invalid=LANGUAGE_INVALID,
        ),
        Choice(
            "main",
            title=main_title,
            options=[
                Option(N_("New complaint"), action=new_complaint),
                Option(N_("My complaints"), action=my_complaints),
                Option(N_("Check status"), next="ticket_entry"),
                Option(N_("Change language"), action=_change_language),
            ],
            hints=(NO_COMPLAINTS,),
        ),
        Choice("mine", title=N_("Your complaints:"), options=mine_options, hints=(NOT_FOUND,)),
        Choice("complaint", title=complaint_title, options=complaint_options, keep_title=True),
        TextInput(
            "ticket_entry",
            prompt=N_("Type the ticket number:"),
            store="typed_ticket",
            min_length=1,
            max_length=30,
            action=check_ticket,
        ),
        Choice(
            "resume",
            title=N_("You have an unfinished complaint."),
            options=[
                Option(N_("Continue it"), action=_resume),
                Option(N_("Start over"), action=_discard),
            ],
        ),
        Choice(
            "department",
            title=N_("Choose department:"),
            options=department_options,
            store=DEPARTMENT,
            next="district",
        ),
        Choice(
            "district",
            title=N_("Choose district:"),
            options=district_options,
            store=DISTRICT,
            next="block",
        ),
        Choice(
            "block", title=N_("Choose block:"), options=block_options, store=BLOCK, next="issue"
        ),
        Choice("issue", title=N_("What is the problem?"), options=issue_options, store=ISSUE),
        TextInput(
            "description",
            prompt=N_("Type the problem in a few words:"),
            store=DESCRIPTION,
            next="confirm",
            min_length=config.ussd.description_min_length,
            max_length=config.ussd.description_max_length,
        ),
        Choice(
            "confirm",
            title=confirm_title,
            options=[Option(N_("Submit"), action=submit)],
            keep_title=True,
        ),
    ]
    return Menu(
        nodes={n.name: n for n in nodes},
        start=start,
        main="main",
        resumable=frozenset({"department", "district", "block", "issue", "description", "confirm"}),
        resume="resume",
    )


def _latin_language(config: Config) -> str | None:
    """The language screens listing languages by their Latin names are shown in."""
    english = config.language("en_IN")
    if english is not None and english.latin:
        return english.code
    return next((lang.code for lang in config.languages if lang.latin), None)


async def _resume(ctx: Ctx) -> Transition:
    return Resume()


async def _discard(ctx: Ctx) -> Transition:
    return Discard("main")

"""The building blocks menus are written with (menus themselves live in ``ussd_menus/``).

A menu is a set of named nodes. A node renders a screen in the citizen's language and
turns one input into a :data:`Transition`. The engine (``gateway.ussd.engine``) owns what
is common to all of them: navigation keys, pages, budgets, hints, session state, resuming.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, Protocol, TypeVar

from gateway.config import Config
from gateway.text.i18n import N_, Catalogs
from gateway.ussd.screen import Budget, compose, paginate, shorten_to_fit

__all__ = [
    "NAV_BACK",
    "NAV_MAIN",
    "NAV_MORE",
    "Action",
    "Choice",
    "Context",
    "Discard",
    "End",
    "Goto",
    "Menu",
    "Node",
    "Option",
    "Reject",
    "Rendered",
    "Restart",
    "Resume",
    "TextInput",
    "Transition",
    "localized",
    "verbatim",
]

S = TypeVar("S")
"""The application's services a menu uses: each menu states their shape as a Protocol."""

NAV_BACK = "0"
NAV_MORE = "98"
NAV_MAIN = "00"
MORE = N_("More")
BACK = N_("Back")


@dataclass
class Context(Generic[S]):
    """What a node sees: who is calling, in which language, and the answers so far."""

    phone: str
    session_id: str
    language: str
    data: dict[str, str]
    config: Config
    catalogs: Catalogs
    services: S
    """The application's services, of the shape the menu states."""
    budget: Budget
    network: str = ""
    """The caller's network code (MCC and MNC) where the aggregator sends it, else empty."""

    def t(self, message: str) -> str:
        """``message`` (an English message id) in the citizen's language."""
        return self.catalogs.gettext(self.language, message)

    def name(self, texts: Mapping[str, str]) -> str:
        """A configured name (department, district ...) in the citizen's language."""
        return texts.get(self.language) or texts[self.config.service.default_language]


# Transitions: what handling an input leads to.
@dataclass(frozen=True, slots=True)
class Goto:
    node: str


@dataclass(frozen=True, slots=True)
class Restart:
    """Go to ``node`` as a new root: "back" will not return past it."""

    node: str


@dataclass(frozen=True, slots=True)
class Reject:
    """The input was not understood: show the same screen with ``hint`` on top."""

    hint: str


@dataclass(frozen=True, slots=True)
class End:
    """Close the session with ``text``; ``outcome`` is recorded against the session."""

    text: str
    outcome: str = "completed"
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    """Continue the unfinished flow this caller left (the engine restores it)."""


@dataclass(frozen=True, slots=True)
class Discard:
    """Forget the unfinished flow and go to ``node``."""

    node: str


Transition = Goto | Restart | Reject | End | Resume | Discard
Text = str | Callable[[Context[S]], str]
"""A message id to translate, or a function composing the text (for dynamic content)."""
Action = Callable[[Context[S]], Awaitable[Transition]]


def _text(ctx: Context[S], text: Text[S]) -> str:
    return text(ctx) if callable(text) else ctx.t(text)


def localized(texts: Mapping[str, str]) -> Callable[[Context[S]], str]:
    """A label taken from configuration (a name per language), not from the catalogs."""
    return lambda ctx: ctx.name(texts)


def verbatim(text: str) -> Callable[[Context[S]], str]:
    """A label shown as written, in every language (a language's own name)."""
    return lambda ctx: text


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    pages: int = 1
    shortened: bool = False
    """Dynamic text had to be cut to fit (never expected of a static screen)."""


class Node(Protocol[S]):
    @property
    def name(self) -> str: ...

    def render(
        self, ctx: Context[S], *, page: int, hint: str | None, can_go_back: bool
    ) -> Rendered: ...

    async def handle(self, ctx: Context[S], value: str, *, page: int) -> Transition: ...


@dataclass(frozen=True, slots=True)
class Option(Generic[S]):
    label: Text[S]
    next: str | None = None
    value: str | None = None
    """Stored under the choice's ``store`` key when chosen."""
    action: Action[S] | None = None
    """Runs when chosen, after storing ``value``; its transition wins over ``next``."""


@dataclass(frozen=True)
class Choice(Generic[S]):
    """A numbered list (options may depend on earlier answers); paginated to fit."""

    name: str
    title: Text[S]
    options: Sequence[Option[S]] | Callable[[Context[S]], Sequence[Option[S]]]
    store: str | None = None
    next: str | None = None
    invalid: str = N_("Wrong choice. Try again:")
    """The hint shown in place of the title after an input that is not on the list."""
    keep_title: bool = False
    """Show the hint above the title instead of in its place (when the title says what is
    being confirmed); the title is shortened to fit."""
    hints: tuple[str, ...] = ()
    """Other hints this node's actions may show (message ids): pages leave room for them."""
    shown_in: str | None = None
    """The language this screen's own texts (title, hints, More, Back) are shown in whatever
    the caller's (a list of languages by their Latin names, kept GSM-7: 182 characters)."""
    root: bool = False
    """Reached only as a new root (:class:`Restart`): its first page never offers "0 Back",
    whose room its items need (the language menu)."""

    def option_list(self, ctx: Context[S]) -> Sequence[Option[S]]:
        return self.options(ctx) if callable(self.options) else self.options

    def texts(self, ctx: Context[S]) -> Context[S]:
        """The context this screen's texts are translated in (``ctx`` unless ``shown_in``)."""
        return ctx if self.shown_in is None else replace(ctx, language=self.shown_in)

    def render(
        self, ctx: Context[S], *, page: int, hint: str | None, can_go_back: bool
    ) -> Rendered:
        ctx = self.texts(ctx)
        can_go_back = can_go_back and not self.root
        options = self.option_list(ctx)
        items = [f"{i} {_text(ctx, o.label)}" for i, o in enumerate(options, start=1)]
        title = _text(ctx, self.title)
        more = f"{NAV_MORE} {ctx.t(MORE)}"
        back = f"{NAV_BACK} {ctx.t(BACK)}"
        fits = ctx.budget.fits
        # A dynamic title may be too long to leave room for even a short first item.
        # Pages after the first end with "0 Back" whatever can_go_back says: leave room.
        probe = [items[0][:6]] if items else []
        has_back = can_go_back or len(items) > 1
        full_footer = " ".join(
            part for part, shown in ((more, bool(items)), (back, has_back)) if shown
        )
        header = shorten_to_fit(title, lambda h: fits(compose(h, probe, full_footer)))
        shortened = header != title
        # Lay pages out for the longer of title and hint, so a wrong input keeps the page.
        invalid = ctx.t(self.invalid)
        layout = max([header, invalid, *(ctx.t(h) for h in self.hints)], key=len)
        pages = paginate(
            layout, items, budget=ctx.budget, more=more, back=back, first_page_back=can_go_back
        )
        shown = pages[min(max(page, 0), len(pages) - 1)]
        if hint:
            # The hint takes the title's place (or tops it); the page keeps its items.
            wanted = f"{hint}\n{header}" if self.keep_title else hint
            fitted = shorten_to_fit(wanted, lambda h: fits(shown.text(h)))
            shortened = fitted != wanted and not self.keep_title
            return Rendered(shown.text(fitted), pages=len(pages), shortened=shortened)
        return Rendered(shown.text(header), pages=len(pages), shortened=shortened)

    async def handle(self, ctx: Context[S], value: str, *, page: int) -> Transition:
        options = self.option_list(ctx)
        if not value.isdigit() or not 1 <= int(value) <= len(options):
            return Reject(self.texts(ctx).t(self.invalid))
        option = options[int(value) - 1]
        if self.store is not None and option.value is not None:
            ctx.data[self.store] = option.value
        if option.action is not None:
            return await option.action(ctx)
        target = option.next or self.next
        if target is None:
            raise LookupError(f"choice {self.name}: option {value} leads nowhere")
        return Goto(target)


@dataclass(frozen=True)
class TextInput(Generic[S]):
    """Free text typed on the keypad (it may contain ``*``)."""

    name: str
    prompt: Text[S]
    store: str
    next: str | None = None
    min_length: int = 1
    max_length: int = 160
    too_short: str = N_("Too short. Please type a few words:")
    action: Action[S] | None = None
    """Runs after the text is stored (to check it); its transition wins over ``next``."""

    def render(
        self, ctx: Context[S], *, page: int, hint: str | None, can_go_back: bool
    ) -> Rendered:
        prompt = hint if hint else _text(ctx, self.prompt)
        footer = f"{NAV_BACK} {ctx.t(BACK)}" if can_go_back else ""
        fitted = shorten_to_fit(prompt, lambda p: ctx.budget.fits(compose(p, [], footer)))
        return Rendered(compose(fitted, [], footer), shortened=fitted != prompt)

    async def handle(self, ctx: Context[S], value: str, *, page: int) -> Transition:
        text = " ".join(value.split())
        if len(text) < self.min_length:
            return Reject(ctx.t(self.too_short))
        # Longer than allowed: keep what fits rather than make the citizen type it again.
        ctx.data[self.store] = text[: self.max_length]
        if self.action is not None:
            return await self.action(ctx)
        if self.next is None:
            raise LookupError(f"text input {self.name} leads nowhere")
        return Goto(self.next)


StartFn = Callable[[Context[S]], Awaitable[str]]


@dataclass(frozen=True)
class Menu(Generic[S]):
    """A whole menu: its nodes, how a session starts, and which nodes can be resumed."""

    nodes: Mapping[str, Node[S]]
    start: StartFn[S]
    """Chooses the first node for a new session (and may set ``ctx.language``)."""
    main: str
    """Where ``00`` leads."""
    resumable: frozenset[str] = field(default_factory=frozenset)
    """Nodes of a flow worth keeping when a session drops (the draft of a complaint)."""
    resume: str | None = None
    """The node that offers to continue a kept flow or start over."""

    def __post_init__(self) -> None:
        names = set(self.nodes)
        for required in (self.main, self.resume):
            if required is not None and required not in names:
                raise ValueError(f"menu: no node named {required!r}")
        unknown = self.resumable - names
        if unknown:
            raise ValueError(f"menu: resumable names unknown nodes {sorted(unknown)}")

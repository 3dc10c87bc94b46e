"""The USSD engine: runs a :class:`~gateway.ussd.menu.Menu` hop by hop.

Session state lives in Redis (:mod:`gateway.ussd.sessions`), and each hop holds the
session's lock, so a retried or duplicated request waits for the first and then gets the
very screen the first produced, changing nothing. The network sends everything
typed so far (``1*2*Paani nahi``); the engine takes the new input as what follows the text
it last saw, so free text containing ``*`` survives, and falls back to the whole text for
networks that send only the latest input.

A flow marked resumable (a complaint being registered) is also kept per phone number for
``resume_minutes``: a citizen whose session dropped is offered to continue where it stopped.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic

from redis.asyncio import Redis

from gateway.channels.base import UssdHop, UssdReply
from gateway.config import Config
from gateway.text.i18n import Catalogs
from gateway.ussd.menu import (
    NAV_BACK,
    NAV_MAIN,
    NAV_MORE,
    Choice,
    Context,
    Discard,
    End,
    Goto,
    Menu,
    Reject,
    Restart,
    Resume,
    S,
    Transition,
)
from gateway.ussd.screen import Budget
from gateway.ussd.sessions import SessionState, SessionStore

__all__ = ["SessionHooks", "UssdEngine"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionHooks:
    """Where the engine reports session life to the application (recorded in the database)."""

    started: Callable[[UssdHop, str], Awaitable[None]]
    ended: Callable[[UssdHop, End], Awaitable[None]]


class UssdEngine(Generic[S]):
    """Runs ``menu`` for USSD hops, with ``services`` for its actions; state in ``redis``."""

    def __init__(
        self,
        *,
        menu: Menu[S],
        redis: Redis,
        config: Config,
        catalogs: Catalogs,
        services: S,
        hooks: SessionHooks | None = None,
    ) -> None:
        self.menu = menu
        self.sessions = SessionStore(
            redis,
            ttl=int(config.ussd.session_ttl_seconds),
            draft_ttl=int(config.ussd.resume_minutes * 60),
            lock_timeout=config.ussd.lock_timeout_seconds,
        )
        self.config = config
        self.catalogs = catalogs
        self.services = services
        self.hooks = hooks
        self._budgets = {
            lang.code: Budget(ucs2=lang.screen_budget or 80) for lang in config.languages
        }

    def context(
        self, *, phone: str, session_id: str, language: str, data: dict[str, str]
    ) -> Context[S]:
        return Context(
            phone=phone,
            session_id=session_id,
            language=language,
            data=data,
            config=self.config,
            catalogs=self.catalogs,
            services=self.services,
            budget=self._budgets.get(language, Budget()),
        )

    async def handle(self, hop: UssdHop) -> UssdReply:
        """Answer one hop. Never raises for anything a caller typed."""
        token = uuid.uuid4().hex
        got = await self.sessions.lock(hop.session_id, hop.phone, token)
        if got is None:
            log.warning("ussd session %s busy; lock not acquired", hop.session_id)
            return UssdReply(
                self.catalogs.gettext(
                    self.config.service.default_language, "The service is busy. Please dial again."
                ),
                end=True,
            )
        released = False
        try:
            reply, end, state = await self._handle_locked(hop, got.state, got.draft)
            if state is not None:
                released = await self._save(hop, state, token=token, ended=end is not None)
                if not released:
                    log.warning("ussd session %s: lock expired before release", hop.session_id)
                released = True
            if end is not None and self.hooks is not None:
                try:
                    await self.hooks.ended(hop, end)
                except Exception:
                    # The citizen's action is done; a missing session record must not undo it.
                    log.exception("ussd session %s: recording its end failed", hop.session_id)
            return reply
        finally:
            if not released:
                await self._unlock(hop, token)

    async def _unlock(self, hop: UssdHop, token: str) -> None:
        if not await self.sessions.unlock(hop.session_id, token):
            log.warning("ussd session %s: lock expired before release", hop.session_id)

    async def _handle_locked(
        self, hop: UssdHop, raw: bytes | None, raw_draft: bytes | None
    ) -> tuple[UssdReply, End | None, SessionState | None]:
        """The reply, the end reached (if any), and the state to store (None: store nothing)."""
        if raw is None:
            state, inputs = await self._new_session(hop, raw_draft)
        else:
            state = SessionState.load(raw)
            if state.phone != hop.phone:
                log.warning("ussd session %s: phone changed mid-session", hop.session_id)
                text = self._t(state.language, "Session error. Please dial again.")
                return UssdReply(text, True), None, None
            if hop.latest_only:
                state.latest_only = True  # said by the provider, not guessed from the text
            retry = hop.text == state.last_text and not state.latest_only
            if (retry or state.ended) and state.last_reply is not None:
                # A retry of the hop already answered: same screen, nothing changes.
                return UssdReply(*state.last_reply), None, None
            inputs = [self._new_input(state, hop.text)]

        reply: tuple[str, bool] | None = None
        end: End | None = None
        try:
            for value in inputs:
                reply, end = await self._step(state, hop, value)
                if end is not None:
                    break
            if reply is None:
                reply = (self._render(state, hop), False)
        except Exception:
            # The citizen's answers so far are in the draft kept at the previous hop.
            log.exception("ussd session %s failed", hop.session_id)
            text = self._t(state.language, "Sorry, something went wrong. Dial again to continue.")
            return UssdReply(text, end=True), None, None

        state.last_text = hop.text
        state.last_reply = reply
        state.ended = reply[1]
        return UssdReply(*reply), end, state

    @staticmethod
    def _new_input(state: SessionState, text: str) -> str:
        last = state.last_text
        if state.latest_only or not last:
            return text
        if text.startswith(last + "*"):
            return text[len(last) + 1 :]
        # The network sends only the latest input. From now on an input equal to the last
        # one is a new input, not a retry: such networks give no way to tell them apart.
        state.latest_only = True
        return text

    async def _new_session(
        self, hop: UssdHop, raw_draft: bytes | None
    ) -> tuple[SessionState, list[str]]:
        language = self.config.service.default_language
        ctx = self.context(phone=hop.phone, session_id=hop.session_id, language=language, data={})
        draft = None
        if self.menu.resume is not None and raw_draft is not None:
            draft = json.loads(raw_draft)
        start = await self.menu.start(ctx)
        if draft is not None and start == self.menu.main and self.menu.resume is not None:
            start = self.menu.resume
        state = SessionState(
            phone=hop.phone,
            language=ctx.language,
            stack=[[start, 0]],
            data={},
            draft=draft,
            latest_only=hop.latest_only,
        )
        if self.hooks is not None:
            try:
                await self.hooks.started(hop, state.language)
            except Exception:
                log.exception("ussd session %s: recording its start failed", hop.session_id)
        # A first hop may carry inputs already (a code dialled as *1100*1#).
        inputs = [v for v in hop.text.split("*") if v] if hop.text else []
        return state, inputs

    async def _step(
        self, state: SessionState, hop: UssdHop, raw_value: str
    ) -> tuple[tuple[str, bool], End | None]:
        value = raw_value.strip()
        node_name, page = state.stack[-1]
        node = self.menu.nodes[node_name]
        state.hint = None
        if value == NAV_MAIN:
            state.stack = [[self.menu.main, 0]]
            return (self._render(state, hop), False), None
        if value == NAV_BACK:
            if page > 0:
                state.stack[-1][1] = page - 1
            elif len(state.stack) > 1:
                state.stack.pop()
            return (self._render(state, hop), False), None
        if value == NAV_MORE and isinstance(node, Choice):
            ctx = self._ctx(state, hop)
            if page + 1 < node.render(ctx, page=page, hint=None, can_go_back=True).pages:
                state.stack[-1][1] = page + 1
                return (self._render(state, hop), False), None

        ctx = self._ctx(state, hop)
        transition: Transition = await node.handle(ctx, value, page=page)
        state.language = ctx.language
        state.data = ctx.data
        return self._apply(state, hop, transition)

    def _apply(
        self, state: SessionState, hop: UssdHop, t: Transition
    ) -> tuple[tuple[str, bool], End | None]:
        if isinstance(t, Goto):
            state.stack.append([t.node, 0])
        elif isinstance(t, Restart):
            state.stack = [[t.node, 0]]
        elif isinstance(t, Reject):
            state.hint = t.hint
        elif isinstance(t, End):
            return (t.text, True), t
        elif isinstance(t, Resume):
            draft = state.draft or {}
            state.stack = draft.get("s") or [[self.menu.main, 0]]
            state.data = dict(draft.get("d") or {})
            state.draft = None
        elif isinstance(t, Discard):
            state.draft = None
            state.drop_draft = True
            state.data = {}
            state.stack = [[t.node, 0]]
        return (self._render(state, hop), False), None

    def _ctx(self, state: SessionState, hop: UssdHop) -> Context[S]:
        return self.context(
            phone=state.phone, session_id=hop.session_id, language=state.language, data=state.data
        )

    def _render(self, state: SessionState, hop: UssdHop) -> str:
        node_name, page = state.stack[-1]
        node = self.menu.nodes[node_name]
        ctx = self._ctx(state, hop)
        return node.render(ctx, page=page, hint=state.hint, can_go_back=len(state.stack) > 1).text

    async def _save(self, hop: UssdHop, state: SessionState, *, token: str, ended: bool) -> bool:
        """Store the state and the phone's kept flow (the flow's place, while in a resumable
        node), and release the lock; False when the lock had expired."""
        resumable = state.stack[-1][0] in self.menu.resumable
        return await self.sessions.save(
            hop.session_id,
            state,
            token=token,
            # Started over, or the flow finished: the kept flow goes.
            drop_draft=state.drop_draft or (ended and resumable),
            draft={"s": state.stack, "d": state.data} if resumable and not ended else None,
        )

    def _t(self, language: str, message: str) -> str:
        return self.catalogs.gettext(language, message)

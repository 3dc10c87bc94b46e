"""The USSD engine: runs a :class:`~gateway.ussd.menu.Menu` hop by hop.

Session state lives in Redis under the network's session ID, with a TTL, and each hop
holds a per-session lock, so a retried or duplicated request waits for the first and then
gets the very screen the first produced, changing nothing. The network sends everything
typed so far (``1*2*Paani nahi``); the engine takes the new input as what follows the text
it last saw, so free text containing ``*`` survives, and falls back to the whole text for
networks that send only the latest input.

A flow marked resumable (a complaint being registered) is also kept per phone number for
``resume_minutes``: a citizen whose session dropped is offered to continue where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

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
    Transition,
)
from gateway.ussd.screen import Budget

__all__ = ["SessionHooks", "UssdEngine"]

log = logging.getLogger(__name__)

SESSION_KEY = "ussd:session:{}"
LOCK_KEY = "ussd:lock:{}"
DRAFT_KEY = "ussd:draft:{}"

# A hop costs two Redis round trips: one script takes the session's lock and reads its
# state (and the phone's kept flow) together; another writes the new state and releases
# the lock. Taking the lock, reading, writing and releasing one by one took four.
_ACQUIRE_AND_READ = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('get', KEYS[2]), redis.call('get', KEYS[3])}
end
return {0}
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
  return 1
end
return 0
"""
_SAVE_AND_RELEASE = """
redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3])
if ARGV[4] == 'del' then
  redis.call('del', KEYS[3])
elseif ARGV[4] == 'set' then
  redis.call('set', KEYS[3], ARGV[5], 'EX', ARGV[6])
end
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
  return 1
end
return 0
"""
_LOCK_POLL_SECONDS = 0.1


@dataclass
class _State:
    phone: str
    language: str
    stack: list[list[Any]]
    """[[node, page], ...]; the last is the screen shown."""
    data: dict[str, str] = field(default_factory=dict)
    last_text: str | None = None
    last_reply: tuple[str, bool] | None = None
    hint: str | None = None
    draft: dict[str, Any] | None = None
    """A kept flow this session may resume."""
    ended: bool = False
    latest_only: bool = False
    """The network sends only the newest input, not the whole path (seen on its hops)."""
    drop_draft: bool = False
    """Set for the hop that discards the kept flow (not stored)."""

    def dump(self) -> str:
        return json.dumps(
            {
                "p": self.phone,
                "l": self.language,
                "s": self.stack,
                "d": self.data,
                "t": self.last_text,
                "r": self.last_reply,
                "h": self.hint,
                "k": self.draft,
                "e": self.ended,
                "o": self.latest_only,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, raw: str | bytes) -> _State:
        d = json.loads(raw)
        reply = d.get("r")
        return cls(
            phone=d["p"],
            language=d["l"],
            stack=d["s"],
            data=d["d"],
            last_text=d["t"],
            last_reply=(reply[0], bool(reply[1])) if reply else None,
            hint=d.get("h"),
            draft=d.get("k"),
            ended=bool(d.get("e")),
            latest_only=bool(d.get("o")),
        )


@dataclass(frozen=True)
class SessionHooks:
    """Where the engine reports session life to the application (recorded in the database)."""

    started: Callable[[UssdHop, str], Awaitable[None]]
    ended: Callable[[UssdHop, End], Awaitable[None]]


class UssdEngine:
    """Runs ``menu`` for USSD hops; state in ``redis``."""

    def __init__(
        self,
        *,
        menu: Menu,
        redis: Redis,
        config: Config,
        catalogs: Catalogs,
        services: Any,
        hooks: SessionHooks | None = None,
    ) -> None:
        self.menu = menu
        self.redis = redis
        self.config = config
        self.catalogs = catalogs
        self.services = services
        self.hooks = hooks
        self._ttl = config.ussd.session_ttl_seconds
        self._draft_ttl = config.ussd.resume_minutes * 60
        self._budgets = {
            lang.code: Budget(ucs2=lang.screen_budget or 80) for lang in config.languages
        }

    # Registered on first use: an engine used only to render screens has no Redis.
    @cached_property
    def _acquire_and_read(self) -> AsyncScript:
        return self.redis.register_script(_ACQUIRE_AND_READ)

    @cached_property
    def _release(self) -> AsyncScript:
        return self.redis.register_script(_RELEASE)

    @cached_property
    def _save_and_release(self) -> AsyncScript:
        return self.redis.register_script(_SAVE_AND_RELEASE)

    def context(
        self, *, phone: str, session_id: str, language: str, data: dict[str, str]
    ) -> Context:
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
        got = await self._lock_and_read(hop, token)
        if got is None:
            log.warning("ussd session %s busy; lock not acquired", hop.session_id)
            return UssdReply(
                self.catalogs.gettext(
                    self.config.service.default_language, "The service is busy. Please dial again."
                ),
                end=True,
            )
        raw, raw_draft = got
        released = False
        try:
            reply, end, state = await self._handle_locked(hop, raw, raw_draft)
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

    async def _lock_and_read(self, hop: UssdHop, token: str) -> tuple[Any, Any] | None:
        """Take the session's lock, waiting up to the configured time; then its stored state
        and the phone's kept flow, read under the lock. None when the lock stayed busy."""
        keys = [
            LOCK_KEY.format(hop.session_id),
            SESSION_KEY.format(hop.session_id),
            DRAFT_KEY.format(hop.phone),
        ]
        hold_ms = int(self.config.ussd.lock_timeout_seconds * 2 * 1000)
        give_up = time.monotonic() + self.config.ussd.lock_timeout_seconds
        while True:
            got = await self._acquire_and_read(keys=keys, args=[token, hold_ms])
            if int(got[0]) == 1:
                return got[1], got[2]
            if time.monotonic() + _LOCK_POLL_SECONDS > give_up:
                return None
            await asyncio.sleep(_LOCK_POLL_SECONDS)

    async def _unlock(self, hop: UssdHop, token: str) -> None:
        released = await self._release(keys=[LOCK_KEY.format(hop.session_id)], args=[token])
        if not int(released):
            log.warning("ussd session %s: lock expired before release", hop.session_id)

    async def _handle_locked(
        self, hop: UssdHop, raw: Any, raw_draft: Any
    ) -> tuple[UssdReply, End | None, _State | None]:
        """The reply, the end reached (if any), and the state to store (None: store nothing)."""
        if raw is None:
            state, inputs = await self._new_session(hop, raw_draft)
        else:
            state = _State.load(raw)
            if state.phone != hop.phone:
                log.warning("ussd session %s: phone changed mid-session", hop.session_id)
                text = self._t(state.language, "Session error. Please dial again.")
                return UssdReply(text, True), None, None
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
    def _new_input(state: _State, text: str) -> str:
        last = state.last_text
        if state.latest_only or not last:
            return text
        if text.startswith(last + "*"):
            return text[len(last) + 1 :]
        # The network sends only the latest input. From now on an input equal to the last
        # one is a new input, not a retry: such networks give no way to tell them apart.
        state.latest_only = True
        return text

    async def _new_session(self, hop: UssdHop, raw_draft: Any) -> tuple[_State, list[str]]:
        language = self.config.service.default_language
        ctx = self.context(phone=hop.phone, session_id=hop.session_id, language=language, data={})
        draft = None
        if self.menu.resume is not None and raw_draft is not None:
            draft = json.loads(raw_draft)
        start = await self.menu.start(ctx)
        if draft is not None and start == self.menu.main and self.menu.resume is not None:
            start = self.menu.resume
        state = _State(
            phone=hop.phone, language=ctx.language, stack=[[start, 0]], data={}, draft=draft
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
        self, state: _State, hop: UssdHop, raw_value: str
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
        self, state: _State, hop: UssdHop, t: Transition
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

    def _ctx(self, state: _State, hop: UssdHop) -> Context:
        return self.context(
            phone=state.phone, session_id=hop.session_id, language=state.language, data=state.data
        )

    def _render(self, state: _State, hop: UssdHop) -> str:
        node_name, page = state.stack[-1]
        node = self.menu.nodes[node_name]
        ctx = self._ctx(state, hop)
        return node.render(ctx, page=page, hint=state.hint, can_go_back=len(state.stack) > 1).text

    async def _save(self, hop: UssdHop, state: _State, *, token: str, ended: bool) -> bool:
        """Store the state and the phone's kept flow, and release the lock, in one round
        trip; False when the lock had expired (the state is stored all the same)."""
        top = state.stack[-1][0]
        draft_op, draft_json = "", ""
        if state.drop_draft or (ended and top in self.menu.resumable):
            draft_op = "del"  # started over, or the flow finished
        elif top in self.menu.resumable and not ended:
            draft_op = "set"
            draft_json = json.dumps({"s": state.stack, "d": state.data}, ensure_ascii=False)
        released = await self._save_and_release(
            keys=[
                LOCK_KEY.format(hop.session_id),
                SESSION_KEY.format(hop.session_id),
                DRAFT_KEY.format(state.phone),
            ],
            args=[token, state.dump(), int(self._ttl), draft_op, draft_json, int(self._draft_ttl)],
        )
        return bool(int(released))

    def _t(self, language: str, message: str) -> str:
        return self.catalogs.gettext(language, message)

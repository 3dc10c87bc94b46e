"""Where a USSD session lives between hops: Redis, under the network's session ID, with a
TTL, each hop holding the session's lock; and, per phone number, the flow a citizen whose
session dropped may resume (``ussd.resume_minutes``).

A hop costs two Redis round trips: one script takes the session's lock and reads its state
(and the phone's kept flow) together; another writes the new state and releases the lock.
Taking the lock, reading, writing and releasing one by one took four.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

__all__ = ["Frame", "Locked", "SessionState", "SessionStore"]

SESSION_KEY = "ussd:session:{}"
LOCK_KEY = "ussd:lock:{}"
DRAFT_KEY = "ussd:draft:{}"

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

Frame = list[Any]
"""``[node, page]``: a screen on the session's stack (a list: it is stored as JSON)."""


@dataclass
class SessionState:
    """A session between two hops."""

    phone: str
    language: str
    stack: list[Frame]
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
    def load(cls, raw: str | bytes) -> SessionState:
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
class Locked:
    """What was stored, read under the session's lock (raw: the engine reads it)."""

    state: bytes | None
    draft: bytes | None
    """The phone's kept flow, as JSON."""


class SessionStore:
    """Sessions in ``redis``, kept ``ttl`` seconds after their last hop; a phone's kept
    flow ``draft_ttl`` seconds; a hop waits up to ``lock_timeout`` for the session's lock."""

    def __init__(self, redis: Redis, *, ttl: int, draft_ttl: int, lock_timeout: float) -> None:
        self.redis = redis
        self.ttl = ttl
        self.draft_ttl = draft_ttl
        self.lock_timeout = lock_timeout

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

    async def lock(self, session_id: str, phone: str, token: str) -> Locked | None:
        """Take the session's lock as ``token``, waiting up to ``lock_timeout``; then its
        stored state and the phone's kept flow, read under the lock. None when the lock
        stayed busy."""
        keys = [
            LOCK_KEY.format(session_id),
            SESSION_KEY.format(session_id),
            DRAFT_KEY.format(phone),
        ]
        hold_ms = int(self.lock_timeout * 2 * 1000)
        give_up = time.monotonic() + self.lock_timeout
        while True:
            got = await self._acquire_and_read(keys=keys, args=[token, hold_ms])
            if int(got[0]) == 1:
                return Locked(state=got[1], draft=got[2])
            if time.monotonic() + _LOCK_POLL_SECONDS > give_up:
                return None
            await asyncio.sleep(_LOCK_POLL_SECONDS)

    async def unlock(self, session_id: str, token: str) -> bool:
        """Release the lock ``token`` holds; False when it had expired."""
        released = await self._release(keys=[LOCK_KEY.format(session_id)], args=[token])
        return bool(int(released))

    async def save(
        self,
        session_id: str,
        state: SessionState,
        *,
        token: str,
        draft: dict[str, Any] | None = None,
        drop_draft: bool = False,
    ) -> bool:
        """Store ``state``, keep ``draft`` as the phone's flow (or drop the kept one), and
        release the lock, in one round trip; False when the lock had expired (the state is
        stored all the same)."""
        draft_op, draft_json = "", ""
        if drop_draft:
            draft_op = "del"
        elif draft is not None:
            draft_op = "set"
            draft_json = json.dumps(draft, ensure_ascii=False)
        released = await self._save_and_release(
            keys=[
                LOCK_KEY.format(session_id),
                SESSION_KEY.format(session_id),
                DRAFT_KEY.format(state.phone),
            ],
            args=[token, state.dump(), self.ttl, draft_op, draft_json, self.draft_ttl],
        )
        return bool(int(released))

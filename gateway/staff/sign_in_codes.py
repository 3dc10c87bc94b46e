"""The console's second factor (``console.otp``): after the right password, a one-time
six-digit code is texted to the staff member's registered number, and the sign-in ends
only when it is typed back.

A code is kept in Redis (its SHA-256 with the challenge, never the code itself) for
``console.otp_minutes``, works once, and after ``console.otp_tries`` wrong tries is gone:
the staff member signs in with their password again, which texts a new one. The SMS is
written to the outbox in its own transaction and handed to the worker like every other
message (``staff_sign_in_code``, essential); the outbox keeps its text, which holds the code
only until it is used or expires.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Final

from redis.asyncio import Redis
from tortoise.transactions import in_transaction

from gateway.config import Config
from gateway.sms.notices import Notices
from gateway.sms.outbox import Dispatcher, queue_messages
from gateway.storage.models import StaffMember

__all__ = ["CODE_TEMPLATE", "SignInCodes"]

CODE_TEMPLATE: Final = "staff_sign_in_code"
_PREFIX: Final = "sampark:console:code:"


def _digest(challenge: str, code: str) -> str:
    return hashlib.sha256(f"{challenge}:{code}".encode()).hexdigest()


class SignInCodes:
    """One-time sign-in codes by SMS, keyed by a random challenge the session holds."""

    def __init__(
        self, *, config: Config, notices: Notices, dispatcher: Dispatcher, redis: Redis
    ) -> None:
        self.config = config
        self.notices = notices
        self.dispatcher = dispatcher
        self.redis = redis

    async def send(self, staff: StaffMember) -> str | None:
        """Text a new code to ``staff``'s registered number: the challenge that
        :meth:`check` takes it back with (``None`` when the account has no number)."""
        if not staff.phone:
            return None
        settings = self.config.console
        code = f"{secrets.randbelow(10**6):06d}"
        challenge = secrets.token_urlsafe(24)
        entry = {"staff": staff.id, "digest": _digest(challenge, code)}
        await self.redis.set(_PREFIX + challenge, json.dumps(entry), ex=settings.otp_minutes * 60)
        languages = {lang.code for lang in self.config.languages}
        language = staff.console_language if staff.console_language in languages else None
        draft = self.notices.draft(
            CODE_TEMPLATE,
            to=staff.phone,
            language=language or self.config.service.default_language,
            values={"code": code, "minutes": str(settings.otp_minutes)},
            key=f"sign-in-code:{challenge}",
            complaint_id=None,
        )
        assert draft is not None  # essential: written whatever the number opted out of
        async with in_transaction() as conn:
            ids = await queue_messages([draft], using_db=conn)
        await self.dispatcher.dispatch(ids)
        return challenge

    async def check(self, challenge: str, code: str) -> int | None:
        """The staff ID that ``code`` signs in, once; ``None`` for a wrong, used or expired
        code. Each wrong try counts; past ``console.otp_tries`` the challenge is gone."""
        key = _PREFIX + challenge
        raw = await self.redis.get(key)
        if raw is None:
            return None
        entry = json.loads(raw)
        if hmac.compare_digest(entry["digest"], _digest(challenge, code.strip())):
            # Whoever deletes it signs in: two requests with the right code make one sign-in.
            return int(entry["staff"]) if await self.redis.delete(key) else None
        tries = await self.redis.incr(key + ":tries")
        await self.redis.expire(key + ":tries", self.config.console.otp_minutes * 60)
        if tries >= self.config.console.otp_tries:
            await self.redis.delete(key, key + ":tries")
        return None

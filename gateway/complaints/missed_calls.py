"""Missed calls: a citizen gives the helpline's number a missed call and is texted how to
use the service (the USSD code to dial, the helpline's number), in the language they chose
before (the service's default otherwise). A second missed call within an hour gets nothing
more; every one is recorded, for the monthly review.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.channels.base import MissedCall
from gateway.config import Config
from gateway.sms.notices import Notices
from gateway.sms.outbox import Dispatcher, queue_messages
from gateway.storage.models import Citizen
from gateway.storage.models import MissedCall as MissedCallRow
from gateway.text.phone import mask_phone

__all__ = ["REPLY_TEMPLATE", "MissedCalls"]

log = logging.getLogger(__name__)

REPLY_TEMPLATE: Final = "missed_call_reply"
QUIET: Final = timedelta(hours=1)
"""After an SMS back, further missed calls from the number get none for this long."""


class MissedCalls:
    """Records missed calls and texts the callers back, at most once an hour each."""

    def __init__(
        self,
        *,
        config: Config,
        notices: Notices,
        dispatcher: Dispatcher,
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.notices = notices
        self.dispatcher = dispatcher
        self.clock = clock

    async def receive(self, call: MissedCall) -> bool:
        """Record ``call`` and text the caller back unless they were within the hour (or the
        provider sent this call before); whether an SMS was queued."""
        now = self.clock()
        if await MissedCallRow.filter(provider=call.provider, call_id=call.call_id).exists():
            return False  # the provider called back for a call already taken
        async with in_transaction() as conn:
            recent = (
                await MissedCallRow.filter(
                    phone=call.caller, replied=True, received_at__gt=now - QUIET
                )
                .using_db(conn)
                .exists()
            )
            try:
                row = await MissedCallRow.create(
                    provider=call.provider,
                    call_id=call.call_id,
                    phone=call.caller,
                    called=call.called,
                    received_at=now,
                    replied=not recent,
                    using_db=conn,
                )
            except IntegrityError:
                return False  # taken meanwhile by the same call's other request
            ids = [] if recent else await self._reply(call, row.id, conn)
        if recent:
            log.info("missed call from %s: texted within the hour, no SMS", mask_phone(call.caller))
            return False
        await self.dispatcher.dispatch(ids)
        return True

    async def _reply(self, call: MissedCall, row_id: int, conn: BaseDBAsyncClient) -> list[int]:
        citizen = await Citizen.filter(phone=call.caller).using_db(conn).first()
        chosen = citizen.language if citizen and citizen.language else None
        language = self.config.sms_language(
            chosen or self.config.service.default_language,
            latin_only=bool(citizen and citizen.latin_only),
            script=citizen.script if citizen else None,
        )
        draft = self.notices.draft(
            REPLY_TEMPLATE,
            to=call.caller,
            language=language,
            values={
                "service_code": self.config.service.service_code,
                "helpline": self.config.service.helpline_number or call.called or "",
            },
            key=f"missed-call:{row_id}",
            complaint_id=None,
        )
        assert draft is not None  # essential: sent to an opted-out number too, when asked
        return await queue_messages([draft], using_db=conn)

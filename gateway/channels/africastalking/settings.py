"""Africa's Talking's settings (``sms.africastalking`` in ``config.yaml``) and the
environment variables that override them.

Only pydantic here: :mod:`gateway.config` reads this module (through
:mod:`gateway.channels.registry`) and must not pull in the HTTP client to do so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ENV_VARIABLES", "NAME", "REQUIRED_TO_SEND", "AfricasTalkingSettings"]

NAME: Final = "africastalking"
"""The provider's name: ``sms.provider``, its settings' key, its callback paths, and what
its messages and callbacks are recorded under."""

LIVE_URL: Final = "https://api.africastalking.com"
SANDBOX_URL: Final = "https://api.sandbox.africastalking.com"


class AfricasTalkingSettings(BaseModel):
    """An Africa's Talking account, and how its SMS API is reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = "sandbox"
    api_key: str = ""
    sender_id: str | None = None
    """The registered sender ID or short code every SMS is sent from (AT's ``from``); None
    sends from the account's default."""
    base_url: str | None = None
    """SMS API base; defaults to the live URL, or the sandbox one when username is ``sandbox``."""
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0

    @property
    def resolved_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.username == "sandbox":
            return SANDBOX_URL
        return LIVE_URL


ENV_VARIABLES: Final[Mapping[str, str]] = {
    "AT_USERNAME": "username",
    "AT_API_KEY": "api_key",
    "AT_SENDER_ID": "sender_id",
    "AT_BASE_URL": "base_url",
}
"""Environment variable -> the setting it overrides."""

REQUIRED_TO_SEND: Final = ("api_key",)
"""Settings that must be given when this provider sends the gateway's SMS."""

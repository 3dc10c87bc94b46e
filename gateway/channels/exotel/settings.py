"""Exotel's settings (``sms.exotel`` in ``config.yaml``) and the environment variables that
override them.

Only pydantic here: :mod:`gateway.config` reads this module (through
:mod:`gateway.channels.registry`) and must not pull in the HTTP client to do so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ENV_VARIABLES", "NAME", "REQUIRED_TO_SEND", "ExotelSettings"]

NAME: Final = "exotel"
"""The provider's name: ``sms.provider``, its settings' key, its callback paths, and what
its messages and callbacks are recorded under."""


class ExotelSettings(BaseModel):
    """An Exotel account, and how its SMS API is reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sid: str = ""
    """The account SID (``/v1/Accounts/<sid>/...``)."""
    api_key: str = ""
    api_token: str = ""
    """HTTP Basic credentials: ``api_key:api_token``."""
    subdomain: Annotated[str, Field(pattern=r"^[a-z0-9.-]+$")] = "api.exotel.com"
    """``api.exotel.com`` (Singapore cluster) or ``api.in.exotel.com`` (Mumbai)."""
    sender: str = ""
    """The DLT-registered header (or ExoPhone) every SMS is sent from (Exotel's ``From``)."""
    base_url: str | None = None
    """Overrides ``https://<subdomain>``: a regional endpoint or a test double."""
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    requests_per_minute: Annotated[int, Field(ge=1, le=1_000_000)] = 180
    """Requests to the SMS API a minute, from this process. Exotel allows 200 an account;
    the default keeps any minute under that (the limiter lets five seconds' worth go at
    once: at most 195). Higher only for an account whose limit Exotel has raised, or for
    ``make bench`` against the fake server, so that it measures the gateway, not this."""
    segments_per_minute: Annotated[int, Field(ge=1, le=100_000_000)] = 3000
    """SMS segments a minute, from this process (one request carries many)."""
    max_wait_seconds: Annotated[float, Field(ge=0, le=30)] = 5.0
    """The longest a send waits for its turn (the rate, or a 429's ``Retry-After``); past
    it the send is not made and is tried again later, as for any transient failure."""

    @property
    def resolved_base_url(self) -> str:
        return (self.base_url or f"https://{self.subdomain}").rstrip("/")


ENV_VARIABLES: Final[Mapping[str, str]] = {
    "EXOTEL_SID": "sid",
    "EXOTEL_API_KEY": "api_key",
    "EXOTEL_API_TOKEN": "api_token",
    "EXOTEL_SUBDOMAIN": "subdomain",
    "EXOTEL_SENDER": "sender",
    "EXOTEL_BASE_URL": "base_url",
}
"""Environment variable -> the setting it overrides (``DLT_ENTITY_ID`` is the gateway's own,
``sms.dlt_entity_id``)."""

REQUIRED_TO_SEND: Final = ("sid", "api_key", "api_token", "sender")
"""Settings that must be given when this provider sends the gateway's SMS."""

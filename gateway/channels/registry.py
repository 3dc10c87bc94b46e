"""Every provider the gateway knows, in one explicit table: its name, its settings and their
environment variables, and how it is built.

:mod:`gateway.config` builds the ``sms`` section from this table (a key per provider with
settings, ``sms.provider`` one of the names), so adding a provider is a folder under
``gateway/channels/`` and an entry here. The configuration reads this module, so it imports
only the providers' settings (pydantic): a provider itself, with its HTTP client, is
imported when it is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from gateway.channels.africastalking import settings as africastalking
from gateway.channels.exotel import settings as exotel

if TYPE_CHECKING:
    from gateway.channels.base import CallbackLimits, Provider, ProviderContext
    from gateway.config import Config

__all__ = ["PROVIDERS", "ProviderEntry", "build_providers", "signed_providers"]


@dataclass(frozen=True)
class ProviderEntry:
    """One provider: how to build it, and its settings."""

    name: str
    build: Callable[[Any, ProviderContext], Provider]
    """Builds the provider from its settings (None when it has none) and the context."""
    settings: type[BaseModel] | None = None
    """Its settings' model: ``sms.<name>`` in ``config.yaml``, every setting defaulted."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment variable -> the setting it overrides."""
    required: tuple[str, ...] = ()
    """Settings that must be given when it sends the gateway's SMS (``sms.provider``)."""
    dlt: bool = False
    """It sends India's DLT data (``sms.dlt_entity_id`` is required, and every template it
    sends needs its DLT template ID in every language)."""
    sends: bool = True
    """It sends SMS (``sms.provider`` may name it); a USSD aggregator does not."""
    signed: bool = True
    """Its callback routes carry its secret (:mod:`gateway.channels.signing`); the
    simulator's listing, for this machine only, does not."""


def _simulator(settings: None, context: ProviderContext) -> Provider:
    from gateway.channels.simulator.provider import Simulator

    return Simulator.in_context(context)


def _africastalking(
    settings: africastalking.AfricasTalkingSettings, context: ProviderContext
) -> Provider:
    from gateway.channels.africastalking.provider import AfricasTalking

    return AfricasTalking(settings, region=context.region, limits=context.limits)


def _imimobile(settings: None, context: ProviderContext) -> Provider:
    from gateway.channels.imimobile.provider import Imimobile

    return Imimobile(context)


def _exotel(settings: exotel.ExotelSettings, context: ProviderContext) -> Provider:
    from gateway.channels.exotel.provider import Exotel

    return Exotel(settings, context=context)


PROVIDERS: Mapping[str, ProviderEntry] = {
    entry.name: entry
    for entry in (
        ProviderEntry("simulator", _simulator, signed=False),
        ProviderEntry(
            africastalking.NAME,
            _africastalking,
            settings=africastalking.AfricasTalkingSettings,
            env=africastalking.ENV_VARIABLES,
            required=africastalking.REQUIRED_TO_SEND,
        ),
        ProviderEntry(
            exotel.NAME,
            _exotel,
            settings=exotel.ExotelSettings,
            env=exotel.ENV_VARIABLES,
            required=exotel.REQUIRED_TO_SEND,
            dlt=True,
        ),
        ProviderEntry("imimobile", _imimobile, sends=False),
    )
}
"""Every provider, by the name ``sms.provider`` uses; the first is the default."""


def _no_url(path: str) -> str | None:
    return None


def signed_providers() -> list[str]:
    """The providers whose callbacks carry a secret."""
    return [name for name, entry in PROVIDERS.items() if entry.signed]


def build_providers(
    config: Config,
    *,
    limits: CallbackLimits,
    callback_url: Callable[[str], str | None] | None = None,
) -> dict[str, Provider]:
    """Every known provider: all their callback routes are served (a USSD callback from
    Africa's Talking works whichever provider sends SMS); ``config.sms.provider`` sends.
    ``limits`` are the lengths the database keeps of what callbacks name;
    ``callback_url`` gives a callback path's public, signed URL (a
    :class:`~gateway.channels.signing.CallbackSigner`'s ``url``)."""
    from gateway.channels.base import ProviderContext

    context = ProviderContext(
        region=config.service.country,
        data_dir=config.path(config.paths.data_dir),
        limits=limits,
        callback_url=callback_url or _no_url,
    )
    return {
        name: entry.build(config.sms.settings_of(name), context)
        for name, entry in PROVIDERS.items()
    }

"""SMS and USSD providers, one module each, and the registry that picks them by name."""

from __future__ import annotations

from collections.abc import Callable

from gateway.channels.africastalking.provider import AfricasTalking
from gateway.channels.base import Provider
from gateway.channels.simulator.provider import Simulator
from gateway.config import Config

__all__ = ["REGISTRY", "build_providers"]


def _simulator(config: Config) -> Provider:
    return Simulator(
        store=config.path(config.paths.data_dir) / "simulator" / "sms.jsonl",
        region=config.service.country,
    )


def _africastalking(config: Config) -> Provider:
    at = config.sms.africastalking
    return AfricasTalking(
        username=at.username,
        api_key=at.api_key,
        base_url=at.resolved_base_url,
        sender_id=at.sender_id,
        timeout=at.timeout_seconds,
        region=config.service.country,
    )


REGISTRY: dict[str, Callable[[Config], Provider]] = {
    Simulator.name: _simulator,
    AfricasTalking.name: _africastalking,
}
"""Every provider the gateway knows, by the name ``sms.provider`` uses."""


def build_providers(config: Config) -> dict[str, Provider]:
    """Every known provider: all their callback routes are served (a USSD callback from
    Africa's Talking works whichever provider sends SMS); ``config.sms.provider`` sends."""
    return {name: build(config) for name, build in REGISTRY.items()}

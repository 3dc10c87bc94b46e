"""Callbacks no one can forge: every provider callback path carries the provider's secret.

Neither Africa's Talking nor Exotel signs its callbacks, so (as RapidPro's courier does with
a channel's UUID) the secret is a path segment right after the provider's name::

    /ussd/africastalking            ->  /ussd/africastalking/<secret>
    /sms/africastalking/inbound     ->  /sms/africastalking/<secret>/inbound

A provider declares its routes unsigned (``/<kind>/<provider>[/...]``) and knows nothing of
this: :meth:`CallbackSigner.guard` serves each at its signed path, comparing the segment
with the secret in constant time. A wrong secret, and the unsigned path, answer the same
``404`` an unknown path does, and are counted; the unsigned path is served only while
``callbacks.allow_unsigned`` is on. The secrets come from the database, after the routes
are made: the signer is armed at start-up (:meth:`CallbackSigner.arm`), and refuses
everything until then.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final, NoReturn, TypeAlias

from aiohttp import web

__all__ = ["SECRET_SEGMENT", "CallbackSigner", "provider_of", "signed_path"]

log = logging.getLogger(__name__)

SECRET_SEGMENT: Final = "{secret}"
"""The secret's place in a route's path, as aiohttp reads it (``match_info["secret"]``)."""

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


def provider_of(path: str) -> str:
    """The provider a callback path belongs to: its second segment (``/sms/exotel/...``).

    Raises ValueError for a path not of the form ``/<kind>/<provider>[/...]``.
    """
    parts = path.split("/")
    if len(parts) < 3 or parts[0] or not parts[1] or not parts[2]:
        raise ValueError(f"{path!r} is not a callback path /<kind>/<provider>[/...]")
    return parts[2]


def signed_path(path: str, secret: str) -> str:
    """``path`` with ``secret`` after the provider's segment."""
    provider_of(path)
    kind, provider, *rest = path.split("/")[1:]
    return "/".join(["", kind, provider, secret, *rest])


class CallbackSigner:
    """Holds each provider's secret, serves providers' routes behind them, and counts the
    callbacks refused.

    ``public_url`` is where providers reach the gateway (``config.public_url``);
    ``allow_unsigned`` serves the unsigned paths as well (``callbacks.allow_unsigned``);
    ``allowed_networks`` the address ranges a provider's callbacks may come from
    (``callbacks.allowed_networks``; a provider not named: any).
    """

    def __init__(
        self,
        *,
        public_url: str,
        allow_unsigned: bool = False,
        allowed_networks: Mapping[str, Sequence[Network]] | None = None,
    ) -> None:
        self.public_url = public_url.rstrip("/")
        self.allow_unsigned = allow_unsigned
        self.allowed_networks = dict(allowed_networks or {})
        self._secrets: dict[str, bytes] = {}
        self.refused: Counter[str] = Counter()
        """Callbacks answered 404 for a wrong or missing secret, by provider, since start."""
        self.unsigned: Counter[str] = Counter()
        """Callbacks taken at an unsigned path (``allow_unsigned``), by provider."""

    def __repr__(self) -> str:  # never show a secret
        return f"CallbackSigner(public_url={self.public_url!r}, providers={sorted(self._secrets)})"

    def arm(self, secrets: Mapping[str, str]) -> None:
        """Take the providers' secrets (read from the database at start-up)."""
        self._secrets.update({name: secret.encode() for name, secret in secrets.items()})

    def path(self, path: str) -> str | None:
        """The callback ``path`` (``/sms/exotel/delivery``) with its provider's secret, or
        None while the provider has none (not armed yet)."""
        secret = self._secrets.get(provider_of(path))
        return None if secret is None else signed_path(path, secret.decode())

    def url(self, path: str) -> str | None:
        """The public, signed URL of the callback ``path``, or None (see :meth:`path`)."""
        signed = self.path(path)
        return None if signed is None else self.public_url + signed

    def guard(self, provider: str, routes: list[web.AbstractRouteDef]) -> list[web.RouteDef]:
        """``provider``'s routes at their signed paths, and at their unsigned ones (served
        only while ``allow_unsigned``, else 404 and counted)."""
        guarded: list[web.RouteDef] = []
        for route in routes:
            if not isinstance(route, web.RouteDef):
                raise TypeError(f"{provider}: a callback route must be a RouteDef, not {route!r}")
            if provider_of(route.path) != provider:
                raise ValueError(f"{route.path!r} is not a path of provider {provider!r}")
            signed = signed_path(route.path, SECRET_SEGMENT)
            guarded.append(
                web.RouteDef(
                    route.method, signed, self._signed(provider, route.handler), route.kwargs
                )
            )
            guarded.append(
                web.RouteDef(
                    route.method,
                    route.path,
                    self._unsigned(provider, route.path, route.handler),
                    route.kwargs,
                )
            )
        return guarded

    def _signed(self, provider: str, handler: _Handler) -> _Handler:
        async def signed(request: web.Request) -> web.StreamResponse:
            # "replace": a segment that is not UTF-8 (a lone surrogate) matches nothing.
            given = request.match_info.get("secret", "").encode("utf-8", "replace")
            expected = self._secrets.get(provider)
            # compare_digest takes as long whatever the first wrong byte: no timing
            # tells an attacker how much of a guess was right.
            if expected is None or not hmac.compare_digest(given, expected):
                self._refuse(provider, request, "wrong secret")
            self._check_address(provider, request)
            return await handler(request)

        return signed

    def _unsigned(self, provider: str, path: str, handler: _Handler) -> _Handler:
        async def unsigned(request: web.Request) -> web.StreamResponse:
            if not self.allow_unsigned:
                self._refuse(provider, request, "no secret")
            self._check_address(provider, request)
            self.unsigned[provider] += 1
            if self.unsigned[provider] == 1:
                log.warning(
                    "%s: callback taken at the unsigned path %s (callbacks.allow_unsigned); "
                    "give the provider the signed URLs (python -m gateway callbacks)",
                    provider,
                    path,
                )
            return await handler(request)

        return unsigned

    def _check_address(self, provider: str, request: web.Request) -> None:
        """Refuse a callback from outside ``provider``'s allowed networks, if it has any."""
        networks = self.allowed_networks.get(provider)
        if not networks:
            return
        try:
            address = ipaddress.ip_address(request.remote or "")
        except ValueError:
            self._refuse(provider, request, "no address")
        if not any(address in network for network in networks):
            self._refuse(provider, request, "address not allowed")

    def _refuse(self, provider: str, request: web.Request, why: str) -> NoReturn:
        self.refused[provider] += 1
        # The route's own path, not the request's: a wrong secret may be an old or an
        # almost-right one, and stays out of the logs.
        route = request.match_info.route.resource
        template = route.canonical if route is not None else "?"
        log.warning(
            "%s: callback refused (%s) at %s from %s: 404 (%d refused since start)",
            provider,
            why,
            template,
            request.remote,
            self.refused[provider],
        )
        raise web.HTTPNotFound()

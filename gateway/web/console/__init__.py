"""The staff console at ``/console/``: complaints, actions and accounts in a browser.

Server-rendered (aiohttp-jinja2 templates in ``templates/``), with a stylesheet and one
small script served from ``/console/static/``: nothing comes from elsewhere, and the
Content-Security-Policy allows nothing else. It uses the staff API's scope, roles and
domain calls, so that the browser and the API allow and refuse the same things:
:mod:`.session` (sign-in state, CSRF, headers), :mod:`.signin`, :mod:`.complaints`,
:mod:`.register`, :mod:`.accounts`; :mod:`.text` holds its Hindi and English.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import session_middleware

from gateway.config import Config
from gateway.web.console import accounts, complaints, register, signin
from gateway.web.console.pages import CONSOLE_TEXT
from gateway.web.console.session import RedisSessions, console_middleware
from gateway.web.console.text import ConsoleText

__all__ = ["CONSOLE_PREFIX", "create_console"]

CONSOLE_PREFIX = "/console"
HERE = Path(__file__).resolve().parent


def _static_url(name: str) -> str:
    """An asset's URL, changed with its content (browsers may cache it for good)."""
    digest = hashlib.sha256((HERE / "static" / name).read_bytes()).hexdigest()[:10]
    return f"{CONSOLE_PREFIX}/static/{name}?v={digest}"


def create_console(config: Config) -> web.Application:
    """The ``/console`` sub-application (mount it with ``app.add_subapp(CONSOLE_PREFIX, ...)``)."""
    console = web.Application(
        middlewares=[session_middleware(RedisSessions(config)), console_middleware]
    )
    console[CONSOLE_TEXT] = ConsoleText(
        config.path(config.paths.locales), config.console.languages
    )
    env = aiohttp_jinja2.setup(
        console,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.globals["static"] = _static_url
    for module in (signin, complaints, register, accounts):
        console.router.add_routes(module.routes)
    console.router.add_static("/static", HERE / "static", append_version=True)
    return console

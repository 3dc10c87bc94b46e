"""The monthly review in the console (in progress)."""

from aiohttp import web

routes = web.RouteTableDef()

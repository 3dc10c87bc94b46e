"""The ceiling for USSD hops: a bare aiohttp handler answering a fixed CON screen.

It parses the same form the gateway parses and answers the same kind of body, and nothing
more: what the gateway does beyond this is its own cost."""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.ops import event_loop

SCREEN = "CON Choose department:\n1 Revenue\n2 Jal Shakti (Water)\n3 Electricity\n0 Back"


async def hop(request: web.Request) -> web.Response:
    form = await request.post()
    if "sessionId" not in form:
        return web.Response(status=400, text="sessionId: missing")
    return web.Response(text=SCREEN, content_type="text/plain")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


if __name__ == "__main__":
    event_loop.install()  # the loop SAMPARK_EVENT_LOOP names, as the gateway
    app = web.Application()
    app.router.add_post("/ussd/africastalking", hop)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)

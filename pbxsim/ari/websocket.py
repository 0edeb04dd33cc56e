"""The ARI events websocket: ``GET /ari/events?app=NAME[,NAME2]&subscribeAll=false``.

Each socket gets an ``Outbox``; the apps named in ``app`` publish into it while the socket
is open (the first socket of an app registers it with the engine's Stasis registry).
A client that cannot keep up (full outbox, or a frame not sent within
``SEND_TIMEOUT_S``) is disconnected rather than allowed to grow memory without bound.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from pbxsim.ari.app_adapter import AriApp, Outbox
from pbxsim.ari.core import AriCore
from pbxsim.ari.errors import BadRequest

log = logging.getLogger("pbxsim.ari")
SEND_TIMEOUT_S = 5.0
"""Wall seconds one websocket frame may take to send before the client is dropped."""


async def events(
    core: AriCore, sockets: set[web.WebSocketResponse], request: web.Request
) -> web.StreamResponse:
    """GET /ari/events?app=A[,B]: every event of those apps until the client leaves.

    Raises:
        BadRequest: no ``app`` parameter.
    """
    names = [n for n in request.query.get("app", "").split(",") if n]
    if not names:
        raise BadRequest(message="Missing parameter app")
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    box = Outbox()
    apps = [core.apps.setdefault(n, AriApp(core, n)) for n in names]
    for app in apps:
        app.connect(box)
    sockets.add(ws)
    sender = asyncio.get_running_loop().create_task(_send_loop(ws, box), name="ari-ws-send")
    try:
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        for app in apps:
            app.disconnect(box)
        sockets.discard(ws)
        sender.cancel()
        await asyncio.wait([sender])
    return ws


async def _send_loop(ws: web.WebSocketResponse, box: Outbox) -> None:
    """Drain ``box`` into ``ws``; close the socket when the client is too slow or gone.

    An overflow means frames were dropped, so the client's view is broken: it is closed
    (it reconnects and resynchronises, as with a real Asterisk restart).
    """
    try:
        while not box.overflowed:
            frame = await box.queue.get()
            if box.overflowed:
                break
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await ws.send_str(frame)
        log.warning("ARI websocket client fell behind; closing it")
    except (ConnectionError, TimeoutError):
        log.warning("ARI websocket send failed; closing it")
    await ws.close()

"""Live view for supervisors: ``GET /api/live`` (snapshot of calls, queues, agents from the live
model) and ``GET /ws/live`` (a WebSocket that pushes every domain event as JSON).

Slow WebSocket clients get a bounded per-client queue; when it overflows the client is
disconnected (it reconnects and re-reads the snapshot) rather than slowing the bus down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from callserver.core.events import DomainEvent
from callserver.core.tasks import cancel_and_wait
from callserver.web.auth import PRINCIPAL, same_origin
from callserver.web.middlewares import json_error

log = logging.getLogger(__name__)

CLIENT_QUEUE = 1000
SEND_TIMEOUT = 5.0


class LiveHub:
    """Fans domain events out to connected WebSocket clients. ``publish`` is a bus subscriber."""

    def __init__(self) -> None:
        self._clients: set[asyncio.Queue[str | None]] = set()
        self.dropped_clients = 0

    async def close(self) -> None:
        """Ask every connected client's handler to finish (server shutdown)."""
        for queue in tuple(self._clients):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def publish(self, event: DomainEvent) -> None:
        if not self._clients:
            return
        text = event.to_json()
        for queue in tuple(self._clients):
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:
                self._clients.discard(queue)
                self.dropped_clients += 1
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)

    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        queue: asyncio.Queue[str | None] = asyncio.Queue(CLIENT_QUEUE)
        self._clients.add(queue)
        reader = asyncio.create_task(self._drain_incoming(ws, queue))
        try:
            while not ws.closed and await self._send_burst(ws, queue):
                pass
        except (ConnectionError, TimeoutError):
            self.dropped_clients += 1  # a client that does not read: cut, it reconnects
        finally:
            self._clients.discard(queue)
            await cancel_and_wait(reader)
            await ws.close()
        return ws

    @staticmethod
    async def _send_burst(ws: web.WebSocketResponse, queue: asyncio.Queue[str | None]) -> bool:
        """Send what is queued now (at least one frame) under one deadline of ``SEND_TIMEOUT``
        seconds; False when the client is to be closed."""
        burst = [await queue.get()]
        while not queue.empty() and len(burst) < 256:
            burst.append(queue.get_nowait())
        async with asyncio.timeout(SEND_TIMEOUT):
            for text in burst:
                if text is None:
                    return False
                await ws.send_str(text)
        return True

    @staticmethod
    async def _drain_incoming(ws: web.WebSocketResponse, queue: asyncio.Queue[str | None]) -> None:
        """Read (and ignore) what the client sends; when it goes away, wake the sender."""
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)


LIVE_WS_PATH = "/ws/live"
"""Public for the auth middleware: browsers cannot set headers on a WebSocket, so the handler
checks ``?token=`` (or the principal a plugin's authenticator found) and the Origin itself."""


def live_routes(
    hub: LiveHub, snapshot: Callable[[], dict[str, Any]], api_token: str
) -> list[web.RouteDef]:
    expected = api_token.encode()

    async def live(request: web.Request) -> web.Response:
        return web.json_response(snapshot(), dumps=lambda o: json.dumps(o, default=str))

    async def live_ws(request: web.Request) -> web.StreamResponse:
        if not same_origin(request):
            return json_error(403, "forbidden-origin", "WebSocket from another site refused")
        if PRINCIPAL not in request:
            given = request.query.get("token", "").encode()
            if not expected or not hmac.compare_digest(given, expected):
                return json_error(401, "unauthorized", "missing or wrong token")
        return await hub.serve(request)

    return [web.get("/api/live", live), web.get(LIVE_WS_PATH, live_ws)]

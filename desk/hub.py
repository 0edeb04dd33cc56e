"""WebSocket fan-out to operators' browsers, by phone extension (the ``operator_notify`` port).

Each browser has a bounded queue; a client that falls behind by ``CLIENT_QUEUE`` frames is
disconnected (its page reconnects and re-reads its pops) rather than slowing everyone down.
``push_text`` is synchronous so the screen-pop path adds no scheduling hop before the socket
writer wakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from callserver.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CLIENT_QUEUE = 500
SEND_TIMEOUT = 5.0
CLOSE_TIMEOUT = 2.0
"""Seconds to wait for a browser's answer to our close frame (shutdown, slow client)."""
EVERYONE = "*"
"""``push("*", frame)`` reaches every connected desk browser (e.g. missed-call list updates)."""

Queue = asyncio.Queue[str | None]


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, default=str)


class OperatorHub:
    def __init__(self) -> None:
        self._by_ext: dict[str, set[Queue]] = {}
        self._all: set[Queue] = set()
        self.dropped_clients = 0
        self.frames_sent = 0

    @property
    def clients(self) -> int:
        return len(self._all)

    def connected(self, extension: str) -> bool:
        return bool(self._by_ext.get(extension.lower()))

    async def push(self, extension: str, frame: dict[str, Any]) -> None:
        """The ``operator_notify`` port: send ``frame`` to that operator's browsers (or, with
        ``"*"``, to every desk browser). Never blocks; nobody connected → dropped."""
        self.push_text(extension, dumps(frame))

    def push_text(self, extension: str, text: str) -> None:
        targets = self._all if extension == EVERYONE else self._by_ext.get(extension.lower(), ())
        for queue in tuple(targets):
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:
                self._drop(queue)

    def _drop(self, queue: Queue) -> None:
        self.unsubscribe(queue)
        self.dropped_clients += 1
        with contextlib.suppress(asyncio.QueueFull, asyncio.QueueEmpty):
            queue.get_nowait()
            queue.put_nowait(None)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        await self.close()

    async def close(self) -> None:
        """Ask every connected browser's handler to finish (server shutdown)."""
        for queue in tuple(self._all):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    def subscribe(self, extension: str) -> Queue:
        """A queue receiving the frames for ``extension`` (and broadcasts); ``None`` in it means
        "stop" (shutdown, or this client fell behind)."""
        queue: Queue = asyncio.Queue(CLIENT_QUEUE)
        self._all.add(queue)
        if extension:
            self._by_ext.setdefault(extension.lower(), set()).add(queue)
        return queue

    def unsubscribe(self, queue: Queue) -> None:
        self._all.discard(queue)
        for queues in self._by_ext.values():
            queues.discard(queue)

    async def serve(
        self, request: web.Request, extension: str, hello: Callable[[], list[dict[str, Any]]]
    ) -> web.WebSocketResponse:
        """Serve one browser until it leaves; ``hello`` frames go first (status, open pops)."""
        ws = web.WebSocketResponse(heartbeat=20.0, timeout=CLOSE_TIMEOUT)
        await ws.prepare(request)
        queue = self.subscribe(extension)
        for frame in hello()[: CLIENT_QUEUE // 2]:
            queue.put_nowait(dumps(frame))
        reader = asyncio.create_task(self._drain_incoming(ws, queue))
        try:
            await self._send_loop(ws, queue)
        finally:
            self.unsubscribe(queue)
            await cancel_and_wait(reader)
            await ws.close()
        return ws

    async def _send_loop(self, ws: web.WebSocketResponse, queue: Queue) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            while not ws.closed:
                text = await queue.get()
                if text is None:
                    return
                async with asyncio.timeout(SEND_TIMEOUT):
                    await ws.send_str(text)
                self.frames_sent += 1

    @staticmethod
    async def _drain_incoming(ws: web.WebSocketResponse, queue: Queue) -> None:
        """Ignore what the browser sends (it acts over HTTP); when it goes, wake the sender."""
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)

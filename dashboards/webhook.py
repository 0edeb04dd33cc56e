"""The overload webhook ("reduce advertising" / "back to normal"): transitions are queued and
POSTed one by one by an owned worker task, each with a deadline, so a slow marketing system
never delays the board. A failed delivery is logged and counted, not retried (the next
transition carries the current state anyway)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp

from callserver.core.tasks import cancel_and_wait
from dashboards.overload import Transition

log = logging.getLogger(__name__)

QUEUE_LIMIT = 100
MESSAGES = {"overloaded": "reduce advertising", "normal": "back to normal"}


def payload(t: Transition) -> dict[str, Any]:
    """The JSON body for one transition (``event`` is ``overload`` or ``normal``)."""
    return {
        "event": "overload" if t.state == "overloaded" else "normal",
        "message": MESSAGES[t.state], "queue": t.queue, "at": t.at, "since": t.since,
        "estimated_wait": None if t.estimated_wait == float("inf") else round(t.estimated_wait, 1),
        "abandon_rate": round(t.abandon_rate, 4),
    }  # fmt: skip


class OverloadWebhook:
    """Component: ``submit`` (sync, never blocks) → POST ``url`` within ``timeout`` seconds."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._queue: asyncio.Queue[Transition] = asyncio.Queue(QUEUE_LIMIT)
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.sent = 0
        self.failed = 0

    def submit(self, transition: Transition) -> None:
        if not self._url:
            return
        try:
            self._queue.put_nowait(transition)
        except asyncio.QueueFull:
            self.failed += 1
            log.warning("overload webhook queue full; %s for %s dropped", transition.state,
                        transition.queue)  # fmt: skip

    async def start(self) -> None:
        if self._url:
            self._session = aiohttp.ClientSession()
            self._task = asyncio.create_task(self._run(), name="dashboards-webhook")

    async def aclose(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            transition = await self._queue.get()
            await self._send(transition)

    async def _send(self, transition: Transition) -> None:
        assert self._session is not None
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.post(self._url, json=payload(transition)) as resp:
                    ok = resp.status < 300
                    with contextlib.suppress(aiohttp.ClientError):
                        await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.failed += 1
            log.warning("overload webhook failed (%s): %s", transition.queue, type(exc).__name__)
            return
        if ok:
            self.sent += 1
        else:
            self.failed += 1
            log.warning("overload webhook answered %s (%s)", resp.status, transition.queue)

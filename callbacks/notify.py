"""Frames to operators' browsers through desk's ``operator_notify`` port, off the caller's path:
a bounded queue and one owned task (a slow browser never delays dialing)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from callbacks.ports import EVERYONE, OperatorNotify
from callserver.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

QUEUE_SIZE = 5_000
PUSH_TIMEOUT_S = 2.0


class Notifier:
    """``broadcast`` goes to every operator's browser (one frame to the port's ``EVERYONE``:
    it was one per extension the live model knew, 1,200 JSON encodings per job change in a
    big clinic); ``push`` to one. Without the port (no desk plugin) both do nothing."""

    def __init__(self, port: Callable[[], OperatorNotify | None]) -> None:
        self._resolve = port
        self._port: OperatorNotify | None = None
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(QUEUE_SIZE)
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.dropped = 0
        self.errors = 0

    @property
    def enabled(self) -> bool:
        return self._port is not None

    def push(self, extension: str, frame: dict[str, Any]) -> None:
        if self._port is None:
            return
        try:
            self._queue.put_nowait((extension, frame))
        except asyncio.QueueFull:
            self.dropped += 1

    def broadcast(self, frame: dict[str, Any]) -> None:
        self.push(EVERYONE, frame)

    async def start(self) -> None:
        """Resolve the port (desk may be built after us) and start sending."""
        self._port = self._resolve()
        if self._port is not None:
            self._task = asyncio.create_task(self._run(), name="callbacks-notify")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        assert self._port is not None
        while True:
            extension, frame = await self._queue.get()
            try:
                async with asyncio.timeout(PUSH_TIMEOUT_S):
                    await self._port.push(extension, frame)
                self.sent += 1
            except Exception as exc:  # one browser's trouble must not stop the others
                self.errors += 1
                log.warning("operator_notify push to %s failed: %r", extension, exc)

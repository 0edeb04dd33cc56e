"""The one queue consumer: a bus subscriber puts items on a bounded queue (never blocking,
counting what a full queue drops) and one owned task hands them, one at a time, to the async
``handle`` with a deadline, counting and reporting failures without stopping.

For events that must leave the bus at once but need I/O one by one (e.g. a plugin turning
missed calls into jobs). Batching writers use ``BufferedWorker`` instead. Standard library only.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import ClassVar, Generic, TypeVar

from callserver.core.tasks import cancel_and_wait

T = TypeVar("T")


class QueueWorker(ABC, Generic[T]):
    """``offer`` (sync, never blocks) → ``handle(item)`` in one owned task between ``start()``
    and ``aclose()``. ``handle`` gets ``step_timeout`` seconds per item; when it raises (or
    times out) ``errors`` counts it, ``_failed(item, exc)`` reports it (the subclass's log
    line) and the next item comes. Cancellation is never swallowed: ``aclose`` cancels the
    task and waits for it. ``dropped`` counts items refused by a full queue (``maxsize``)."""

    task_name: ClassVar[str] = "queue-worker"

    def __init__(self, *, maxsize: int, step_timeout: float) -> None:
        self._step_timeout = step_timeout
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.errors = 0

    # -- what a subclass provides ------------------------------------------------------------

    @abstractmethod
    async def handle(self, item: T) -> object:
        """Act on one item (the return value is the subclass's, for its callers and tests)."""

    @abstractmethod
    def _failed(self, item: T, exc: Exception) -> None:
        """``handle(item)`` raised ``exc`` or timed out: log it with the item's context."""

    # -- the queue and the task --------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Items waiting for the task."""
        return self._queue.qsize()

    def offer(self, item: T) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                async with asyncio.timeout(self._step_timeout):
                    await self.handle(item)
            except Exception as exc:
                self.errors += 1
                self._failed(item, exc)

"""The one buffered background worker: a bus subscriber fills a buffer, one owned task writes it
in batches to a store that may be down, backing off between failed attempts.

Used by the call writer (PostgreSQL), the live state (Redis) and plugins' batching writers. A
subclass says what "work", "one batch" and "is the store reachable" mean; this class owns the
task, the wake-ups, the backoff and a bounded close. Standard library only.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import ClassVar

from callserver.core.backoff import Backoff
from callserver.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class BufferedWorker(ABC):
    """Owned task: ``start()`` (idempotent), ``aclose()`` (flush for at most ``close_timeout``
    seconds, then cancel). ``connected`` says whether the store answered last time."""

    task_name: ClassVar[str] = "buffered-worker"
    stop_when_closing_fails: ClassVar[bool] = False
    """When a flush fails during ``aclose``: stop at once (True) or keep retrying until the
    close timeout (False, for data that must not be lost)."""

    def __init__(self, backoff: Backoff, close_timeout: float) -> None:
        self._backoff = backoff
        self._close_timeout = close_timeout
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.connected = False

    # -- what a subclass provides ------------------------------------------------------------

    @abstractmethod
    def _has_work(self) -> bool:
        """Something is buffered."""

    @abstractmethod
    async def _flush_once(self) -> bool:
        """Write one batch; False when it must be retried after a backoff."""

    @abstractmethod
    async def _probe(self) -> bool:
        """Is the store reachable? (The subclass logs and counts a failure itself.)"""

    def _mark_connected(self) -> None:
        self.connected = True

    async def _wait_for_batch(self) -> None:
        """Wait until a batch is worth writing (default: write at once)."""
        return None

    async def _wait_idle(self) -> None:
        """Connected and nothing to write: wait (default: until woken). A subclass that also
        has periodic work while idle (a summary line) may return after a timeout; the task
        then looks for work and comes back here."""
        await self._wakeup.wait()

    # -- the task ----------------------------------------------------------------------------

    def wake(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        """Start the task; connecting happens in it, so a store that is down at start-up does
        not prevent starting (the buffer fills meanwhile)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def _stop(self) -> bool:
        """Flush for at most ``close_timeout`` seconds; True when the task finished by itself."""
        self._closing = True
        self._wakeup.set()
        await self.start()
        assert self._task is not None
        try:
            done, _ = await asyncio.wait({self._task}, timeout=self._close_timeout)
        except asyncio.CancelledError:
            self._task.cancel()  # our caller gave up: do not leave the task running
            raise
        if not done:
            await cancel_and_wait(self._task)
            return False
        if not self._task.cancelled() and self._task.exception() is not None:
            log.error("%s task failed", self.task_name, exc_info=self._task.exception())
        return True

    async def _run(self) -> None:
        while True:
            if not self._has_work():
                if self._closing:
                    return
                await self._idle()
                continue
            await self._wait_for_batch()
            if await self._flush_once():
                self._backoff.reset()
            elif self._closing and self.stop_when_closing_fails:
                return
            else:
                await asyncio.sleep(self._backoff.next())

    async def _idle(self) -> None:
        """Nothing to write: wait for work. While not connected, probe the store with backoff
        meanwhile, so ``connected`` tells the truth even when nothing happens."""
        self._wakeup.clear()
        if self.connected:
            await self._wait_idle()
            return
        if await self._probe():
            self._backoff.reset()
            self._mark_connected()
            return
        try:
            async with asyncio.timeout(self._backoff.next()):
                await self._wakeup.wait()
        except TimeoutError:
            pass

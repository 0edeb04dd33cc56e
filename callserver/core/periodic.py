"""A periodic refresh: one owned task calls an async action every ``interval`` seconds, e.g.
re-reading a cache that other instances may have changed. Standard library only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from callserver.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class PeriodicRefresh:
    """Owned task between ``start()`` and ``aclose()``: waits ``interval`` seconds, calls
    ``action``, again and again. A failure of one of ``expected`` (e.g. the store being down)
    is logged on ``logger`` as a warning ``"<what> not refreshed: …"`` and the next round
    comes as usual; any other exception ends the task, and ``aclose`` logs it
    (``cancel_and_wait``)."""

    def __init__(
        self,
        action: Callable[[], Awaitable[object]],
        interval: float,
        *,
        what: str,
        expected: tuple[type[Exception], ...],
        logger: logging.Logger = log,
    ) -> None:
        self._action = action
        self._interval = interval
        self._what = what
        self._expected = expected
        self._log = logger
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"refresh {self._what}")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._action()
            except self._expected as exc:
                self._log.warning("%s not refreshed: %s", self._what, exc)

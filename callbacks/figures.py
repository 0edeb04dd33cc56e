"""Figures for ``/metrics`` that need the database (shared by all instances): job counts,
attempts per finished job, reached and booked rates, miss → first attempt (p50/p99), over the
last ``window_s``; refreshed every ``interval_s`` by one owned task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from callbacks.store import CallbackStore
from callserver.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class Figures:
    def __init__(self, store: CallbackStore, clock: Callable[[], float],
                 interval_s: float = 15.0, window_s: float = 7 * 86400) -> None:  # fmt: skip
        self._store, self._clock = store, clock
        self._interval_s, self._window_s = interval_s, window_s
        self._task: asyncio.Task[None] | None = None
        self.values: dict[str, float] = {}

    def get(self, key: str) -> float:
        return self.values.get(key, 0.0)

    def rate(self, key: str) -> float:
        done = self.values.get("done", 0.0)
        return self.values.get(key, 0.0) / done if done else 0.0

    async def refresh(self) -> None:
        self.values = await self._store.stats(self._clock() - self._window_s)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="callbacks-figures")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # the database may be briefly away: next round
                log.warning("callback figures not refreshed: %r", exc)
            await asyncio.sleep(self._interval_s)

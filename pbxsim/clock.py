"""Simulated time: scenario seconds run ``speed`` times faster than the wall clock."""

from __future__ import annotations

import asyncio
import time


class Clock:
    """Scenario time in seconds since ``start()``; ``speed`` 1.0 is real time.

    All durations in pbxsim's call model (ring time, patience, talk time …) are scenario
    seconds; only this class converts them to wall-clock waits.
    """

    def __init__(self, speed: float = 1.0, epoch: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._t0 = time.monotonic()
        self.epoch = time.time() if epoch is None else epoch

    def now(self) -> float:
        """Scenario seconds elapsed."""
        return (time.monotonic() - self._t0) * self.speed

    def wall(self) -> float:
        """Scenario time as a Unix timestamp (epoch + scenario seconds)."""
        return self.epoch + self.now()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of scenario time (never negative)."""
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    async def wait_event(self, event: asyncio.Event, seconds: float) -> bool:
        """Wait up to ``seconds`` scenario seconds for ``event``; True if it was set."""
        if event.is_set():
            return True
        try:
            async with asyncio.timeout(max(0.0, seconds) / self.speed):
                await event.wait()
        except TimeoutError:
            return False
        return True

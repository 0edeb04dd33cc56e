import asyncio
import logging

import pytest

from callserver.core.periodic import PeriodicRefresh


class Down(Exception):
    pass


async def test_the_action_runs_every_interval_and_an_expected_failure_only_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []
    four = asyncio.Event()

    async def action() -> None:
        calls.append(len(calls))
        if len(calls) == 4:
            four.set()
        if len(calls) == 2:
            raise Down("store down")

    refresh = PeriodicRefresh(action, 0.01, what="the list", expected=(Down,))
    refresh.start()
    try:
        async with asyncio.timeout(2.0):
            await four.wait()
    finally:
        await refresh.aclose()
    stopped_at = len(calls)
    await asyncio.sleep(0.05)
    assert len(calls) == stopped_at  # aclose stopped the task
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["the list not refreshed: store down"]


async def test_nothing_runs_before_the_first_interval() -> None:
    calls: list[int] = []

    async def action() -> None:
        calls.append(1)

    refresh = PeriodicRefresh(action, 60.0, what="x", expected=(Down,))
    refresh.start()
    await asyncio.sleep(0.05)
    await refresh.aclose()
    assert calls == []

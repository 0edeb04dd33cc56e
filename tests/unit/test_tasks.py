import asyncio
import logging

import pytest

from callserver.core.tasks import cancel_and_wait


async def test_the_task_is_finished_when_it_returns() -> None:
    cleaned: list[str] = []

    async def worker() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits
            cleaned.append("done")

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.done() and cleaned == ["done"]
    await cancel_and_wait(None)  # nothing to stop is fine


async def test_the_callers_own_cancellation_is_never_swallowed() -> None:
    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.2)  # slow to stop

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    closer = asyncio.create_task(cancel_and_wait(task))
    await asyncio.sleep(0.01)
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    await asyncio.wait({task})


async def test_a_task_that_had_failed_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("lost otherwise")

    task = asyncio.create_task(broken(), name="broken-worker")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR):
        await cancel_and_wait(task)
    assert "broken-worker" in caplog.text and "lost otherwise" in caplog.text

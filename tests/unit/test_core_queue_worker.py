import asyncio
from collections.abc import Awaitable, Callable

from callserver.core.queue_worker import QueueWorker


class Worker(QueueWorker[int]):
    task_name = "test-worker"

    def __init__(self, handler: Callable[[int], Awaitable[None]], maxsize: int = 10,
                 step_timeout: float = 1.0) -> None:  # fmt: skip
        super().__init__(maxsize=maxsize, step_timeout=step_timeout)
        self._handler = handler
        self.failed: list[tuple[int, str]] = []

    async def handle(self, item: int) -> None:
        await self._handler(item)

    def _failed(self, item: int, exc: Exception) -> None:
        self.failed.append((item, type(exc).__name__))


async def test_items_are_handled_in_order_and_a_failure_or_timeout_does_not_stop_the_task() -> None:
    handled: list[int] = []
    last = asyncio.Event()

    async def handle(item: int) -> None:
        if item == 2:
            raise ValueError("bad item")
        if item == 3:
            await asyncio.sleep(10)  # past the step deadline
        handled.append(item)
        if item == 4:
            last.set()

    worker = Worker(handle, step_timeout=0.05)
    for item in (1, 2, 3, 4):
        worker.offer(item)
    await worker.start()
    try:
        async with asyncio.timeout(2.0):
            await last.wait()
    finally:
        await worker.aclose()
    assert handled == [1, 4]
    assert worker.failed == [(2, "ValueError"), (3, "TimeoutError")]
    assert (worker.errors, worker.dropped, worker.pending) == (2, 0, 0)


async def test_a_full_queue_counts_what_it_drops_and_offer_never_blocks() -> None:
    async def handle(item: int) -> None:
        return None

    worker = Worker(handle, maxsize=2)
    for item in range(5):
        worker.offer(item)
    assert (worker.pending, worker.dropped) == (2, 3)
    await worker.aclose()  # never started: nothing to stop


async def test_aclose_cancels_a_handler_that_is_still_running() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def handle(item: int) -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    worker = Worker(handle, step_timeout=30.0)
    await worker.start()
    worker.offer(1)
    async with asyncio.timeout(2.0):
        await started.wait()
    await worker.aclose()
    assert cancelled.is_set() and worker.errors == 0 and worker.failed == []

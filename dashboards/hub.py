"""Pushes the board to every connected supervisor over ``/ws/board``.

One owned task ticks every ``push_interval`` seconds: it asks the board for its snapshot (which
also feeds the overload detectors), serialises it once and hands the same text to each client's
queue. With nobody connected it reads only the queue figures (for the detectors): a clinic with
1,200 operators spent 40 ms of CPU per tick on operator rows nobody looked at; a metrics scrape
or a new client builds the board then (``current``). A client queue holds at most two
snapshots; a slow client loses the older one (a board snapshot is the whole state, so nothing
is lost but staleness). Another task samples how many operators are logged in, for the staffing
report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from aiohttp import WSMsgType, web

from callserver.core.tasks import cancel_and_wait
from callserver.plugin_api import LiveView
from dashboards.board import LiveBoard
from dashboards.overload import Transition
from dashboards.store import DashboardsStore, seed_board

log = logging.getLogger(__name__)
SEND_TIMEOUT = 5.0
CLIENT_QUEUE = 2
METRICS_MAX_AGE = 5.0
"""Seconds a board built for one metrics scrape serves the next ones (Prometheus scrapes every
15 s or so; a supervisor's open board refreshes it every push anyway)."""


class BoardHub:
    """Component (after the database): seed, tick, fan out, sample. See the module docstring."""

    def __init__(self, board: LiveBoard, *, pool: asyncpg.Pool, live: LiveView,
                 clock: Callable[[], float], push_interval: float, sample_interval: float,
                 on_transition: Callable[[Transition], None]) -> None:  # fmt: skip
        self.board = board
        self._pool = pool
        self._store = DashboardsStore(pool)
        self._live = live
        self._clock = clock
        self._push_interval = push_interval
        self._sample_interval = sample_interval
        self._on_transition = on_transition
        self._clients: set[asyncio.Queue[str | None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.last: dict[str, Any] = {}
        self._last_at = -float("inf")
        self.ticks = 0
        self.tick_seconds = 0.0

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def start(self) -> None:
        try:
            rows = await seed_board(self._pool, self.board, self._clock())
            log.info("board seeded from %d of today's calls", rows)
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            log.warning("board not seeded from PostgreSQL: %s", type(exc).__name__)
        self._tasks = [asyncio.create_task(self._tick_loop(), name="dashboards-board"),
                       asyncio.create_task(self._sample_loop(), name="dashboards-samples")]

    async def aclose(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        for queue in tuple(self._clients):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    def snapshot(self) -> dict[str, Any]:
        """The board now (computed on demand for ``GET /api/dashboards/board``)."""
        board, transitions = self.board.tick(self._clock())
        self._transitions(transitions)
        return board

    def current(self, max_age: float | None = None) -> dict[str, Any]:
        """The latest board when it is under ``max_age`` seconds old (default: one push),
        else a new one."""
        if time.perf_counter() - self._last_at >= (max_age or self._push_interval):
            self.last, self._last_at = self.snapshot(), time.perf_counter()
        return self.last

    def for_metrics(self) -> dict[str, Any]:
        """The board the metrics read: at most ``METRICS_MAX_AGE`` old (a scrape every second
        must not rebuild 1,200 operator rows every second)."""
        return self.current(METRICS_MAX_AGE)

    async def _tick_loop(self) -> None:
        while True:
            started = time.perf_counter()
            if self._clients:
                self.last, self._last_at = self.snapshot(), started
                self._fan_out(json.dumps(self.last, ensure_ascii=False, default=str))
            else:  # nobody watches: only the overload detectors read the queues
                self._transitions(self.board.observe_queues(self._clock()))
            self.ticks += 1
            self.tick_seconds = time.perf_counter() - started
            await asyncio.sleep(max(0.05, self._push_interval - self.tick_seconds))

    def _transitions(self, transitions: list[Transition]) -> None:
        for t in transitions:
            log.warning("queue %s is now %s", t.queue, t.state)
            self._on_transition(t)
            task = asyncio.create_task(self._log(t))
            self._tasks.append(task)
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    async def _log(self, t: Transition) -> None:
        try:
            await self._store.log_transition(t)
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            log.warning("overload transition not logged: %s", type(exc).__name__)

    def _fan_out(self, text: str) -> None:
        for queue in tuple(self._clients):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(text)

    async def _sample_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sample_interval)
            try:
                await self._store.sample_agents(self._live, self._clock())
            except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
                log.warning("operator sample not written: %s", type(exc).__name__)

    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        """The WebSocket: the latest board at once, then every tick's board."""
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        queue: asyncio.Queue[str | None] = asyncio.Queue(CLIENT_QUEUE)
        queue.put_nowait(json.dumps(self.current(), ensure_ascii=False, default=str))
        self._clients.add(queue)
        reader = asyncio.create_task(_drain(ws, queue))
        try:
            while not ws.closed:
                text = await queue.get()
                if text is None:
                    break
                async with asyncio.timeout(SEND_TIMEOUT):
                    await ws.send_str(text)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self._clients.discard(queue)
            await cancel_and_wait(reader)
            await ws.close()
        return ws


async def _drain(ws: web.WebSocketResponse, queue: asyncio.Queue[str | None]) -> None:
    """Ignore what the client sends; when it goes away, wake the sender."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(None)

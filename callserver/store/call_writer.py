"""Batched, outage-tolerant writer of calls and their event timelines to PostgreSQL.

``CallWriter.submit`` is a bus subscriber: it appends the event to an in-memory buffer and returns
(no I/O). An owned task writes the buffer in batches of up to ``batch_size`` events, at the latest
``flush_interval`` seconds after the oldest waiting event arrived; each batch is one transaction of
two statements (latest snapshot per call upserted, event rows inserted), so the round trips do not
grow with the number of events.

Only call events (``CallEvent``) are stored; agent and resync events are ignored here: agent state
lives in Redis (``RedisLiveState``) and a resync's effects reach us as call events.

PostgreSQL unreachable: the events stay buffered (at most ``buffer_limit``; beyond it the oldest
*events* are dropped and counted) while the latest snapshot of every call is kept apart and never
dropped, so every call record survives an outage of any length. One warning per outage, retries
with exponential backoff, everything is written when the server answers again. A missing table
or column (schema not migrated yet) is handled like an outage. A batch the server rejects for
its content is retried ``MAX_QUERY_ATTEMPTS`` times, then dropped (logged, counted). Writes are
idempotent (see migrations/0001_calls.sql), so a retried batch never duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import asyncpg

from callserver.config import DatabaseConfig
from callserver.core.backoff import Backoff
from callserver.core.buffered_worker import BufferedWorker
from callserver.core.events import CallEvent, DomainEvent
from callserver.store.call_rows import INSERT_EVENTS, UPSERT_CALLS, call_arrays, event_arrays
from callserver.store.errors import StoreError, StoreUnavailable
from callserver.store.postgres import create_pool, store_errors

log = logging.getLogger(__name__)

PoolFactory = Callable[[], Awaitable[asyncpg.Pool]]
MAX_QUERY_ATTEMPTS = 3
"""A batch the server rejects (not an outage) is retried this many times, then dropped."""


_SCHEMA_NOT_READY = frozenset({"42P01", "42703"})
"""undefined_table, undefined_column: migrations not applied yet (e.g. another instance is
still migrating). Buffer like an outage rather than drop the calls."""


def _is_outage(exc: StoreError) -> bool:
    return isinstance(exc, StoreUnavailable) or exc.details.get("sqlstate") in _SCHEMA_NOT_READY


@dataclass(frozen=True)
class WriterTimeouts:
    """Deadlines and backoff of ``CallWriter``, in seconds."""

    connect: float = 5.0
    """Creating the pool / acquiring a connection."""
    command: float = 10.0
    """Writing one batch (both statements and the commit)."""
    close: float = 10.0
    """``aclose()`` flushes for at most this long, then gives up (logged with the counts)."""
    retry_min: float = 0.2
    retry_max: float = 5.0


@dataclass(slots=True)
class _Pending:
    event: CallEvent
    arrived: float
    """``time.monotonic()`` when submitted."""


class CallWriter(BufferedWorker):
    """Writes call snapshots and events in batches; see the module docstring.

    ``source`` is a DSN (the writer then owns a one-connection pool) or a factory returning a new
    pool (the writer owns and closes what it returns). Metrics are plain attributes:
    ``buffered``, ``written_events``, ``written_calls``, ``dropped_events``, ``dropped_calls``,
    ``write_errors``, ``batches``, ``last_flush_lag`` (seconds from the arrival of a batch's oldest
    event to its commit) and ``connected``.
    """

    def __init__(
        self,
        source: str | PoolFactory,
        config: DatabaseConfig,
        *,
        timeouts: WriterTimeouts | None = None,
    ) -> None:
        self._t = timeouts or WriterTimeouts()
        super().__init__(Backoff(self._t.retry_min, self._t.retry_max), self._t.close)
        if isinstance(source, str):
            source = partial(
                create_pool,
                source,
                min_size=1,
                max_size=1,
                connect_timeout=self._t.connect,
                command_timeout=self._t.command,
            )
        self._factory: PoolFactory = source
        self._config = config
        self._events: deque[_Pending] = deque()
        self._latest: dict[str, _Pending] = {}
        """Latest not-yet-written event per call, ordered by arrival (oldest first)."""
        self._pool: asyncpg.Pool | None = None
        self._query_attempts = 0
        self._outage_since: float | None = None
        self._drop_logged = False
        self.written_events = 0
        self.written_calls = 0
        self.dropped_events = 0
        self.dropped_calls = 0
        self.write_errors = 0
        self.batches = 0
        self.last_flush_lag = 0.0

    @property
    def buffered(self) -> int:
        """Events waiting to be written."""
        return len(self._events)

    @property
    def write_lag(self) -> float:
        """Seconds: how long the oldest unwritten event has been waiting, or when nothing waits
        ``last_flush_lag``. Unlike ``last_flush_lag`` it grows during an outage."""
        waiting = [self._events[0].arrived] if self._events else []
        first_call = next(iter(self._latest.values()), None)  # oldest first
        if first_call is not None:
            waiting.append(first_call.arrived)
        if not waiting:
            return self.last_flush_lag
        return max(self.last_flush_lag, time.monotonic() - min(waiting))

    @property
    def pending_calls(self) -> int:
        """Calls whose latest snapshot is not written yet."""
        return len(self._latest)

    def submit(self, event: DomainEvent) -> None:
        """Buffer ``event`` for writing (non-blocking, no I/O). Non-call events are ignored."""
        if not isinstance(event, CallEvent):
            return
        pending = _Pending(event, time.monotonic())
        if len(self._events) >= self._config.buffer_limit:
            self._events.popleft()
            self._count_dropped(1)
        self._events.append(pending)
        self._latest.pop(event.call.id, None)
        self._latest[event.call.id] = pending
        if len(self._events) == 1 or len(self._events) >= self._config.batch_size:
            self._wakeup.set()

    task_name = "call-writer"

    async def aclose(self) -> None:
        """Flush everything buffered, then close the pool.

        Waits at most ``timeouts.close`` seconds for the flush; what is still unwritten after
        that is logged as an error with its counts (never raises for it).
        """
        await self._stop()
        if self._events or self._latest:
            log.error(
                "call writer closed with %d events and %d calls unwritten (PostgreSQL down?)",
                len(self._events),
                len(self._latest),
            )
        await self._close_pool()

    async def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            async with asyncio.timeout(self._t.connect):
                await pool.close()
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            pool.terminate()

    # -- the writing task ------------------------------------------------------------------

    def _has_work(self) -> bool:
        return bool(self._events or self._latest)

    async def _probe(self) -> bool:
        try:
            with store_errors("connect to PostgreSQL"):
                async with asyncio.timeout(self._t.connect):
                    if self._pool is None:
                        self._pool = await self._factory()
                    await self._pool.fetchval("SELECT 1")
        except StoreError as exc:
            self._on_outage(exc, failed_write=False)
            return False
        return True

    async def _wait_for_batch(self) -> None:
        """Wait until a full batch is buffered, or the oldest waits ``flush_interval``."""
        if self._closing or len(self._events) >= self._config.batch_size:
            return
        oldest = self._events[0] if self._events else next(iter(self._latest.values()))
        delay = oldest.arrived + self._config.flush_interval - time.monotonic()
        if delay <= 0:
            return
        self._wakeup.clear()
        try:
            async with asyncio.timeout(delay):
                await self._wakeup.wait()
        except TimeoutError:
            pass

    def _take_batch(self) -> tuple[list[_Pending], list[_Pending]]:
        """Up to ``batch_size`` events, and the calls whose latest event is older than anything
        still buffered (so their snapshot is final for now), at most ``batch_size`` of them."""
        size = self._config.batch_size
        events = [self._events.popleft() for _ in range(min(size, len(self._events)))]
        head = self._events[0].arrived if self._events else float("inf")
        calls: list[_Pending] = []
        while self._latest and len(calls) < size:
            call_id, pending = next(iter(self._latest.items()))
            if pending.arrived >= head:
                break
            calls.append(self._latest.pop(call_id))
        return events, calls

    async def _flush_once(self) -> bool:
        """Write one batch; False when it must be retried after a backoff."""
        events, calls = self._take_batch()
        try:
            await self._write(events, calls)
        except asyncio.CancelledError:
            self._requeue(events, calls)  # so aclose() reports them as unwritten
            raise
        except StoreError as exc:
            if not _is_outage(exc):
                return await self._on_rejected(exc, events, calls)
            self._requeue(events, calls)
            self._on_outage(exc)
            return False
        except Exception as exc:  # StoreQueryError, or a value we could not encode
            return await self._on_rejected(exc, events, calls)
        self._on_written(events, calls)
        return True

    async def _salvage(self, events: list[_Pending], calls: list[_Pending]) -> None:
        """Write a refused batch call by call, so one bad row loses only its own call."""
        by_call: dict[str, tuple[list[_Pending], list[_Pending]]] = {}
        for p in events:
            by_call.setdefault(p.event.call.id, ([], []))[0].append(p)
        for p in calls:
            by_call.setdefault(p.event.call.id, ([], []))[1].append(p)
        for call_id, (evs, latest) in by_call.items():
            try:
                await self._write(evs, latest)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("dropping call %s (%d events): %s", call_id, len(evs), exc)
                self.dropped_calls += len(latest)
                self.dropped_events += len(evs)
            else:
                self._on_written(evs, latest)

    async def _write(self, events: list[_Pending], calls: list[_Pending]) -> None:
        call_rows = call_arrays([(p.event.call, p.event.at) for p in calls])
        event_rows = event_arrays([p.event for p in events])
        with store_errors("write calls"):
            async with asyncio.timeout(self._t.connect):
                if self._pool is None:
                    self._pool = await self._factory()
                conn = await self._pool.acquire()
            try:
                async with asyncio.timeout(self._t.command), conn.transaction():
                    if calls:
                        await conn.execute(UPSERT_CALLS, *call_rows)
                    if events:
                        await conn.execute(INSERT_EVENTS, *event_rows)
            except BaseException:
                conn.terminate()  # no I/O: never wait on a connection in an unknown state
                raise
            finally:
                await self._pool.release(conn)

    # -- bookkeeping -----------------------------------------------------------------------

    def _requeue(self, events: list[_Pending], calls: list[_Pending]) -> None:
        self._events.extendleft(reversed(events))
        excess = len(self._events) - self._config.buffer_limit
        for _ in range(max(0, excess)):
            self._events.popleft()
        if excess > 0:
            self._count_dropped(excess)
        older = {p.event.call.id: p for p in calls if p.event.call.id not in self._latest}
        if older:
            self._latest = {**older, **self._latest}

    def _on_written(self, events: list[_Pending], calls: list[_Pending]) -> None:
        now = time.monotonic()
        self.batches += 1
        self.written_events += len(events)
        self.written_calls += len(calls)
        self._query_attempts = 0
        arrivals = [p.arrived for p in events] + [p.arrived for p in calls]
        if arrivals:
            self.last_flush_lag = now - min(arrivals)
        self._mark_connected()

    def _mark_connected(self) -> None:
        self.connected = True
        if self._outage_since is not None:
            log.info(
                "PostgreSQL reachable again after %.1f s; writing %d buffered events",
                time.monotonic() - self._outage_since,
                len(self._events),
            )
            self._outage_since = None
            self._drop_logged = False

    def _on_outage(self, exc: StoreError, *, failed_write: bool = True) -> None:
        if failed_write:
            self.write_errors += 1
        self.connected = False
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning(
                "PostgreSQL unreachable (%s): buffering call events (%d now), retrying",
                exc,
                len(self._events),
            )

    async def _on_rejected(
        self, exc: Exception, events: list[_Pending], calls: list[_Pending]
    ) -> bool:
        """A batch the server refused: retry a few times, then write it call by call and drop
        only the calls the server still refuses (logged, counted)."""
        self.write_errors += 1
        self._query_attempts += 1
        if self._query_attempts < MAX_QUERY_ATTEMPTS:
            log.warning(
                "call batch rejected (attempt %d): %s",
                self._query_attempts,
                exc,
                exc_info=not isinstance(exc, StoreError),
            )
            self._requeue(events, calls)
            return False
        log.error(
            "call batch of %d events, %d calls refused %d times (%s): writing it call by call",
            len(events),
            len(calls),
            self._query_attempts,
            exc,
        )
        self._query_attempts = 0
        await self._salvage(events, calls)
        return True

    def _count_dropped(self, n: int) -> None:
        """``n`` events dropped because the buffer is full (logged once per outage)."""
        self.dropped_events += n
        if not self._drop_logged:
            self._drop_logged = True
            log.warning(
                "call event buffer full (%d): dropping the oldest events; "
                "the latest state of every call is kept",
                self._config.buffer_limit,
            )

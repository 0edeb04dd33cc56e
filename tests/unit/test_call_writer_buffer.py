"""CallWriter's buffering, batching and failure handling against a small in-memory fake pool
(no sockets). The same behaviour against a real PostgreSQL is in
tests/integration/test_store_postgres.py."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any, cast

import asyncpg
import pytest

from callserver.config import DatabaseConfig
from callserver.core.events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallQueued,
    CallSnapshot,
    CallStarted,
)
from callserver.store.call_rows import CALL_COLUMNS, UPSERT_CALLS
from callserver.store.call_writer import CallWriter, WriterTimeouts

T0 = 1_790_000_000.0
FAST = WriterTimeouts(connect=1.0, command=1.0, close=2.0, retry_min=0.01, retry_max=0.02)


def lifecycle(call_id: str, t0: float = T0) -> list[CallEvent]:
    s0 = CallSnapshot(call_id, call_id, "inbound", "ringing", "79161234567", "", "74951234567",
                      "source-a", "", "", "", t0)  # fmt: skip
    s1 = replace(s0, state="queued", queue="reception", queued_at=t0 + 1)
    s2 = replace(s1, state="agent_ringing", agent="PJSIP/op101")
    s3 = replace(s2, state="answered", answered_at=t0 + 4, wait_seconds=3.0)
    s4 = replace(s3, state="ended", ended_at=t0 + 15, talk_seconds=11.0)
    return [
        CallStarted(at=t0, call=s0),
        CallQueued(at=t0 + 1, call=s1, queue="reception", position=1),
        AgentRinging(at=t0 + 1.5, call=s2, queue="reception", agent="PJSIP/op101"),
        CallAnswered(at=t0 + 4, call=s3, queue="reception", agent="PJSIP/op101"),
        CallEnded(at=t0 + 15, call=s4, talk_seconds=11.0),
    ]


class FakeConnection:
    def __init__(self, pool: FakePool) -> None:
        self._pool = pool
        self.terminated = False

    def transaction(self) -> FakeConnection:
        return self

    async def __aenter__(self) -> None:
        self._pool.statements.append(("BEGIN", ()))

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if t is None:
            self._pool.committed.extend(self._pool.pending)
        self._pool.pending.clear()

    async def execute(self, sql: str, *args: Any) -> str:
        if self._pool.hang:
            await asyncio.Event().wait()
        if self._pool.fail is not None:
            raise self._pool.fail
        self._pool.pending.append((sql, args))
        return "INSERT"

    def terminate(self) -> None:
        self.terminated = True


class FakePool:
    """Records committed statements; ``fail`` is raised by every ``execute`` while set."""

    def __init__(self) -> None:
        self.fail: BaseException | None = None
        self.hang = False
        self.statements: list[tuple[str, tuple[Any, ...]]] = []
        self.pending: list[tuple[str, tuple[Any, ...]]] = []
        self.committed: list[tuple[str, tuple[Any, ...]]] = []
        self.closed = False

    async def acquire(self) -> FakeConnection:
        return FakeConnection(self)

    async def release(self, conn: FakeConnection) -> None:
        pass

    async def fetchval(self, sql: str) -> int:
        if self.fail is not None:
            raise self.fail
        return 1

    async def close(self) -> None:
        self.closed = True

    def terminate(self) -> None:
        self.closed = True

    def final_states(self) -> dict[str, str]:
        """call id → state of the last snapshot upserted for it."""
        states: dict[str, str] = {}
        for sql, args in self.committed:
            if sql == UPSERT_CALLS:
                state = [name for name, _ in CALL_COLUMNS].index("state")
                states.update(zip(args[0], args[state], strict=True))
        return states


def make_writer(pool: FakePool, **kw: Any) -> CallWriter:
    values: dict[str, Any] = {"batch_size": 100, "flush_interval": 0.01, "buffer_limit": 1000}
    values.update(kw)

    async def factory() -> asyncpg.Pool:
        return cast(asyncpg.Pool, pool)

    return CallWriter(factory, DatabaseConfig(**values), timeouts=FAST)


async def wait_until(cond: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_a_full_buffer_drops_old_events_but_keeps_every_calls_latest_snapshot() -> None:
    pool = FakePool()
    pool.fail = ConnectionRefusedError(111, "refused")
    writer = make_writer(pool, buffer_limit=10)
    await writer.start()
    for i in range(50):
        for event in lifecycle(f"c{i}", T0 + i):
            writer.submit(event)
    await wait_until(lambda: writer.write_errors >= 2)
    assert writer.buffered == 10 and writer.dropped_events == 240
    assert writer.pending_calls == 50 and not writer.connected
    pool.fail = None
    await wait_until(lambda: writer.pending_calls == 0 and writer.buffered == 0)
    await writer.aclose()
    assert pool.final_states() == {f"c{i}": "ended" for i in range(50)}
    assert writer.written_events == 10 and writer.written_calls == 50
    assert writer.connected and pool.closed


async def test_a_batch_the_server_rejects_is_retried_then_dropped() -> None:
    pool = FakePool()
    pool.fail = asyncpg.exceptions.InvalidTextRepresentationError("invalid input syntax")
    writer = make_writer(pool)
    await writer.start()
    for event in lifecycle("bad-1"):
        writer.submit(event)
    await wait_until(lambda: writer.write_errors == 3 and writer.dropped_events == 5)
    assert writer.dropped_calls == 1 and writer.buffered == 0
    pool.fail = None
    for event in lifecycle("good-1"):
        writer.submit(event)
    await writer.aclose()
    assert pool.final_states() == {"good-1": "ended"}
    assert writer.write_errors == 3


async def test_batches_respect_batch_size_and_each_is_one_transaction() -> None:
    pool = FakePool()
    writer = make_writer(pool, batch_size=100, flush_interval=10.0)
    for i in range(100):
        for event in lifecycle(f"b{i}", T0 + i):
            writer.submit(event)
    await writer.start()
    await writer.aclose()
    assert writer.batches == 5 and writer.written_events == 500
    assert sum(1 for sql, _ in pool.statements if sql == "BEGIN") == 5
    assert len(pool.committed) <= 10  # one upsert + one insert per transaction
    assert pool.final_states() == {f"b{i}": "ended" for i in range(100)}


async def test_submit_is_cheap_and_does_no_io() -> None:
    pool = FakePool()
    writer = make_writer(pool, batch_size=500, buffer_limit=100_000)
    events = [e for i in range(2000) for e in lifecycle(f"s{i}", T0 + i)]
    started = time.perf_counter()
    for event in events:
        writer.submit(event)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, elapsed  # 10,000 submits, no task started, nothing awaited
    assert writer.buffered == 10_000 and pool.statements == []
    await writer.aclose()
    assert writer.written_events == 10_000


async def test_aclose_gives_up_on_a_hung_write_at_its_deadline_and_reports_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = FakePool()
    pool.hang = True  # e.g. a black-holed link: the write never completes
    writer = CallWriter(
        lambda: _ready(pool),
        DatabaseConfig(batch_size=100, flush_interval=0.0, buffer_limit=1000),
        timeouts=WriterTimeouts(connect=1.0, command=30.0, close=0.2),
    )
    await writer.start()
    for event in lifecycle("hung-1"):
        writer.submit(event)
    await wait_until(lambda: writer.buffered == 0)  # the batch is in flight
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="callserver.store.call_writer"):
        await writer.aclose()
    assert time.monotonic() - started < 1.0
    assert writer.buffered == 5 and writer.pending_calls == 1  # put back, not silently lost
    assert any("5 events and 1 calls unwritten" in r.getMessage() for r in caplog.records)


async def _ready(pool: FakePool) -> asyncpg.Pool:
    return cast(asyncpg.Pool, pool)


async def test_a_schema_not_migrated_yet_is_buffered_like_an_outage() -> None:
    pool = FakePool()
    pool.fail = asyncpg.exceptions.UndefinedTableError('relation "calls" does not exist')
    writer = make_writer(pool)
    await writer.start()
    for event in lifecycle("early-1"):
        writer.submit(event)
    await wait_until(lambda: writer.write_errors >= 5)
    assert writer.dropped_events == 0 and writer.buffered == 5 and not writer.connected
    pool.fail = None  # migrations applied
    await writer.aclose()
    assert pool.final_states() == {"early-1": "ended"}


async def test_cancelling_aclose_stops_the_writer_task_too() -> None:
    pool = FakePool()
    pool.hang = True
    writer = CallWriter(
        lambda: _ready(pool),
        DatabaseConfig(batch_size=100, flush_interval=0.0, buffer_limit=1000),
        timeouts=WriterTimeouts(connect=1.0, command=30.0, close=30.0),
    )
    await writer.start()
    writer.submit(lifecycle("hung-2")[0])
    await wait_until(lambda: writer.buffered == 0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):  # e.g. the app's shutdown deadline
            await writer.aclose()
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "call-writer"]
    if tasks:  # still finishing its cancellation
        await asyncio.wait(tasks, timeout=1.0)
    assert all(t.done() for t in tasks)
    assert writer.buffered == 1  # put back on cancellation


async def test_an_idle_writer_probes_so_connected_tells_the_truth() -> None:
    pool = FakePool()
    pool.fail = ConnectionRefusedError(111, "refused")
    writer = make_writer(pool)
    await writer.start()
    await asyncio.sleep(0.1)  # no events at all
    assert not writer.connected and writer.write_errors == 0
    pool.fail = None
    await wait_until(lambda: writer.connected)
    await writer.aclose()


async def test_write_lag_grows_during_an_outage() -> None:
    """Bug: callserver_db_write_lag_seconds read ``last_flush_lag`` (the last batch that was
    written), so during an outage of any length it kept showing the last healthy value."""
    pool = FakePool()
    writer = make_writer(pool)
    await writer.start()
    for event in lifecycle("lag-1"):
        writer.submit(event)
    await wait_until(lambda: writer.pending_calls == 0 and writer.buffered == 0)
    healthy = writer.write_lag
    assert healthy == writer.last_flush_lag < 0.3
    pool.fail = ConnectionRefusedError(111, "refused")
    for event in lifecycle("lag-2", T0 + 60):
        writer.submit(event)
    await asyncio.sleep(0.4)
    assert writer.last_flush_lag == healthy  # what the metric used to read
    assert writer.write_lag >= 0.4
    pool.fail = None
    await wait_until(lambda: writer.pending_calls == 0 and writer.buffered == 0)
    assert writer.write_lag == writer.last_flush_lag
    await writer.aclose()

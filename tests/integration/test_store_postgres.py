"""CallWriter and CallRepository against a real PostgreSQL (fresh database per test).

The outage test puts a TCP proxy between the writer and PostgreSQL and cuts it for real:
established connections are reset and new ones refused, then the proxy listens again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

import callserver.store
from callserver.config import DatabaseConfig
from callserver.core.events import (
    AgentRinging,
    AgentStatusChanged,
)
from callserver.store.call_repository import RECENT_FIELDS, CallRepository
from callserver.store.call_writer import CallWriter, WriterTimeouts
from callserver.store.errors import StoreQueryError, StoreUnavailable
from callserver.store.migrate import MigrationSource, apply_migrations
from callserver.store.postgres import create_pool, ping
from devtools.services import free_port
from tests.integration.store_support import T0, TcpProxy, lifecycle, wait_until

FAST = WriterTimeouts(connect=2.0, command=5.0, close=10.0, retry_min=0.05, retry_max=0.2)


def config(dsn: str, **kw: Any) -> DatabaseConfig:
    values: dict[str, Any] = {"batch_size": 500, "flush_interval": 0.05, "buffer_limit": 100_000}
    values.update(kw)
    return DatabaseConfig(dsn=dsn, **values)


@pytest.fixture
async def db(fresh_pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a fresh database with only this package's migrations applied."""
    conn = await asyncpg.connect(fresh_pg_dsn, timeout=10)
    source = MigrationSource("callserver", Path(callserver.store.__file__).parent / "migrations")
    await apply_migrations(conn, [source])
    yield conn
    await conn.close()


class CountingConnection(asyncpg.Connection):
    """Counts statements sent through ``execute`` (BEGIN, COMMIT, the writes, the reset)."""

    statements = 0

    # same signature as asyncpg.Connection.execute, hence the timeout parameter
    async def execute(
        self,
        query: str,
        *args: object,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> str:
        type(self).statements += 1
        return await super().execute(query, *args, timeout=timeout)


async def test_batches_write_1000_events_in_a_few_round_trips(
    fresh_pg_dsn: str, db: asyncpg.Connection
) -> None:
    CountingConnection.statements = 0

    async def factory() -> asyncpg.Pool:
        return await asyncpg.create_pool(
            fresh_pg_dsn, min_size=1, max_size=1, connection_class=CountingConnection
        )

    writer = CallWriter(factory, config(fresh_pg_dsn, flush_interval=30.0))
    await writer.start()
    for i in range(200):
        for event in lifecycle(f"c{i}", T0 + i):
            writer.submit(event)
    await wait_until(lambda: writer.written_events == 1000)
    await writer.aclose()
    assert await db.fetchval("SELECT count(*) FROM call_events") == 1000
    assert await db.fetchval("SELECT count(*) FROM calls WHERE state = 'ended'") == 200
    assert writer.written_calls == 200
    assert 2 <= writer.batches <= 3
    # BEGIN + upsert + insert + COMMIT + pool reset per batch, independent of the event count
    # (+1: the reset after a connectivity probe when the writer was idle)
    assert CountingConnection.statements <= 5 * writer.batches + 1
    assert writer.last_flush_lag > 0


async def test_clean_shutdown_flushes_before_the_interval(
    fresh_pg_dsn: str, db: asyncpg.Connection
) -> None:
    writer = CallWriter(fresh_pg_dsn, config(fresh_pg_dsn, flush_interval=60.0), timeouts=FAST)
    await writer.start()
    for event in lifecycle("shutdown-1"):
        writer.submit(event)
    started = time.monotonic()
    await writer.aclose()
    assert time.monotonic() - started < 5
    row = await db.fetchrow("SELECT * FROM calls WHERE id = 'shutdown-1'")
    assert row is not None and row["state"] == "ended" and row["talk_seconds"] == 11.0
    assert await db.fetchval("SELECT count(*) FROM call_events") == 5
    assert writer.buffered == 0 and writer.pending_calls == 0


async def test_replaying_the_same_events_creates_no_duplicates(
    fresh_pg_dsn: str, db: asyncpg.Connection
) -> None:
    events = lifecycle("replay-1") + lifecycle("replay-2", T0 + 60)
    for _ in range(2):  # e.g. a resync after reconnect, or a second instance replaying
        writer = CallWriter(fresh_pg_dsn, config(fresh_pg_dsn), timeouts=FAST)
        await writer.start()
        for event in events:
            writer.submit(event)
        await writer.aclose()
    assert await db.fetchval("SELECT count(*) FROM calls") == 2
    assert await db.fetchval("SELECT count(*) FROM call_events") == 10


async def test_an_older_replayed_snapshot_does_not_regress_the_call(
    fresh_pg_dsn: str, db: asyncpg.Connection
) -> None:
    events = lifecycle("old-1")
    writer = CallWriter(fresh_pg_dsn, config(fresh_pg_dsn), timeouts=FAST)
    await writer.start()
    for event in events:
        writer.submit(event)
    await wait_until(lambda: writer.written_calls == 1)
    writer.submit(events[1])  # a late replay of "queued"
    await writer.aclose()
    assert await db.fetchval("SELECT state FROM calls WHERE id = 'old-1'") == "ended"


async def test_two_agents_rung_at_the_same_instant_are_two_events(
    fresh_pg_dsn: str, db: asyncpg.Connection
) -> None:
    queued = lifecycle("ringall-1")[1]
    ring = [
        AgentRinging(at=T0 + 2, call=queued.call, queue="reception", agent=agent)
        for agent in ("PJSIP/op101", "PJSIP/op102")
    ]
    writer = CallWriter(fresh_pg_dsn, config(fresh_pg_dsn), timeouts=FAST)
    await writer.start()
    for event in (queued, *ring):
        writer.submit(event)
    await writer.aclose()
    agents = await db.fetch(
        "SELECT payload->>'agent' AS agent FROM call_events WHERE type = 'AgentRinging' ORDER BY 1"
    )
    assert [r["agent"] for r in agents] == ["PJSIP/op101", "PJSIP/op102"]


async def test_non_call_events_are_ignored_and_untrusted_text_is_stored_as_data(
    fresh_pg_dsn: str, db: asyncpg.Connection
) -> None:
    started = lifecycle("evil-1")[0]
    evil = replace(started.call, caller_name="x'); DROP TABLE calls; --\x00\r\nHANGUP")
    writer = CallWriter(fresh_pg_dsn, config(fresh_pg_dsn), timeouts=FAST)
    await writer.start()
    writer.submit(AgentStatusChanged(at=T0))
    writer.submit(replace(started, call=evil))
    await writer.aclose()
    name = await db.fetchval("SELECT caller_name FROM calls WHERE id = 'evil-1'")
    assert name == "x'); DROP TABLE calls; --\r\nHANGUP"  # NUL removed, the rest kept as data
    assert writer.written_events == 1 and writer.write_errors == 0


@pytest.fixture
async def proxied_dsn(fresh_pg_dsn: str) -> AsyncIterator[tuple[str, TcpProxy]]:
    parts = urlsplit(fresh_pg_dsn)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.restore()
    netloc = (
        f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    )
    yield urlunsplit(parts._replace(netloc=netloc)), proxy
    await proxy.cut()


async def test_postgres_down_then_back_loses_no_call_record(
    proxied_dsn: tuple[str, TcpProxy], db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    dsn, proxy = proxied_dsn
    caplog.set_level(logging.INFO, logger="callserver.store.call_writer")
    writer = CallWriter(dsn, config(dsn, batch_size=50, buffer_limit=100), timeouts=FAST)
    await writer.start()
    for i in range(10):
        for event in lifecycle(f"before-{i}", T0 + i):
            writer.submit(event)
    await wait_until(lambda: writer.written_calls == 10 and writer.connected)

    await proxy.cut()  # the writer's connection is reset, new connections are refused
    for i in range(200):  # 1000 events, 10x the buffer, submitted over ~0.5 s of outage
        for event in lifecycle(f"during-{i}", T0 + 100 + i):
            writer.submit(event)
        if i % 20 == 0:
            await asyncio.sleep(0.05)
    await wait_until(lambda: writer.write_errors >= 3)
    assert not writer.connected
    assert writer.buffered <= 100 and writer.dropped_events >= 900
    assert writer.pending_calls == 200  # every call's latest snapshot is kept

    await proxy.restore()
    await wait_until(lambda: writer.buffered == 0 and writer.pending_calls == 0)
    assert writer.connected
    await writer.aclose()

    rows = await db.fetch("SELECT id, state, talk_seconds, ended_at FROM calls")
    assert len(rows) == 210
    assert {r["state"] for r in rows} == {"ended"}
    assert {r["talk_seconds"] for r in rows} == {11.0}
    assert all(r["ended_at"] is not None for r in rows)
    assert writer.written_events + writer.dropped_events == 1050
    assert await db.fetchval("SELECT count(*) FROM call_events") == writer.written_events
    messages = [r.getMessage() for r in caplog.records]
    assert sum("PostgreSQL unreachable" in m for m in messages) == 1  # once per outage
    assert sum("reachable again" in m for m in messages) == 1


async def test_writer_starts_while_postgres_is_down_and_catches_up(
    proxied_dsn: tuple[str, TcpProxy], db: asyncpg.Connection
) -> None:
    dsn, proxy = proxied_dsn
    await proxy.cut()
    writer = CallWriter(dsn, config(dsn), timeouts=FAST)
    await writer.start()
    for event in lifecycle("late-1"):
        writer.submit(event)
    await wait_until(lambda: writer.write_errors >= 2)
    await proxy.restore()
    await wait_until(lambda: writer.pending_calls == 0)
    await writer.aclose()
    assert await db.fetchval("SELECT state FROM calls WHERE id = 'late-1'") == "ended"


async def test_aclose_with_postgres_down_returns_within_its_deadline(
    proxied_dsn: tuple[str, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    dsn, proxy = proxied_dsn
    await proxy.cut()
    timeouts = replace(FAST, close=0.5)
    writer = CallWriter(dsn, config(dsn), timeouts=timeouts)
    await writer.start()
    for event in lifecycle("lost-1"):
        writer.submit(event)
    started = time.monotonic()
    await writer.aclose()
    assert time.monotonic() - started < 2.0
    assert any("unwritten" in r.getMessage() for r in caplog.records)
    await proxy.restore()  # the fixture cuts it again


async def test_repository_recent_newest_first_and_get_with_timeline(
    fresh_pg_dsn: str, db: asyncpg.Connection
) -> None:
    writer = CallWriter(fresh_pg_dsn, config(fresh_pg_dsn), timeouts=FAST)
    await writer.start()
    for i in range(3):
        for event in lifecycle(f"r{i}", T0 + 60 * i):
            writer.submit(event)
    await writer.aclose()
    pool = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=2)
    try:
        repo = CallRepository(pool)
        recent = await repo.recent(2)
        assert [c["id"] for c in recent] == ["r2", "r1"]
        assert tuple(recent[0]) == RECENT_FIELDS
        assert recent[0]["linkedid"] == "r2" and recent[0]["state"] == "ended"
        assert recent[0]["started_at"] == "2026-09-21T14:15:20+00:00"
        assert recent[0]["talk_seconds"] == 11.0 and recent[0]["wait_seconds"] == 3.0
        call = await repo.get("r0")
        assert call is not None
        assert call["variables"] == {"ROUTE_REASON": "new-patient"}
        assert [e["type"] for e in call["events"]] == [
            "CallStarted", "CallQueued", "AgentRinging", "CallAnswered", "CallEnded",
        ]  # fmt: skip
        assert call["events"][1]["payload"] == {"queue": "reception", "position": 1,
                                                "state": "queued"}  # fmt: skip
        assert await repo.get("nope") is None
    finally:
        await pool.close()


async def test_create_pool_and_ping_translate_failures(fresh_pg_dsn: str) -> None:
    pool = await create_pool(fresh_pg_dsn, min_size=1, max_size=1, connect_timeout=2.0)
    try:
        assert 0 < await ping(pool) < 2.0
    finally:
        await pool.close()
    with pytest.raises(StoreUnavailable):
        await create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/x", connect_timeout=1.0)
    with pytest.raises(StoreQueryError):  # the server answers but refuses: no such database
        await create_pool(fresh_pg_dsn + "_missing", connect_timeout=2.0)


async def test_ping_through_a_cut_link_raises_store_unavailable(
    proxied_dsn: tuple[str, TcpProxy],
) -> None:
    dsn, proxy = proxied_dsn
    pool = await create_pool(dsn, min_size=1, max_size=1, connect_timeout=1.0)
    try:
        await ping(pool)
        await proxy.cut()
        with pytest.raises(StoreUnavailable):
            await ping(pool, deadline=1.0)
        await proxy.restore()
        assert await ping(pool) > 0  # the pool reconnects by itself
    finally:
        pool.terminate()


async def test_an_idle_writer_reports_connectivity_without_any_call(
    proxied_dsn: tuple[str, TcpProxy],
) -> None:
    dsn, proxy = proxied_dsn
    await proxy.cut()
    writer = CallWriter(dsn, config(dsn), timeouts=FAST)
    await writer.start()
    await asyncio.sleep(0.2)
    assert not writer.connected
    await proxy.restore()
    await wait_until(lambda: writer.connected, within=5)
    await proxy.cut()  # noticed on the next write, not by polling while connected
    await writer.aclose()
    await proxy.restore()


@pytest.mark.parametrize(
    ("original", "hostile", "state"),
    [
        # NaN in the JSON payload: jsonb refuses it. The malformed QueueCallerAbandon is
        # dropped (counted in translator.bad) like any non-numeric field, so the call just ends.
        (b"HoldTime: 9\r\n", b"HoldTime: nan\r\n", "ended"),
        (b"Position: 1\r\nOriginalPosition", b"Position: 1e12\r\nOriginalPosition", "ended"),
        # a bad Timestamp falls back to the last good one: the event is kept
        (b"Timestamp: 1795413121.340174", b"Timestamp: 1e300", "abandoned"),
        (b"Timestamp: 1795413121.340174", b"Timestamp: inf", "abandoned"),
    ],
)
async def test_a_malformed_ami_number_does_not_lose_the_batch_of_calls(
    fresh_pg_dsn: str, db: asyncpg.Connection, original: bytes, hostile: bytes, state: str
) -> None:
    """Bug: a non-finite or out-of-range AMI number reached the batch, PostgreSQL rejected it
    three times and the writer dropped every call of that batch, the well-formed ones too."""
    from callserver.asterisk.ami_codec import AmiCodec
    from callserver.asterisk.ami_translate import AmiTranslator
    from callserver.core.bus import EventBus
    from callserver.core.model import LiveModel
    from tests.transcripts import from_asterisk

    abandoned = from_asterisk("ami-queue-abandoned-call.txt")
    assert abandoned.count(original) >= 1
    abandoned = abandoned.replace(original, hostile)
    writer = CallWriter(fresh_pg_dsn, config(fresh_pg_dsn, flush_interval=60.0), timeouts=FAST)
    bus = EventBus()
    bus.subscribe(writer.submit)
    translator, codec = AmiTranslator(LiveModel(bus)), AmiCodec()
    await writer.start()
    for data in (from_asterisk("ami-queue-answered-call.txt"), abandoned):
        for msg in codec.feed(data):
            translator.handle(msg)
    await writer.aclose()
    assert writer.dropped_calls == 0
    rows = await db.fetch("SELECT caller, state, ended_at FROM calls ORDER BY started_at")
    assert [(r["caller"], r["state"]) for r in rows] == [
        ("79161234567", "ended"),
        ("79035550101", state),
    ]
    assert all(r["ended_at"].year == 2026 for r in rows)  # the bad time was not taken
    years = await db.fetch("SELECT DISTINCT extract(year FROM at) AS y FROM call_events")
    assert [r["y"] for r in years] == [2026]


async def test_a_row_postgres_refuses_loses_only_its_own_call(
    fresh_pg_dsn: str, db: asyncpg.Connection
) -> None:
    """Bug: after three refusals the writer dropped the whole batch (up to 500 calls) for one
    bad row; now it writes the batch call by call and drops only the refused call."""
    from dataclasses import replace

    from tests.integration.store_support import lifecycle

    writer = CallWriter(fresh_pg_dsn, config(fresh_pg_dsn, flush_interval=60.0), timeouts=FAST)
    await writer.start()
    for call_id in ("good.1", "bad.2", "good.3"):
        for event in lifecycle(call_id):
            if call_id == "bad.2":  # an integer column cannot hold it
                event = replace(event, call=replace(event.call, abandon_position=10**12))
            writer.submit(event)
    await writer.aclose()
    rows = await db.fetch("SELECT id, state FROM calls ORDER BY id")
    assert [(r["id"], r["state"]) for r in rows] == [("good.1", "ended"), ("good.3", "ended")]
    assert writer.dropped_calls == 1
    events = await db.fetchval("SELECT count(*) FROM call_events WHERE call_id LIKE 'good.%'")
    assert events == 10

"""Call flows in PostgreSQL (issue 15, issue 9 defect 2), fresh database per test.

The golden transcripts go through the real codec, translator and live model, the bus feeds a real
``CallWriter``; "restart" = the writer is closed and a new model and writer are built, resynced
through ``resync()`` with the open calls read by ``PgOpenCalls`` from the same database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

import callserver.store
from callserver.asterisk.ami_codec import AmiCodec, AmiMessage
from callserver.asterisk.ami_translate import AmiTranslator
from callserver.asterisk.resync import resync
from callserver.config import DatabaseConfig
from callserver.core.bus import EventBus
from callserver.core.events import CallEnded, DomainEvent
from callserver.core.model import RESYNC_CAUSE, LiveModel
from callserver.store.call_repository import CallRepository
from callserver.store.call_writer import CallWriter, WriterTimeouts
from callserver.store.migrate import MigrationSource, apply_migrations
from callserver.store.open_calls import PgOpenCalls
from tests.integration.store_support import lifecycle
from tests.transcripts import from_asterisk
from tests.unit.test_resync import channel_list, core_show_channel

FAST = WriterTimeouts(connect=2.0, command=5.0, close=10.0, retry_min=0.05, retry_max=0.2)
MIGRATIONS = Path(callserver.store.__file__).parent / "migrations"


@pytest.fixture
async def db(fresh_pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(fresh_pg_dsn, timeout=10)
    await apply_migrations(conn, [MigrationSource("callserver", MIGRATIONS)])
    yield conn
    await conn.close()


class Node:
    """One callserver process: model + translator + writer on one bus."""

    def __init__(self, dsn: str) -> None:
        self.bus = EventBus()
        self.events: list[DomainEvent] = []
        self.model = LiveModel(self.bus)
        self.translator = AmiTranslator(self.model)
        cfg = DatabaseConfig(dsn=dsn, batch_size=500, flush_interval=0.05, buffer_limit=100_000)
        self.writer = CallWriter(dsn, cfg, timeouts=FAST)
        self.bus.subscribe(self.writer.submit)
        self.bus.subscribe(self.events.append)

    def feed(self, msgs: Iterator[AmiMessage], until: str = "") -> None:
        for msg in msgs:
            self.translator.handle(msg)
            if msg.name == until:
                return


class Lists:
    """The AmiClient method resync uses, answering from fixed lists."""

    def __init__(self, channels: list[AmiMessage]) -> None:
        self.channels = channels

    async def send_list_action(
        self,
        action: str,
        headers: Mapping[str, str | Sequence[str]] | None = None,
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> list[AmiMessage]:
        return self.channels if action == "CoreShowChannels" else []


async def test_a_restart_during_a_call_keeps_one_record_with_every_fact(
    fresh_pg_dsn: str, db: asyncpg.Connection
) -> None:
    """Bug (issue 15.3): the record was overwritten with ``direction: internal, caller: 101,
    did: "", queue: "", agent: ""`` and got a second CallStarted. Also issue 9 defect 2: a
    second call, answered at the kill and ended while callserver was down, is closed once."""
    blind = iter(AmiCodec().feed(from_asterisk("ami-blind-transfer.txt")))
    other = iter(AmiCodec().feed(from_asterisk("ami-queue-answered-call.txt")))
    first = Node(fresh_pg_dsn)
    await first.writer.start()
    first.feed(other, until="AgentConnect")
    first.feed(blind, until="AgentConnect")
    await first.writer.aclose()  # kill -9 after the writer's last flush
    listed = channel_list(
        core_show_channel(Channel="PJSIP/op101-00000013", Uniqueid="1796162434.25",
                          Linkedid="1796162433.24", CallerIDNum="101", Context="operators",
                          BridgeId="br", Application="AppQueue", Duration="00:00:07"),
        core_show_channel(Channel="PJSIP/trunk-00000012", Uniqueid="1796162433.24",
                          Linkedid="1796162433.24", CallerIDNum="79161234567",
                          Context="route-inbound", BridgeId="br", Duration="00:00:07"),
    )  # fmt: skip
    pool = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=2)
    second = Node(fresh_pg_dsn)
    await second.writer.start()
    try:
        await resync(Lists(listed), second.model, clock=lambda: 1796162439.0,
                     store=PgOpenCalls(pool))  # fmt: skip
        second.feed(blind)
        await second.writer.aclose()
        row = await db.fetchrow("SELECT * FROM calls WHERE id = '1796162433.24'")
        assert row is not None
        assert (row["direction"], row["caller"], row["caller_e164"], row["did"], row["queue"]) == (
            "inbound", "79161234567", "+79161234567", "74951234567", "reception")
        assert (row["agent"], row["state"], row["hangup_by"]) == ("PJSIP/op102", "ended", "caller")
        types = [r["type"] for r in await db.fetch(
            "SELECT type FROM call_events WHERE call_id = '1796162433.24' ORDER BY at, id")]
        assert types.count("CallStarted") == 1 and "CallTransferred" in types
        gone = await db.fetchrow("SELECT * FROM calls WHERE id = '1795413075.4'")
        assert gone is not None
        connect_at = next(e.at for e in first.events if e.type == "CallAnswered")
        assert gone["ended_at"].timestamp() == pytest.approx(connect_at)
        assert (gone["state"], gone["hangup_cause"]) == ("ended", RESYNC_CAUSE)
        assert [e.call.id for e in second.events if isinstance(e, CallEnded)] == [
            "1795413075.4", "1796162433.24"]
        assert await PgOpenCalls(pool).open_calls() == []
        repo = await CallRepository(pool).get("1796162433.24")
        assert repo is not None
        agents = [(a["agent"], a["talk_seconds"], a["via"]) for a in repo["agents"]]
        assert agents[0] == ("PJSIP/op101", 4.0, "queue") and agents[1][0] == "PJSIP/op102"
    finally:
        await pool.close()


async def test_the_writer_never_replaces_stored_facts_with_empty_ones(
    fresh_pg_dsn: str, db: asyncpg.Connection
) -> None:
    """A model that rebuilt the call from the channel list alone (PostgreSQL unreachable at
    the resync) writes a snapshot with less: the stored facts stay, new ones are added."""
    events = lifecycle("merge-1")
    answered = events[3]
    writer = CallWriter(fresh_pg_dsn, DatabaseConfig(dsn=fresh_pg_dsn, flush_interval=0.05),
                        timeouts=FAST)  # fmt: skip
    await writer.start()
    for event in events[:4]:
        writer.submit(event)
    await writer.aclose()
    lesser = replace(
        answered.call, direction="internal", caller="", caller_name="", did="", ad_source="",
        queue="", agent="", agent_name="", started_at=answered.call.started_at + 30,
        wait_seconds=None, variables=(("ROUTE_MODE", "queue"),),
    )  # fmt: skip
    writer = CallWriter(fresh_pg_dsn, DatabaseConfig(dsn=fresh_pg_dsn, flush_interval=0.05),
                        timeouts=FAST)  # fmt: skip
    await writer.start()
    writer.submit(replace(events[4], at=events[4].at + 60,
                          call=replace(lesser, state="ended", ended_at=answered.at + 70)))
    await writer.aclose()
    row = await db.fetchrow("SELECT * FROM calls WHERE id = 'merge-1'")
    assert row is not None
    assert (row["direction"], row["caller"], row["did"], row["ad_source"], row["queue"],
            row["agent"]) == ("inbound", "79161234567", "74951234567", "source-a", "reception",
                              "PJSIP/op101")  # fmt: skip
    assert row["started_at"].timestamp() == answered.call.started_at  # the earliest known
    assert row["wait_seconds"] == 3.0 and row["state"] == "ended"
    assert row["caller_e164"] == "+79161234567"


async def test_abandoned_calls_list_their_queue_wait(
    fresh_pg_dsn: str, db: asyncpg.Connection
) -> None:
    """Bug (issue 15.6): /api/calls listed an abandoned call with ``wait_seconds: null`` while
    its record had the wait (as ``hold_seconds``)."""
    node = Node(fresh_pg_dsn)
    await node.writer.start()
    node.feed(iter(AmiCodec().feed(from_asterisk("ami-queue-abandoned-call.txt"))))
    await node.writer.aclose()
    pool = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=1)
    try:
        [call] = await CallRepository(pool).recent(5)
    finally:
        await pool.close()
    assert (call["state"], call["wait_seconds"], call["hold_seconds"]) == ("abandoned", 9.0, None)
    assert (call["caller"], call["caller_e164"]) == ("79035550101", "+79035550101")


async def test_migration_gives_old_rows_the_new_meanings(fresh_pg_dsn: str) -> None:
    sql = [path.read_text(encoding="utf-8") for path in MigrationSource("x", MIGRATIONS).files()]
    conn = await asyncpg.connect(fresh_pg_dsn, timeout=10)
    try:
        await conn.execute(sql[0])
        await conn.execute(
            "INSERT INTO calls (id, caller, state, started_at, updated_at, hold_seconds)"
            " VALUES ('old-ab', '89161112233', 'abandoned', now(), now(), 8),"
            " ('old-an', 'anonymous', 'ended', now(), now(), NULL)"
        )
        for text in sql[1:]:
            await conn.execute(text)
        rows = {r["id"]: dict(r) for r in await conn.fetch(
            "SELECT id, wait_seconds, hold_seconds, caller, caller_e164, agents::text AS agents"
            " FROM calls")}  # fmt: skip
    finally:
        await conn.close()
    assert rows["old-ab"]["wait_seconds"] == 8.0 and rows["old-ab"]["hold_seconds"] is None
    assert rows["old-ab"]["caller"] == "89161112233"  # as dialled, kept
    assert rows["old-ab"]["caller_e164"] == "+79161112233"
    assert rows["old-an"]["caller_e164"] == "" and rows["old-an"]["agents"] == "[]"

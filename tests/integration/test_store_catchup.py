"""The catch-up from Asterisk's ``cdr`` and ``queue_log`` tables (issues 9 and 15) in a whole
CallServer with real PostgreSQL and Redis: calls the live model never saw appear once and
right (and reach the CRM outbox), a call resync closed is corrected, a right one is left alone,
and a second pass changes and publishes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import asyncpg
import pytest

from callserver.app import CallServer
from callserver.config import load_config
from callserver.core.events import CallEnded, DomainEvent
from callserver.core.model import RESYNC_CAUSE
from callserver.store import catchup as catchup_module
from callserver.store.catchup import CATCHUP_CAUSE, CdrCatchup
from callserver.store.migrate import apply_migrations, core_sources
from devtools.services import free_port
from pbxsim.durable import CDR_COLUMNS, CREATE_SQL, QUEUE_LOG_COLUMNS

pytestmark = pytest.mark.integration
T0 = 0.0
"""The calls' start: set when the test starts (inside the first pass's look-back, settled)."""


def _ts(offset: float | None) -> dt.datetime | None:
    return None if offset is None else dt.datetime.fromtimestamp(T0 + offset, dt.UTC)


def _cdr(uid: str, linkedid: str, start: float, answer: float | None, end: float, *,
         src: str = "79161234567", dst: str = "74951234567", channel: str = "PJSIP/trunk-0000001",
         dstchannel: str = "", disposition: str = "ANSWERED") -> tuple[Any, ...]:  # fmt: skip
    values = {"calldate": _ts(start), "answer": _ts(answer), "end": _ts(end),
              "clid": f'"" <{src}>', "src": src, "dst": dst, "dcontext": "route-inbound",
              "channel": channel, "dstchannel": dstchannel, "lastapp": "Queue",
              "lastdata": "reception,r,,,45", "duration": int(end - start),
              "billsec": int(end - (answer or end)), "disposition": disposition, "amaflags": 3,
              "accountcode": "", "uniqueid": uid, "linkedid": linkedid, "userfield": "",
              "peeraccount": "", "sequence": 1}  # fmt: skip
    return tuple(values[c] for c in CDR_COLUMNS)


def _q(at: float, callid: str, event: str, *data: str, agent: str = "NONE") -> tuple[Any, ...]:
    return (_ts(at), callid, "reception", agent, event, *(*data, "", "", "", "", "")[:5])


def _cdrs() -> list[tuple[Any, ...]]:
    return [
        # A: answered by op101 (wait 3, talk 11), never seen by callserver
        _cdr("100.1", "100.1", 0, 0.2, 15.5, dstchannel="PJSIP/op101-0000002a"),
        # B: abandoned after 9 s in the queue, never seen
        _cdr(
            "200.1",
            "200.1",
            0,
            0.2,
            10.5,
            src="79035550101",
            dst="74957654321",
            dstchannel="",
            disposition="NO ANSWER",
        ),
        # C: answered by op102 during an AMI gap, closed by resync with guesses
        _cdr("300.1", "300.1", 0, 0.2, 30.0, dstchannel="PJSIP/op102-0000002b"),
        # D: seen live and stored right
        _cdr("400.1", "400.1", 0, 0.2, 20.0, dstchannel="PJSIP/op103-0000002c"),
        # E: adopted by resync after a restart, its end seen live, its answer not
        _cdr("500.1", "500.1", 0, 0.2, 12.0, dstchannel="PJSIP/op104-0000002d"),
    ]


def _qlog() -> list[tuple[Any, ...]]:
    return [
        _q(1, "100.1", "ENTERQUEUE", "", "79161234567", "1"),
        _q(4, "100.1", "CONNECT", "3", "100.2", "1", agent="Operator 101"),
        _q(15, "100.1", "COMPLETECALLER", "3", "11", "1", agent="Operator 101"),
        _q(1, "200.1", "ENTERQUEUE", "", "79035550101", "1"),
        _q(10, "200.1", "ABANDON", "1", "1", "9"),
        _q(1, "300.1", "ENTERQUEUE", "", "79161234567", "1"),
        _q(6, "300.1", "CONNECT", "5", "300.2", "2", agent="Operator 102"),
        _q(30, "300.1", "COMPLETEAGENT", "5", "24", "1", agent="Operator 102"),
        _q(1, "400.1", "ENTERQUEUE", "", "79161234567", "1"),
        _q(3, "400.1", "CONNECT", "2", "400.2", "1", agent="Operator 103"),
        _q(20, "400.1", "COMPLETECALLER", "2", "17", "1", agent="Operator 103"),
        _q(1, "500.1", "ENTERQUEUE", "", "79161234567", "1"),
        _q(2, "500.1", "CONNECT", "1", "500.2", "1", agent="Operator 104"),
        _q(12, "500.1", "COMPLETECALLER", "1", "10", "1", agent="Operator 104"),
    ]


_INSERT_CALL = (
    "INSERT INTO calls (id, direction, caller, did, queue, agent, state, started_at, queued_at,"
    " answered_at, ended_at, wait_seconds, talk_seconds, hangup_cause, updated_at)"
    " VALUES ($1, 'inbound', '79161234567', '74951234567', 'reception', $2, 'ended', $3, $4,"
    " $5, $6, $7, $8, $9, $6)"
)


async def _seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for sql in CREATE_SQL:
            await conn.execute(sql)
        names = ", ".join(f'"{c}"' for c in CDR_COLUMNS)
        marks = ", ".join(f"${i}" for i in range(1, len(CDR_COLUMNS) + 1))
        await conn.executemany(f"INSERT INTO cdr ({names}) VALUES ({marks})", _cdrs())
        names = ", ".join(f'"{c}"' for c in QUEUE_LOG_COLUMNS)
        await conn.executemany(f"INSERT INTO queue_log ({names}) VALUES ($1, $2, $3, $4, $5,"
                               " $6, $7, $8, $9, $10)", _qlog())  # fmt: skip
        # C as resync left it (no agent, not answered, ended when last seen); D right
        await conn.execute(_INSERT_CALL, "300.1", "", _ts(0), _ts(1), None, _ts(2), None, None,
                           RESYNC_CAUSE)  # fmt: skip
        await conn.execute(_INSERT_CALL, "500.1", "", _ts(0), None, None, _ts(12), None, None,
                           "Normal Clearing")  # fmt: skip
        await conn.execute(_INSERT_CALL, "400.1", "PJSIP/op103", _ts(0), _ts(1), _ts(3), _ts(20),
                           2.0, 17.0, "16")  # fmt: skip
    finally:
        await conn.close()


async def _wait(conn: asyncpg.Connection, sql: str, want: int, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while (n := await conn.fetchval(sql)) != want:
        assert time.monotonic() < deadline, f"{sql}: {n} != {want}"
        await asyncio.sleep(0.1)


async def test_catchup_adds_and_corrects_calls_once(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    config = load_config(None, env={
        "CALLSERVER_AMI_ENABLED": "false", "CALLSERVER_ARI_ENABLED": "false",
        "CALLSERVER_AGI_ENABLED": "false", "CALLSERVER_DATABASE_DSN": fresh_pg_dsn,
        "CALLSERVER_DATABASE_CDR_DSN": fresh_pg_dsn,
        "CALLSERVER_DATABASE_FLUSH_INTERVAL": "0.05", "CALLSERVER_REDIS_URL": redis_url,
        "CALLSERVER_REDIS_PREFIX": redis_prefix, "CALLSERVER_HTTP_PORT": str(free_port()),
    })  # fmt: skip
    global T0
    T0 = time.time() - 300.0
    server = await CallServer.create(config)
    assert server.catchup is not None
    await server.database.migrate_once()
    await _seed(fresh_pg_dsn)
    ended: list[CallEnded] = []

    def keep(event: DomainEvent) -> None:
        if isinstance(event, CallEnded) and event.cause == CATCHUP_CAUSE:
            ended.append(event)

    server.bus.subscribe(keep)
    conn = await asyncpg.connect(fresh_pg_dsn)
    await server.start()  # the first pass runs once the schema is there
    try:
        await _wait(conn, "SELECT count(*) FROM calls WHERE answered_at IS NOT NULL"
                          " AND id IN ('100.1', '300.1', '500.1')", 3)  # fmt: skip
        await _wait(conn, "SELECT count(*) FROM crm_outbox WHERE kind = 'call_record'", 4)
        rows = {r["id"]: r for r in await conn.fetch("SELECT * FROM calls")}
        assert sorted(e.call.id for e in ended) == ["100.1", "200.1", "300.1", "500.1"]
        a, b, c, d = (rows[i] for i in ("100.1", "200.1", "300.1", "400.1"))
        assert (a["caller"], a["did"], a["queue"], a["agent"], a["state"]) == (
            "79161234567",
            "74951234567",
            "reception",
            "PJSIP/op101",
            "ended",
        )
        assert a["wait_seconds"] == 3.0 and a["talk_seconds"] == pytest.approx(11.0)
        assert a["answered_at"] == _ts(4) and a["ended_at"] == _ts(15.5)
        assert a["caller_e164"] == "+79161234567" and a["hangup_by"] == "caller"
        assert (b["state"], b["answered_at"], b["wait_seconds"], b["abandon_position"]) == (
            "abandoned",
            None,
            9.0,
            1,
        )
        assert (c["agent"], c["answered_at"], c["wait_seconds"]) == ("PJSIP/op102", _ts(6), 5.0)
        assert c["talk_seconds"] == pytest.approx(24.0) and c["ended_at"] == _ts(30)
        assert c["hangup_by"] == "agent"
        assert (d["agent"], d["talk_seconds"], d["updated_at"]) == ("PJSIP/op103", 17.0, _ts(20))
        e = rows["500.1"]  # corrected, its end kept
        assert (e["agent"], e["answered_at"], e["ended_at"]) == ("PJSIP/op104", _ts(2), _ts(12))
        assert e["talk_seconds"] == pytest.approx(10.0) and e["wait_seconds"] == 1.0
        keys = {
            r["k"]
            for r in await conn.fetch(
                "SELECT idempotency_key AS k FROM crm_outbox WHERE kind = 'call_record'"
            )
        }
        assert keys == {f"call-record:{i}00.1" for i in (1, 2, 3, 5)}
        # twice: nothing changes, nothing is published again
        again = await server.catchup.run_once()
        assert (again.read, again.inserted, again.corrected, again.unchanged) == (5, 0, 0, 5)
        await asyncio.sleep(0.3)
        assert len(ended) == 4
        assert await conn.fetchval("SELECT count(*) FROM calls") == 5
        assert await conn.fetchval("SELECT count(*) FROM crm_outbox") == 4
        mark = await conn.fetchval("SELECT watermark FROM catchup_state WHERE name = 'cdr'")
        assert mark > _ts(30)
    finally:
        await conn.close()
        await server.aclose()


async def _seeded_schema(dsn: str) -> None:
    """callserver's schema and the seeded cdr/queue_log rows, the calls ending ~5 minutes ago."""
    global T0
    T0 = time.time() - 300.0
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, core_sources())
    finally:
        await conn.close()
    await _seed(dsn)


async def test_catchup_pages_through_more_calls_than_a_page(
    fresh_pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 2 calls: every call is read once per pass, and a pass over calls already
    merged (more of them than a page, all inside the safety margin) ends."""
    monkeypatch.setattr(catchup_module, "PAGE", 2)
    await _seeded_schema(fresh_pg_dsn)
    ended: list[DomainEvent] = []
    pool = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=2)
    try:
        catchup = CdrCatchup(pool, fresh_pg_dsn, ended.append, lambda _cid: False)
        first = await catchup.run_once()
        assert (first.read, first.inserted, first.corrected, first.unchanged) == (5, 2, 2, 1)
        await pool.execute("DELETE FROM catchup_state")  # the same rows once more
        async with asyncio.timeout(10):
            again = await catchup.run_once()
        assert (again.read, again.inserted, again.corrected, again.unchanged) == (5, 0, 0, 5)
        assert sorted(e.call.id for e in ended if isinstance(e, CallEnded)) == [
            "100.1", "200.1", "300.1", "500.1"]
    finally:
        await pool.close()


async def test_catchup_reads_no_further_than_ami_has_delivered(fresh_pg_dsn: str) -> None:
    """Bug: under a burst callserver read AMI some seconds behind Asterisk; the catch-up took
    calls AMI had not delivered yet for missed ones and wrote them from the CDR alone."""
    await _seeded_schema(fresh_pg_dsn)
    ended: list[DomainEvent] = []
    seen: list[float | None] = [T0]  # AMI up, read up to the first call's start
    pool = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=2)
    try:
        catchup = CdrCatchup(pool, fresh_pg_dsn, ended.append, lambda _cid: False,
                             ami_seen=lambda: seen[0])  # fmt: skip
        behind = await catchup.run_once()
        assert (behind.read, ended) == (0, [])
        seen[0] = None  # AMI down: up to now
        caught = await catchup.run_once()
        assert caught.read == 5 and caught.inserted == 2
    finally:
        await pool.close()

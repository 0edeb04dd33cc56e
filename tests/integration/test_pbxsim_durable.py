"""pbxsim's Asterisk durable records (``--cdr-dsn``): the ``cdr`` and ``queue_log`` rows it
writes into a real PostgreSQL agree with its ground-truth ledger, call by call."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pbxsim.app import Pbx, PbxOptions
from pbxsim.durable import DurableWriter, QueueLogTap
from pbxsim.scenario import load
from tests.integration.test_pbxsim_ledger import SCENARIO

pytestmark = pytest.mark.integration


async def _run(tmp_path: Path, dsn: str) -> list[dict[str, Any]]:
    path = tmp_path / "durable-mix.toml"
    path.write_text(SCENARIO.replace("duration_s = 150", "duration_s = 100"), encoding="utf-8")
    ledger = tmp_path / "calls.jsonl"
    opts = PbxOptions(ami_port=0, agi_port=1, speed=40.0, agi_timeout_s=0.5, seed=7,
                      ledger_path=str(ledger), cdr_dsn=dsn)  # fmt: skip
    pbx = Pbx(load(str(path)), opts)
    await pbx.start()
    try:
        async with asyncio.timeout(60):
            await pbx.run_scenario()
    finally:
        await pbx.aclose()  # writes what is buffered
    return [json.loads(x) for x in ledger.read_text(encoding="utf-8").splitlines()]


async def test_cdr_and_queue_log_rows_match_the_ledger(tmp_path: Path, fresh_pg_dsn: str) -> None:
    ledger = await _run(tmp_path, fresh_pg_dsn)
    conn = await asyncpg.connect(fresh_pg_dsn)
    try:
        cdrs = await conn.fetch("SELECT * FROM cdr ORDER BY sequence")
        qlog = await conn.fetch("SELECT * FROM queue_log ORDER BY id")
    finally:
        await conn.close()
    assert len(ledger) >= 12
    events: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in qlog:
        events[row["callid"]].append(row)
    by_uid: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in cdrs:
        by_uid[r["uniqueid"]].append(r)
    kinds = set()
    for call in ledger:
        uid = call["uniqueid"]
        mine = by_uid[uid]  # the caller's channel has its CDR(s): a transfer adds one
        assert mine and all(c["linkedid"] == call["linkedid"] for c in mine)
        assert all(c["src"] == call["caller"] for c in mine)
        rows = events.get(uid, [])
        names = [r["event"] for r in rows]
        kinds.update(names)
        if not call["queue"]:
            assert not rows
            continue
        assert names[0] == "ENTERQUEUE" and rows[0]["queuename"] == call["queue"]
        assert rows[0]["data2"] == call["caller"]
        if call["outcome"] == "answered":
            connect = rows[names.index("CONNECT")]
            assert int(connect["data1"]) == call["wait_s"]
            assert connect["agent"].startswith("Operator ")
            assert names[-1] in {"COMPLETECALLER", "COMPLETEAGENT", "BLINDTRANSFER",
                                 "ATTENDEDTRANSFER"}  # fmt: skip
            if call["transfers"]:
                want = {"blind": "BLINDTRANSFER", "attended": "ATTENDEDTRANSFER"}
                assert names[-1] == want[call["transfers"][0]["kind"]]
            assert mine[0]["disposition"] == "ANSWERED" and mine[0]["answer"] is not None
        else:
            assert call["outcome"] == "abandoned"
            assert names[-1] in {"ABANDON", "EXITWITHTIMEOUT"}
            assert int(rows[-1]["data3"]) == call["wait_s"]
    # the mix has every kind of ending
    assert {"CONNECT", "ABANDON", "BLINDTRANSFER", "ATTENDEDTRANSFER"} <= kinds
    assert kinds & {"COMPLETECALLER", "COMPLETEAGENT"}


def test_queue_timeout_becomes_exitwithtimeout() -> None:
    tap = QueueLogTap()
    join = (b"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\nUniqueid: 1.1\r\n"
            b"CallerIDNum: 7916\r\nQueue: q\r\nPosition: 2\r\nCount: 2\r\n\r\n")  # fmt: skip
    row = tap.feed(join, 1000.0)
    assert row is not None and row[4] == "ENTERQUEUE" and row[5:8] == ("", "7916", "2")
    tap.queue_timeout("1.1")
    gone = (b"Event: QueueCallerAbandon\r\nPrivilege: agent,all\r\nUniqueid: 1.1\r\n"
            b"Queue: q\r\nPosition: 1\r\nOriginalPosition: 2\r\nHoldTime: 45\r\n\r\n")  # fmt: skip
    row = tap.feed(gone, 1045.0)
    assert row is not None and row[1:5] == ("1.1", "q", "NONE", "EXITWITHTIMEOUT")
    assert row[5:8] == ("1", "2", "45")
    row = tap.feed(gone, 1046.0)  # another abandon of the same caller is an ABANDON again
    assert row is not None and row[4] == "ABANDON"
    assert tap.feed(b"Event: Newstate\r\nUniqueid: 1.1\r\n\r\n", 1.0) is None


def test_an_exit_key_becomes_exitwithkey_and_other_leaves_nothing() -> None:
    tap = QueueLogTap()
    for uid in ("1.1", "1.2"):
        tap.feed(b"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\nUniqueid: " + uid.encode()
                 + b"\r\nCallerIDNum: 7916\r\nQueue: q\r\nPosition: 2\r\nCount: 2\r\n\r\n",
                 1000.0)  # fmt: skip
    tap.queue_key("1.1", "1")

    def leave(uid: str) -> bytes:
        return (b"Event: QueueCallerLeave\r\nPrivilege: agent,all\r\nUniqueid: " + uid.encode()
                + b"\r\nQueue: q\r\nPosition: 2\r\nCount: 1\r\n\r\n")  # fmt: skip

    row = tap.feed(leave("1.1"), 1012.0)
    assert row is not None and row[1:5] == ("1.1", "q", "NONE", "EXITWITHKEY")
    assert row[5:9] == ("1", "2", "2", "12")
    assert tap.feed(leave("1.2"), 1013.0) is None  # answered: its CONNECT says so


def _cdr_fields(uid: str) -> dict[str, Any]:
    return {"CallerID": '"" <7916>', "Source": "7916", "Destination": "s",
            "DestinationContext": "route-inbound", "Channel": f"PJSIP/trunk-{uid}",
            "DestinationChannel": "", "LastApplication": "Hangup", "LastData": "",
            "Duration": "9", "BillableSeconds": "9", "Disposition": "ANSWERED",
            "AMAFlags": "DOCUMENTATION", "AccountCode": "", "UniqueID": uid, "UserField": ""}


async def test_a_calls_queue_log_rows_are_written_before_its_cdr(fresh_pg_dsn: str) -> None:
    """Bug: both tables were flushed in equal batches, so under a burst (six queue_log rows per
    call, one CDR) the CDR of a call was in PostgreSQL long before its queue_log rows, and
    callserver's catch-up built that call without its queue."""
    writer = DurableWriter(fresh_pg_dsn, batch=50, interval=0.01)
    for i in range(300):
        uid = f"1.{i}"
        for n in range(6):
            writer.event(b"Event: QueueCallerJoin\r\nUniqueid: " + uid.encode()
                         + f"\r\nCallerIDNum: 7916\r\nQueue: q{n}\r\nPosition: 1\r\n"
                           "Count: 1\r\n\r\n".encode(), 1000.0 + i)  # fmt: skip
        writer.cdr(_cdr_fields(uid), start=1000.0 + i, answer=1001.0 + i, end=1009.0 + i,
                   linkedid=uid)  # fmt: skip
    conn = await asyncpg.connect(fresh_pg_dsn)
    await writer.start()
    try:
        seen_any = False
        for _ in range(400):  # watch the tables while the writer works through its backlog
            with contextlib.suppress(asyncpg.UndefinedTableError):
                cdrs = {r[0] for r in await conn.fetch("SELECT linkedid FROM cdr")}
                qlog = defaultdict(int)
                for r in await conn.fetch("SELECT callid FROM queue_log"):
                    qlog[r[0]] += 1
                assert all(qlog[uid] == 6 for uid in cdrs), "a CDR before its queue_log rows"
                seen_any = seen_any or 0 < len(cdrs) < 300
                if len(cdrs) == 300:
                    break
            await asyncio.sleep(0.005)
        assert len(cdrs) == 300 and seen_any
    finally:
        await writer.aclose()
        await conn.close()

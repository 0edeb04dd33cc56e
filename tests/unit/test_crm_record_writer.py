"""CallRecordWriter with a small fake outbox: an outage keeps every record (retried, summarised
in a few log lines, not one per call), a row the database refuses loses only that call, and a
call no record can be built from does not hold back the others (issue 9, defect 3)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from callserver.core.events import CallEnded, CallSnapshot
from crm_bridge.errors import OutboxError
from crm_bridge.record_writer import CallRecordWriter, RecordWriterSettings

FAST = RecordWriterSettings(batch_size=100, retry_min=0.01, retry_max=0.02, summary_interval=0.2)


class FlakyOutbox:
    """``PushQueue``: down while ``down``; refuses (for good) any batch holding a refused key."""

    def __init__(self) -> None:
        self.rows: dict[str, Mapping[str, Any]] = {}
        self.down = False
        self.refuse: set[str] = set()
        self.statements = 0

    async def enqueue(self, kind: str, data: Mapping[str, Any], *, idempotency_key: str) -> bool:
        return await self.enqueue_many([(kind, data, idempotency_key)]) == 1

    async def enqueue_many(self, items: Sequence[tuple[str, Mapping[str, Any], str]]) -> int:
        self.statements += 1
        await asyncio.sleep(0)
        if self.down:
            raise OutboxError(message="outbox database timed out", transient=True)
        if any(key in self.refuse for _, _, key in items):
            raise OutboxError(message="outbox database failed (store-query-failed)",
                              transient=False)  # fmt: skip
        new = [key for _, _, key in items if key not in self.rows]
        self.rows.update((key, data) for _, data, key in items if key not in self.rows)
        return len(new)


def ended(i: int, **kw: Any) -> CallEnded:
    call = CallSnapshot(**{
        "id": f"c{i}", "linkedid": f"c{i}", "direction": "inbound", "state": "ended",
        "caller": "89161234567", "caller_name": "", "did": "", "ad_source": "", "queue": "",
        "agent": "", "agent_name": "", "started_at": 1.8e9 + i, "ended_at": 1.8e9 + i + 5, **kw,
    })  # fmt: skip
    return CallEnded(1.8e9 + i + 5, call)


async def _drain(writer: CallRecordWriter) -> None:
    async with asyncio.timeout(10):
        await writer.wait_written()


async def test_an_outbox_outage_keeps_every_record_and_logs_a_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbox = FlakyOutbox()
    outbox.down = True
    writer = CallRecordWriter(outbox, FAST)
    await writer.start()
    for i in range(5_000):
        writer.submit(ended(i))
    await asyncio.sleep(0.5)  # down for half a second: many retries
    assert writer.pending == 5_000 and outbox.rows == {}
    health = await writer.health()
    assert health.status == "degraded" and "outbox unavailable" in health.detail
    assert health.extra["pending"] == 5_000
    outbox.down = False
    await _drain(writer)
    assert (await writer.health()).status == "ok"
    await writer.aclose()
    assert len(outbox.rows) == 5_000 and writer.queued == 5_000
    assert outbox.rows["call-record:c7"]["phone"] == "+79161234567"
    lines = [r for r in caplog.records if r.name == "crm_bridge.record_writer"]
    assert 2 <= len(lines) <= 8, [r.getMessage() for r in lines]  # not one per call or retry
    assert any("unavailable" in r.getMessage() for r in lines)
    assert any("back after" in r.getMessage() for r in lines)


async def test_a_refused_row_loses_only_its_own_call() -> None:
    outbox = FlakyOutbox()
    outbox.refuse = {"call-record:c42"}
    writer = CallRecordWriter(outbox, FAST)
    await writer.start()
    for i in range(300):
        writer.submit(ended(i))
    await _drain(writer)
    await writer.aclose()
    assert len(outbox.rows) == 299 and "call-record:c42" not in outbox.rows
    assert (writer.queued, writer.refused, writer.duplicates) == (299, 1, 0)


async def test_an_unbuildable_call_is_counted_and_the_rest_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbox = FlakyOutbox()
    writer = CallRecordWriter(outbox, FAST)
    await writer.start()
    for i in range(200):  # a start time no datetime can hold: no record can be built
        writer.submit(ended(i, started_at=1e13) if i % 2 else ended(i))
    await _drain(writer)
    await writer.aclose()
    assert len(outbox.rows) == 100 and writer.unbuildable == 100
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert 1 <= len(tracebacks) <= 2  # one per summary interval, not one per call
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) <= 4


async def test_records_pending_at_shutdown_are_counted_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbox = FlakyOutbox()
    outbox.down = True
    writer = CallRecordWriter(outbox, RecordWriterSettings(close_timeout=0.1, retry_min=0.01))
    await writer.start()
    for i in range(1_000):
        writer.submit(ended(i))
    await writer.aclose()
    shutdown = [r.getMessage() for r in caplog.records if "at shutdown" in r.getMessage()]
    assert shutdown == ["CRM: 1000 call records not written to the outbox at shutdown:"
                        " outbox database timed out"]  # fmt: skip


async def test_an_idle_writer_still_summarises_and_keeps_writing_later_calls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbox = FlakyOutbox()
    writer = CallRecordWriter(outbox, FAST)
    await writer.start()
    writer.submit(ended(1, started_at=1e13))  # unbuildable: a problem for the summary line
    writer.submit(ended(2))
    await _drain(writer)
    await asyncio.sleep(0.4)  # idle for two summary intervals, no call ends meanwhile
    summaries = [r.getMessage() for r in caplog.records if "1 unbuildable" in r.getMessage()]
    assert len(summaries) == 1  # logged while idle, not waiting for the next call
    writer.submit(ended(3))
    await _drain(writer)
    await writer.aclose()
    assert sorted(outbox.rows) == ["call-record:c2", "call-record:c3"]
    assert not [r for r in caplog.records if "task failed" in r.getMessage()]

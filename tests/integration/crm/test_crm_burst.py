"""Issue 9, defect 3: CRM call records dropped under a burst, and /healthz lying under load.

A burst of ~56,000 short calls overflowed the 10,000-event queue in front of the CRM outbox:
~36,000 calls never got a CRM record, each logged its own ERROR line, and ``/healthz`` said Redis
was unreachable (redis-py's pool of 100 connections raises ``MaxConnectionsError``, a
``ConnectionError``, to a health PING when the workload holds them all). Real PostgreSQL, Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from callserver.core.events import CallAbandoned, CallEnded, CallSnapshot
from callserver.health_checks import build_health_checks
from callserver.web.health import CHECK_TIMEOUT, ComponentHealth, collect
from crm_bridge.models import PatientCard
from crm_bridge.outbox import Outbox
from crm_bridge.service import CrmService

CALLS = 50_000


class NoCrm:
    async def lookup(self, phone: str) -> PatientCard | None:
        return None

    async def deliver(self, kind: str, data: Mapping[str, Any], *, idempotency_key: str) -> None:
        return None


def ended(i: int) -> CallEnded:
    call = CallSnapshot(
        id=f"1795{i:07d}.1", linkedid=f"1795{i:07d}.1", direction="inbound", state="ended",
        caller="+7916" + f"{i:07d}", caller_name="Иванов", did="74951234567", ad_source="2gis",
        queue="reception", agent="PJSIP/op101", agent_name="Анна", started_at=1.8e9 + i,
        answered_at=1.8e9 + i + 3, ended_at=1.8e9 + i + 20, talk_seconds=17.0,
    )  # fmt: skip
    return CallEnded(1.8e9 + i + 20, call, 17.0, "caller", "Normal Clearing")


async def test_a_burst_of_50000_finished_calls_gives_every_call_exactly_one_outbox_row(
    crm_pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    service = CrmService(NoCrm(), Outbox(crm_pool))
    await service.start()
    caplog.set_level(logging.INFO)
    started = time.perf_counter()
    for i in range(CALLS):  # as fast as the bus can hand them over: nothing in between
        service.on_event(ended(i))
    for i in range(0, CALLS, 50):  # the same calls again (a resync): still one record each
        service.on_event(CallAbandoned(1.8e9 + i + 20, ended(i).call))
    handed_over = time.perf_counter() - started
    health_during = await collect({"noop": _ok})  # the loop still answers mid-burst
    async with asyncio.timeout(90):
        await service.records.wait_written()
    written = time.perf_counter() - started
    await service.aclose()
    rows = await crm_pool.fetchval("SELECT count(*) FROM crm_outbox WHERE kind = 'call_record'")
    keys = await crm_pool.fetchval("SELECT count(DISTINCT idempotency_key) FROM crm_outbox")
    assert rows == keys == CALLS
    assert service.records.queued == CALLS and service.records.duplicates == CALLS // 50
    assert service.records.pending_peak >= CALLS  # accounted, not dropped
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    backlog = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(backlog) <= 1 + written / 10  # one summary per 10 s at most, none per call
    assert health_during["status"] == "ok"
    print(f"\n{CALLS} finished calls handed over in {handed_over:.2f} s, all in the outbox"
          f" after {written:.2f} s ({CALLS / written:,.0f} records/s)")  # fmt: skip


async def _ok() -> ComponentHealth:
    return ComponentHealth("ok")


async def test_redis_health_is_true_while_the_workload_holds_the_whole_pool(
    redis_url: str, redis_prefix: str
) -> None:
    client = aioredis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
    server = SimpleNamespace(config=None, redis=client)
    checks = build_health_checks(server, {})  # type: ignore[arg-type]
    size = client.connection_pool.max_connections
    hold = [
        asyncio.create_task(client.blpop([f"{redis_prefix}never"], timeout=1.5))
        for _ in range(size)
    ]
    try:
        await asyncio.sleep(0.2)  # every pooled connection is now blocked in BLPOP
        with pytest.raises(RedisConnectionError):  # what the old check met: Redis "down"
            await client.ping()
        started = time.perf_counter()
        body = await collect({"redis": checks["redis"]})
        assert time.perf_counter() - started < 1.0
        redis = body["components"]["redis"]  # type: ignore[index]
        assert redis["status"] == "ok", redis
    finally:
        await asyncio.gather(*hold, return_exceptions=True)
        await client.aclose()


async def test_a_hanging_check_is_reported_slow_by_name_within_a_second() -> None:
    async def hangs() -> ComponentHealth:
        await asyncio.sleep(30)
        return ComponentHealth("ok")

    started = time.perf_counter()
    body = await collect({"redis": hangs, "ami": _ok})
    assert time.perf_counter() - started < 1.0
    components: dict[str, dict[str, Any]] = body["components"]  # type: ignore[assignment]
    assert components["redis"]["status"] == "degraded"
    assert f"redis: no answer within {CHECK_TIMEOUT} s" in components["redis"]["detail"]
    assert components["ami"]["status"] == "ok" and body["status"] == "degraded"
    assert components["event_loop"]["status"] == "ok"

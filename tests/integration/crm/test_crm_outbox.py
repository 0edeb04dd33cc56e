"""Outbox: at-least-once delivery with idempotency keys, two workers, dead letters, leases."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callserver.core.events import CallAbandoned, CallEnded, CallSnapshot
from callserver.web.middlewares import error_middleware
from crm_bridge.errors import CrmRejected, CrmUnavailable
from crm_bridge.http import crm_routes
from crm_bridge.models import PatientCard
from crm_bridge.outbox import Outbox, OutboxSettings, OutboxWorker
from crm_bridge.rest_adapter import RestCrm, RestSettings
from crm_bridge.service import CrmService
from crm_bridge.wire import call_record_from_event
from tests.integration.crm.conftest import SECRET, ClinicCrm

FAST = OutboxSettings(
    max_attempts=50,
    backoff_base=0.05,
    backoff_max=0.3,
    lease=5.0,
    batch=5,
    poll_interval=0.05,
    delivery_timeout=1.0,
)


def snapshot(i: int, state: str = "ended") -> CallSnapshot:
    return CallSnapshot(
        id=f"1700000000.{i}",
        linkedid=f"1700000000.{i}",
        direction="inbound",
        state=state,  # type: ignore[arg-type]
        caller=f"8 (916) 000-{i:04d}",
        caller_name="",
        did="+74950000001",
        ad_source="yandex",
        queue="reception",
        agent="PJSIP/op101" if state == "ended" else "",
        agent_name="Оператор",
        started_at=1_700_000_000.0 + i,
        queued_at=1_700_000_001.0 + i,
        answered_at=1_700_000_005.0 + i if state == "ended" else None,
        ended_at=1_700_000_060.0 + i,
        variables=(("ROUTE_REASON", "coordinator"),),
    )


def record(i: int) -> Any:
    return call_record_from_event(CallEnded(at=1_700_000_060.0 + i, call=snapshot(i)))


class CountingCrm:
    """In-process CrmBackend: counts deliveries per key; ``down`` → CrmUnavailable."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delivered: Counter[str] = Counter()
        self.down = False
        self.reject = False
        self.delay = delay

    async def lookup(self, phone: str) -> PatientCard | None:
        return None

    async def deliver(self, kind: str, data: Mapping[str, Any], *, idempotency_key: str) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reject:
            raise CrmRejected(message="HTTP 422", status=422)
        if self.down:
            raise CrmUnavailable(message="connection refused")
        self.delivered[idempotency_key] += 1


async def wait_for(predicate: Any, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_crm_down_then_back_every_record_arrives_exactly_once(
    crm_pool: asyncpg.Pool, fresh_pg_dsn: str, clinic_crm: ClinicCrm
) -> None:
    rest = RestCrm(
        RestSettings(
            lookup_url_template=clinic_crm.base + "/lookup?phone={phone}",
            webhook_url=clinic_crm.base + "/webhook",
            hmac_secret=SECRET,
            push_timeout=1.0,
        )
    )
    outbox = Outbox(crm_pool, FAST)
    service = CrmService(rest, outbox)
    await clinic_crm.stop()  # the clinic's CRM is down: connection refused
    for i in range(40):
        await service.push_call_record(record(i))
    await service.push_call_record(record(7))  # a repeated push of the same call: no new row
    pool_b = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=4)
    assert pool_b is not None
    workers = [
        OutboxWorker(outbox, service.delivery_target(), worker_id="instance-a"),
        OutboxWorker(Outbox(pool_b, FAST), service.delivery_target(), worker_id="instance-b"),
    ]
    try:
        for w in workers:
            await w.start()
        await asyncio.sleep(0.6)
        clinic_crm.mode = "error"  # back, but answering 503 for a while
        await clinic_crm.start()
        await asyncio.sleep(0.6)
        clinic_crm.mode = "up"
        await wait_for(lambda: _delivered(outbox, 40))
    finally:
        for w in workers:
            await w.aclose()
        await rest.aclose()
        await pool_b.close()
    assert clinic_crm.refused_while_error > 0
    assert clinic_crm.bad_signatures == 0
    assert len(clinic_crm.accepted) == 40
    assert set(clinic_crm.accepted.values()) == {1}
    body = clinic_crm.bodies["call-record:1700000000.7"]
    assert body["type"] == "call_record"
    assert body["data"]["phone"] == "+79160000007"
    assert body["data"]["routing_reason"] == "coordinator"
    assert [t["event"] for t in body["data"]["timeline"]] == [
        "started", "queued", "answered", "ended",
    ]  # fmt: skip
    async with crm_pool.acquire() as conn:
        attempts = await conn.fetchval("SELECT sum(attempts) FROM crm_outbox")
    assert attempts > 40  # it really was retried


async def _delivered(outbox: Outbox, n: int) -> bool:
    return (await outbox.stats())["delivered"] == n


async def test_two_instances_on_one_outbox_never_deliver_a_row_twice(
    crm_pool: asyncpg.Pool, fresh_pg_dsn: str
) -> None:
    target = CountingCrm(delay=0.002)
    outbox_a = Outbox(crm_pool, FAST)
    for i in range(300):
        await outbox_a.enqueue("call_outcome", {"call_id": str(i)}, idempotency_key=f"k{i}")
    pool_b = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=4)
    assert pool_b is not None
    outbox_b = Outbox(pool_b, FAST)
    workers = [
        OutboxWorker(ob, target, worker_id=f"{name}{n}")
        for name, ob in (("a", outbox_a), ("b", outbox_b))
        for n in range(3)
    ]
    try:
        for w in workers:
            await w.start()
        await wait_for(lambda: _delivered(outbox_a, 300))
    finally:
        for w in workers:
            await w.aclose()
        await pool_b.close()
    assert len(target.delivered) == 300
    assert set(target.delivered.values()) == {1}
    assert sum(w.delivered for w in workers) == 300
    assert sum(1 for w in workers if w.delivered) >= 2  # the work really was shared
    assert await outbox_a.purge_delivered(0.0) == 300  # retention
    assert (await outbox_a.stats())["delivered"] == 0


async def test_dead_letter_after_n_attempts_then_retry_through_the_api(
    crm_pool: asyncpg.Pool,
) -> None:
    settings = OutboxSettings(
        max_attempts=3, backoff_base=0.01, backoff_max=0.02, lease=2.0, batch=10,
        poll_interval=0.02, delivery_timeout=0.5,
    )  # fmt: skip
    target = CountingCrm()
    target.down = True
    outbox = Outbox(crm_pool, settings)
    service = CrmService(target, outbox)
    for i in range(2):
        await service.push_call_record(record(i))
    worker = OutboxWorker(outbox, target, worker_id="w")
    app = web.Application(middlewares=[error_middleware])
    app.add_routes(crm_routes(crm=service, outbox=outbox))
    async with TestClient(TestServer(app)) as client:
        await worker.start()
        try:
            await wait_for(lambda: _dead(outbox, 2))
            resp = await client.get("/api/crm/outbox/dead")
            assert resp.status == 200
            dead = (await resp.json())["dead"]
            assert [d["attempts"] for d in dead] == [3, 3]
            assert all("crm-unavailable" in d["last_error"] for d in dead)
            assert {d["kind"] for d in dead} == {"call_record"}
            target.down = False
            resp = await client.post(f"/api/crm/outbox/dead/{dead[0]['id']}/retry")
            assert (await resp.json()) == {"retried": 1}
            await wait_for(lambda: _delivered(outbox, 1))
            assert (await outbox.stats())["dead"] == 1
            resp = await client.post("/api/crm/outbox/dead/retry")
            assert (await resp.json()) == {"retried": 1}
            await wait_for(lambda: _delivered(outbox, 2))
            stats = await (await client.get("/api/crm/outbox")).json()
            assert stats == {"pending": 0, "delivering": 0, "delivered": 2, "dead": 0}
        finally:
            await worker.aclose()
    assert set(target.delivered.values()) == {1}


async def _dead(outbox: Outbox, n: int) -> bool:
    return (await outbox.stats())["dead"] == n


async def test_rejected_push_is_dead_lettered_at_once(crm_pool: asyncpg.Pool) -> None:
    target = CountingCrm()
    target.reject = True
    outbox = Outbox(crm_pool, FAST)
    await CrmService(target, outbox).push_call_record(
        call_record_from_event(CallAbandoned(at=1.0, call=snapshot(1, "abandoned")))
    )
    worker = OutboxWorker(outbox, target, worker_id="w")
    assert await worker.run_once() == 1
    [dead] = await outbox.list_dead()
    assert dead.attempts == 1
    assert "crm-rejected" in dead.last_error
    assert dead.payload["state"] == "abandoned"


async def test_expired_lease_is_claimed_again_and_the_stale_worker_loses_it(
    crm_pool: asyncpg.Pool,
) -> None:
    settings = OutboxSettings(lease=0.3, delivery_timeout=0.1, backoff_base=0.01)
    outbox = Outbox(crm_pool, settings)
    await outbox.enqueue("call_outcome", {"call_id": "1"}, idempotency_key="k1")
    [first] = await outbox.claim("crashed", 10)
    assert await outbox.claim("other", 10) == []  # leased: not claimable
    await asyncio.sleep(0.4)
    [second] = await outbox.claim("other", 10)
    assert second.id == first.id and second.attempts == 2
    assert not await outbox.mark_delivered(first)
    assert await outbox.mark_delivered(second)
    assert (await outbox.stats())["delivered"] == 1


async def test_worker_shutdown_hands_unfinished_rows_back(crm_pool: asyncpg.Pool) -> None:
    outbox = Outbox(crm_pool, FAST)
    for i in range(3):
        await outbox.enqueue("call_outcome", {"call_id": str(i)}, idempotency_key=f"k{i}")
    worker = OutboxWorker(outbox, CountingCrm(delay=5.0), worker_id="w")
    await worker.start()
    await wait_for(lambda: _delivering(outbox))
    await worker.aclose()
    assert (await outbox.stats())["pending"] == 3
    async with crm_pool.acquire() as conn:
        assert await conn.fetchval("SELECT max(attempts) FROM crm_outbox") == 0
    assert len(await outbox.claim("next", 10)) == 3  # claimable at once, no lease to wait out


async def _delivering(outbox: Outbox) -> bool:
    return (await outbox.stats())["delivering"] == 3


async def test_slow_batch_never_delivers_a_row_after_its_lease_ran_out(
    crm_pool: asyncpg.Pool, fresh_pg_dsn: str
) -> None:
    """Bug: a worker delivered a claimed batch one row after the other without looking at the
    lease, so with a slow CRM the last rows were sent after the lease expired, while another
    instance had claimed and was sending them too (each row twice, at the same time)."""
    settings = OutboxSettings(lease=1.0, delivery_timeout=0.4, batch=8, poll_interval=0.05)
    target = CountingCrm(delay=0.25)
    outbox_a = Outbox(crm_pool, settings)
    for i in range(8):
        await outbox_a.enqueue("call_outcome", {"call_id": str(i)}, idempotency_key=f"k{i}")
    pool_b = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=4)
    assert pool_b is not None
    worker_a = OutboxWorker(outbox_a, target, worker_id="a")
    worker_b = OutboxWorker(Outbox(pool_b, settings), target, worker_id="b")
    try:
        first_round = asyncio.create_task(worker_a.run_once())
        await wait_for(lambda: _delivering_n(outbox_a, 8))
        await worker_b.start()
        assert await first_round == 8
        await wait_for(lambda: _delivered(outbox_a, 8))
        await asyncio.sleep(0.3)  # a second sender still in flight would be counted by now
    finally:
        await worker_b.aclose()
        await pool_b.close()
    assert len(target.delivered) == 8
    assert target.delivered == Counter({f"k{i}": 1 for i in range(8)})
    assert worker_a.delivered < 8 and worker_b.delivered > 0  # the rest was handed over


async def _delivering_n(outbox: Outbox, n: int) -> bool:
    return (await outbox.stats())["delivering"] == n


async def test_cancelling_a_worker_shutdown_is_not_swallowed(crm_pool: asyncpg.Pool) -> None:
    """Bug: aclose() suppressed every CancelledError while waiting for its task (which hands its
    rows back for up to 1 s), so cancelling the shutdown itself (a shutdown deadline) was lost:
    the caller went on as if nothing had happened."""
    outbox = Outbox(crm_pool, FAST)
    await outbox.enqueue("call_outcome", {"call_id": "1"}, idempotency_key="k1")
    worker = OutboxWorker(outbox, CountingCrm(delay=5.0), worker_id="w")
    await worker.start()
    await wait_for(lambda: _delivering_n(outbox, 1))
    gate = asyncio.Event()
    real_release = outbox.release

    async def slow_release(items: Any) -> int:  # the hand-back is in flight when we cancel
        gate.set()
        await asyncio.sleep(0.3)
        return await real_release(items)

    outbox.release = slow_release  # type: ignore[method-assign]
    closing = asyncio.create_task(worker.aclose())
    await asyncio.wait_for(gate.wait(), 2.0)
    closing.cancel()
    try:
        await closing
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancellation of aclose() was swallowed")

"""Routing's live state from the Redis live hashes (written by RedisLiveState), and the fallback
to the in-process model when Redis is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from callserver.core.bus import EventBus
from callserver.core.events import AgentSnapshot, AgentStatusChanged, CallQueued, CallSnapshot
from callserver.core.model import LiveModel
from callserver.core.model.records import MemberInfo
from callserver.store.live_state import LiveStateSettings, RedisLiveState
from routing.live_model import LiveModelState, SharedLiveState
from routing.models import RouteRequest
from routing.overrides import OverrideBook
from routing.reload import RulesHolder
from routing.service import RoutingPorts, RoutingService
from tests.integration.test_routing_agi import EXAMPLE, MONDAY_NOON_MSK

pytestmark = pytest.mark.integration


def agent(iface: str, queues: tuple[str, ...], status: str, in_call: bool = False) -> AgentSnapshot:
    return AgentSnapshot(iface, iface, queues, status, False, "", in_call, 0, 0.0)


@pytest.fixture
async def published(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisLiveState]:
    client = aioredis.from_url(redis_url)
    live = RedisLiveState(client, redis_prefix)
    now = time.time()
    for a in (
        agent("PJSIP/op101", ("reception",), "not_inuse"),
        agent("PJSIP/op102", ("reception", "doctors"), "inuse", in_call=True),
        agent("PJSIP/op103", ("doctors",), "unavailable"),
    ):
        live.submit(AgentStatusChanged(at=now, agent=a))
    call = CallSnapshot("c1", "c1", "inbound", "queued", "+79160000000", "", "74951234567",
                        "source-a", "doctors", "", "", now - 40, queued_at=now - 30)  # fmt: skip
    live.submit(CallQueued(at=now, call=call, queue="doctors", position=1))
    await live.start()
    for _ in range(100):
        if len(await live.live_agents()) == 3:
            break
        await asyncio.sleep(0.02)
    try:
        yield live
    finally:
        await live.aclose()
        await client.aclose()


async def test_snapshot_from_redis_live_hashes(published: RedisLiveState) -> None:
    snap = await SharedLiveState(published).snapshot(["reception", "doctors"])
    reception, doctors = snap.queue("reception"), snap.queue("doctors")
    assert reception.logged_in == {"PJSIP/op101", "PJSIP/op102"}
    assert reception.free == {"PJSIP/op101"} and reception.est_wait_s == 0.0
    assert doctors.logged_in == {"PJSIP/op102"} and doctors.free == frozenset()
    assert doctors.est_wait_s is not None and 29 <= doctors.est_wait_s <= 40


async def test_redis_down_falls_back_to_in_process_model() -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    shared = SharedLiveState(RedisLiveState(dead, "x:", LiveStateSettings(op_timeout=0.2)))
    model = LiveModel(EventBus())
    model.member_status(MemberInfo("reception", "PJSIP/op101", status="not_inuse"), at=1.0)
    service = RoutingService(
        RulesHolder(EXAMPLE), OverrideBook(),
        RoutingPorts(live=shared, live_fallback=LiveModelState(model)),
        clock=lambda: MONDAY_NOON_MSK,
    )  # fmt: skip
    service.rules.load_initial()
    try:
        d = await service.route(RouteRequest("u1", did="74957654321"))
        assert (d.queue, d.mode) == ("reception", "queue")
        assert "live_unknown" not in d.reasons and "no_agents" not in d.reasons
        assert service.live_failures == 1
    finally:
        await dead.aclose()

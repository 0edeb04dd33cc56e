"""RedisLiveState against a real Redis (a per-test key prefix), an unreachable port, a server
that never answers, and a proxy that is cut and restored."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from callserver.core.events import AgentSnapshot, AgentStatusChanged, ModelResynced
from callserver.store.errors import LiveStateError
from callserver.store.live_state import LiveStateSettings, RedisLiveState
from devtools.services import free_port
from tests.integration.store_support import T0, TcpProxy, lifecycle, wait_until

FAST = LiveStateSettings(op_timeout=0.3, close_timeout=2.0, ended_ttl=30, retry_min=0.02,
                         retry_max=0.1)  # fmt: skip


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
    yield c
    await c.aclose()


def agent(status: str) -> AgentStatusChanged:
    snap = AgentSnapshot("PJSIP/op101", "Оператор 101", ("reception",), status, False, "",
                         status == "inuse", 3, T0)  # fmt: skip
    return AgentStatusChanged(at=T0, agent=snap)


async def test_events_are_published_and_live_hashes_follow_the_call(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    live = RedisLiveState(client, redis_prefix, FAST)
    assert 0 < await live.ping() < FAST.op_timeout
    pubsub = client.pubsub()
    await pubsub.subscribe(live.channel)
    assert (await pubsub.get_message(timeout=2.0) or {}).get("type") == "subscribe"
    await live.start()
    events = lifecycle("live-1")
    for event in events[:3]:
        live.submit(event)
    await wait_until(lambda: live.published == 3)
    received: list[dict[str, Any]] = []
    while len(received) < 3:
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2.0)
        assert msg is not None, "published event not received"
        received.extend(json.loads(line) for line in msg["data"].splitlines())
    assert [m["type"] for m in received] == ["CallStarted", "CallQueued", "AgentRinging"]
    assert received[2]["call_id"] == "live-1" and received[2]["agent"] == "PJSIP/op101"
    assert received[2]["call"]["caller_name"] == "Иванова Мария"

    calls = await live.live_calls()
    assert [(c["id"], c["state"], c["agent"]) for c in calls] == [
        ("live-1", "agent_ringing", "PJSIP/op101")
    ]
    assert await client.hget(f"{redis_prefix}call:live-1", "state") == b"agent_ringing"

    for event in events[3:]:
        live.submit(event)
    await live.aclose()
    assert await live.live_calls() == []
    ttl = await client.ttl(f"{redis_prefix}call:live-1")
    assert 0 < ttl <= 30  # the ended call's hash expires shortly
    await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py 8


async def test_agent_hash_and_resync_closed_calls(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    live = RedisLiveState(client, redis_prefix, FAST)
    await live.start()
    live.submit(agent("ringing"))
    live.submit(agent("inuse"))
    live.submit(lifecycle("gone-1")[0])
    await wait_until(lambda: live.published == 3)
    assert [c["id"] for c in await live.live_calls()] == ["gone-1"]
    live.submit(ModelResynced(at=T0 + 5, closed_calls=("gone-1",), live_calls=0))
    await live.aclose()
    assert await live.live_calls() == []
    agents = await live.live_agents()
    assert [(a["interface"], a["status"], a["in_call"]) for a in agents] == [
        ("PJSIP/op101", "inuse", True)
    ]
    assert await client.hget(f"{redis_prefix}agent:PJSIP/op101", "status") == b"inuse"


async def test_unreachable_redis_never_blocks_the_bus(
    redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    live = RedisLiveState(dead, redis_prefix, FAST)
    await live.start()
    events = [e for i in range(2000) for e in lifecycle(f"d{i}", T0 + i)]
    started = time.monotonic()
    for event in events:
        live.submit(event)
    submit_seconds = time.monotonic() - started
    assert submit_seconds < 1.0, submit_seconds  # 10,000 submits: no I/O on the caller's path
    await wait_until(lambda: live.errors >= 3, within=10)
    assert not live.connected and live.published == 0 and live.dropped > 0
    started = time.monotonic()
    await live.aclose()
    assert time.monotonic() - started < FAST.close_timeout + 0.5
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not per event
    with pytest.raises(LiveStateError):
        await live.live_calls()
    with pytest.raises(LiveStateError):
        await live.ping()
    await dead.aclose()


async def test_a_redis_that_never_answers_is_bounded_by_the_deadline(redis_prefix: str) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
    live = RedisLiveState(silent, redis_prefix, FAST)
    await live.start()
    live.submit(lifecycle("silent-1")[0])
    await wait_until(lambda: live.errors >= 1, within=5)
    started = time.monotonic()
    with pytest.raises(LiveStateError):
        await live.live_calls()
    assert time.monotonic() - started < FAST.op_timeout + 0.5
    await live.aclose()
    await silent.aclose()
    for writer in accepted:
        writer.transport.abort()
    server.close()
    await server.wait_closed()


async def test_state_written_during_an_outage_converges_when_redis_returns(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callserver.store.live_state")
    parts = urlsplit(redis_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    await proxy.restore()
    proxied = aioredis.from_url(
        f"redis://127.0.0.1:{proxy.port}{parts.path}", socket_connect_timeout=0.2
    )
    live = RedisLiveState(proxied, redis_prefix, FAST)
    await live.start()
    ended, ongoing = lifecycle("outage-ended"), lifecycle("outage-ongoing", T0 + 30)
    live.submit(ended[0])
    await wait_until(lambda: live.connected)
    await proxy.cut()
    for event in ended[1:] + ongoing[:2]:
        live.submit(event)
    await wait_until(lambda: live.errors >= 2)
    await proxy.restore()
    await wait_until(lambda: live.connected, within=10)
    calls = await live.live_calls()
    assert [(c["id"], c["state"]) for c in calls] == [("outage-ongoing", "queued")]
    await live.aclose()
    await proxied.aclose()
    await proxy.cut()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Redis unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1


async def test_an_idle_live_state_reports_connectivity_without_any_event(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    live = RedisLiveState(client, redis_prefix, FAST)
    await live.start()
    await wait_until(lambda: live.connected, within=5)
    assert live.published == 0
    await live.aclose()


async def test_a_call_closed_by_resync_keeps_its_final_state_in_its_hash(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    """Bug: the model publishes CallEnded and then ModelResynced for a call a resync closes;
    ModelResynced threw away the pending ended snapshot, so the call's hash kept saying
    "answered" until it expired."""
    live = RedisLiveState(client, redis_prefix, FAST)
    await live.start()
    events = lifecycle("resync-closed-1")
    for event in events[:4]:
        live.submit(event)
    await wait_until(lambda: live.published == 4)
    assert await client.hget(f"{redis_prefix}call:resync-closed-1", "state") == b"answered"
    live.submit(events[4])  # CallEnded, then in the same resync pass:
    live.submit(ModelResynced(at=T0 + 20, closed_calls=("resync-closed-1",), live_calls=0))
    await live.aclose()
    assert await live.live_calls() == []
    assert await client.hget(f"{redis_prefix}call:resync-closed-1", "state") == b"ended"
    assert 0 < await client.ttl(f"{redis_prefix}call:resync-closed-1") <= 30


async def test_a_burst_of_calls_is_written_in_bounded_round_trips(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    """Each round trip writes at most ``states_per_trip`` calls (one long one held the event
    loop, and every screen-pop behind it, for up to 100 ms); all of them arrive, listed once,
    and a live call's later changes keep it listed with its TTL."""
    live = RedisLiveState(client, redis_prefix, LiveStateSettings(states_per_trip=7,
                                                                  flush_interval=0.01))
    await live.start()
    try:
        for i in range(50):
            for event in lifecycle(f"burst-{i}")[:2]:  # started, queued: live
                live.submit(event)
        want, members = {f"burst-{i}" for i in range(50)}, set()
        async with asyncio.timeout(5):
            while members != want:  # the states follow the events, 7 calls per round trip
                await asyncio.sleep(0.02)
                members = {m.decode() for m in await client.smembers(f"{redis_prefix}calls")}
        live.submit(lifecycle("burst-0")[2])  # a later change of a listed call
        await wait_until(lambda: live.published == 101)
        state = await client.hget(f"{redis_prefix}call:burst-0", "state")
        assert state is not None and state.decode() != "queued"
        assert await client.sismember(f"{redis_prefix}calls", "burst-0")
        assert await client.ttl(f"{redis_prefix}call:burst-0") > 3600
    finally:
        await live.aclose()

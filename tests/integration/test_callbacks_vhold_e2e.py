"""Virtual hold end to end: pbxsim (its own process: the queue's exit key, the
``[callbacks-vhold]`` AGI, the ``callbacks-vhold-slot`` Local channel queued at a position) +
CallServer with every plugin + real PostgreSQL and Redis.

Scenario ``callbacks-vhold``: A, B, C queue for the one operator; B presses 1, accepts and
hangs up; D joins later. The order op101 serves them must be A, B (called back), C, D."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

import aiohttp
import pytest

from callserver.app import CallServer
from callserver.config import load_config
from callserver.core.events import CallAnswered, CallQueued, DomainEvent
from callserver.plugins import load_plugins, order
from devtools.services import free_port
from tests.integration.test_callbacks_e2e import callbacks_env, rows
from tests.integration.test_end_to_end import wait_for
from tests.pbxsim_proc import run_pbxsim

pytestmark = pytest.mark.integration
A, B, C, D = "79030000001", "79030000002", "79030000003", "79030000004"


@contextlib.asynccontextmanager
async def watched_server(env: Mapping[str, str], seen: list[DomainEvent]
                         ) -> AsyncIterator[CallServer]:  # fmt: skip
    """CallServer whose bus is watched from before its first AMI event."""
    config = load_config(None, env=dict(env))
    srv = await CallServer.create(config, order(load_plugins(config)))
    kept = (CallAnswered, CallQueued)
    srv.bus.subscribe(lambda e: seen.append(e) if isinstance(e, kept) else None)
    await srv.start()
    try:
        async with asyncio.timeout(30):
            await srv.database.ready.wait()
        yield srv
    finally:
        await srv.aclose()


async def test_virtual_hold_keeps_the_callers_place(
    fresh_pg_dsn: str, redis_url: str, redis_prefix: str
) -> None:
    seen: list[DomainEvent] = []

    def served() -> list[str]:
        return [e.call.caller for e in seen if isinstance(e, CallAnswered)]

    async with run_pbxsim("callbacks-vhold", speed=4.0, agi_port=free_port()) as pbx:
        env = callbacks_env(pbx, fresh_pg_dsn, redis_url, redis_prefix)
        async with watched_server(env, seen) as srv:
            await wait_for(lambda: len(served()) >= 4 or None, within=60.0)
            sql = "SELECT * FROM callback_jobs WHERE state = 'done'"
            job = (await wait_for(lambda: rows(fresh_pg_dsn, sql), within=30.0))[0]
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{srv.config.http.port}/metrics"
                metrics = await (await http.get(url)).text()
    assert served() == [A, B, C, D]
    # the placeholder joined the queue at B's place, ahead of C who was waiting
    slot = next(e for e in seen if isinstance(e, CallQueued) and e.call.direction == "outbound")
    assert slot.call.caller == B and slot.position == 1
    c_queued = next(e for e in seen if isinstance(e, CallQueued) and e.call.caller == C)
    assert c_queued.at < slot.at
    assert job["phone"] == "+" + B and job["reason"] == "virtual_hold"
    assert job["outcome"] == "reached" and job["priority"] == 1000 and job["missed_count"] == 1
    attempts = await rows(fresh_pg_dsn, "SELECT * FROM callback_attempts")
    assert [(a["job_id"], a["operator"], a["result"], a["cause"]) for a in attempts] == [
        (job["id"], f"Local/{B}@callbacks-vhold-slot/n", "answered", "ANSWER")]
    assert attempts[0]["uniqueid"] == slot.call.id
    assert "callserver_callbacks_vhold_accepted_total 1" in metrics
    assert "callserver_callbacks_vhold_placed_total 1" in metrics
    # nobody else became a callback: A, C, D were answered, B's hang-up was no miss
    assert len(await rows(fresh_pg_dsn, "SELECT * FROM callback_jobs")) == 1

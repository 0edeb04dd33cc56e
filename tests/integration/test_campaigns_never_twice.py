"""No patient is dialled twice: after ``kill -9`` of the instance mid-campaign (a real
process, SIGKILL while its calls are in the dialog) and with two instances sharing one
campaign. Real PostgreSQL, pbxsim answering over real AMI; the dials are counted on pbxsim's
side (``DialBegin`` per number, seen by a separate AMI client)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from campaigns.dialog import Input
from campaigns.models import parse_settings
from campaigns.scripted import ScriptedConversation
from campaigns.store import CampaignStore
from campaigns.targets import reminder_targets
from tests.integration.campaigns_support import (
    ROOT,
    Clock,
    Dials,
    ami_client,
    make_runner,
    migrate,
    seed_day,
    start_pbx,
    wait_done,
)  # fmt: skip

pytestmark = pytest.mark.integration
MSK = ZoneInfo("Europe/Moscow")
VISIT_DAY = datetime(2026, 12, 3, 0, 0, tzinfo=MSK)
NOW = datetime(2026, 12, 2, 17, 0, tzinfo=MSK)


class NoHook:
    async def send(self, event: dict[str, object]) -> None:
        return None


@pytest.fixture
async def pool(fresh_pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=12)
    await migrate(p)
    yield p
    await p.close()


async def _campaign(pool: asyncpg.Pool, n: int, **settings: Any) -> int:
    patients = [(f"+7999100{i:04d}", f"Пациент {i}", 9 * 60 + 5 * i) for i in range(n)]
    await seed_day(pool, VISIT_DAY, patients)
    s = parse_settings({"clinic_name": "Улыбка", "rules": ["24h"], "max_attempts": 3,
                        "window": "08:00-21:00", **settings})  # fmt: skip
    targets = await reminder_targets(pool, s, date_from=VISIT_DAY.date(),
                                     date_to=VISIT_DAY.date() + timedelta(days=1),
                                     now=datetime(2026, 12, 1, 12, 0, tzinfo=MSK))  # fmt: skip
    store = CampaignStore(pool)
    cid = await store.create("never twice", "reminder", s, "test")
    assert await store.add_targets(cid, targets) == n
    await store.set_state(cid, "running")
    return cid


async def _dialing(pool: asyncpg.Pool) -> int:
    n: int = await pool.fetchval("SELECT count(*) FROM campaign_dials WHERE result = 'dialing'")
    return n


async def test_kill_9_mid_campaign_never_dials_a_patient_twice(
    pool: asyncpg.Pool, fresh_pg_dsn: str
) -> None:
    cid = await _campaign(pool, 6)
    dials = Dials()
    pbx = await start_pbx(50.0, answer=1.0, noanswer=0.0, busy=0.0, congestion=0.0)
    watcher = await ami_client(pbx, dials)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONTRACEMALLOC"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.campaigns_worker", fresh_pg_dsn,
        str(pbx.ami_port), "doomed", str(NOW.timestamp()), "3", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    clock = Clock(NOW)
    runner = None
    try:
        async with asyncio.timeout(20):
            while await _dialing(pool) < 3 or len(dials.begun) < 3:  # noqa: ASYNC110 - polls PG
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # its calls are answered and in the dialog now
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        first = set(dials.begun)
        ami = await ami_client(pbx, Dials())
        yes = ScriptedConversation({}, default=[Input("dtmf", "1")])
        runner, _ = make_runner(pool, ami, yes, clock, instance="successor", channels=3,
                                webhook=NoHook())  # fmt: skip
        await runner.start()
        await asyncio.sleep(1.0)  # the dead instance's dials still hold the trunk's channels
        assert set(dials.begun) == first
        clock.set(NOW + timedelta(minutes=16))  # its leases expire
        runner.wake()
        async with asyncio.timeout(20):
            while len(dials.begun) < 6:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        # the interrupted three were not redialled today: they wait for tomorrow
        assert all(n == 1 for n in dials.begun.values()), dials.begun
        unknown = await pool.fetch("SELECT phone FROM campaign_dials WHERE result = 'unknown'")
        assert {r["phone"].lstrip("+") for r in unknown} == first
        clock.set(datetime(2026, 12, 3, 8, 0, tzinfo=MSK))  # the next morning
        runner.wake()
        await wait_done(pool, cid)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if runner is not None:
            await runner.aclose()
        await watcher.aclose()
        await pbx.aclose()
    per_day = await pool.fetch(
        "SELECT phone, call_day, count(*) AS n FROM campaign_dials "
        "GROUP BY 1, 2 HAVING count(*) > 1"
    )
    assert per_day == []
    # every channel of the trunk is free again (the recovered dials' too)
    assert await pool.fetchval("SELECT count(dial_id) FROM campaign_channels") == 0
    assert sorted(dials.begun.values()) == [1, 1, 1, 2, 2, 2]  # the three again, the next day
    assert (
        await pool.fetchval("SELECT count(*) FROM crm_appointments WHERE status = 'confirmed'") == 6
    )


async def test_two_instances_share_a_campaign_without_double_dials(pool: asyncpg.Pool) -> None:
    cid = await _campaign(pool, 40)
    dials = Dials()
    pbx = await start_pbx(100.0, answer=0.8, noanswer=0.1, busy=0.1, congestion=0.0)
    watcher = await ami_client(pbx, dials)
    clock = Clock(NOW)
    amis, runners = [], []
    try:
        for name in ("east", "west"):
            ami = await ami_client(pbx, Dials())
            conversation = ScriptedConversation({}, default=[Input("dtmf", "1")], think_s=0.02)
            runner, _ = make_runner(pool, ami, conversation, clock, instance=name, channels=6,
                                    own=4, ring_s=10.0, webhook=NoHook())  # fmt: skip
            amis.append(ami)
            runners.append(runner)
        await asyncio.gather(*(r.start() for r in runners))
        async with asyncio.timeout(30):
            while len(dials.begun) < 40:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    finally:
        for r in runners:
            await r.aclose()
        for a in amis:
            await a.aclose()
        await watcher.aclose()
        await pbx.aclose()
    assert dials.doubles() == 0 and len(dials.begun) == 40
    assert dials.max_live <= 6  # the trunk's limit holds over both instances
    rows = await pool.fetch(
        "SELECT instance, count(*) AS n FROM campaign_dials WHERE campaign_id = $1 GROUP BY 1", cid
    )
    by_instance = {r["instance"]: r["n"] for r in rows}
    assert set(by_instance) == {"east", "west"} and sum(by_instance.values()) == 40

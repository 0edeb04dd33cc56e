"""The claim (``campaign_claim``, real PostgreSQL): one campaign call per patient per day over
campaigns, the trunk's channel limit over instances, the clinic's channel limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from campaigns.models import CampaignSettings, Target, parse_settings
from campaigns.store import CampaignStore
from tests.integration.campaigns_support import migrate

pytestmark = pytest.mark.integration
MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=MSK)
LEASE = timedelta(minutes=15)


@pytest.fixture
async def store(fresh_pg_dsn: str) -> AsyncIterator[CampaignStore]:
    pool = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=4)
    await migrate(pool)
    yield CampaignStore(pool)
    await pool.close()


def target(n: int, *, key: str = "", clinic: str = "") -> Target:
    phone = f"+7999200{n:04d}"
    return Target(phone=phone, patient_key=key or f"tel:{phone}", next_attempt_at=NOW,
                  clinic=clinic, rule=f"r{n}")  # fmt: skip


async def running(store: CampaignStore, settings: CampaignSettings, *targets: Target) -> int:
    cid = await store.create("c", "custom", settings, "test")
    await store.add_targets(cid, list(targets))
    await store.set_state(cid, "running")
    return cid


async def test_one_campaign_call_per_patient_per_day_over_campaigns(store: CampaignStore) -> None:
    s = parse_settings({})
    first = await running(store, s, target(1, key="p:42"))
    await running(store, s, target(2, key="p:42"))  # the same patient, another phone
    claimed = await store.claim(now=NOW, instance="a", trunk="trunk", channels=10, want=10,
                                campaigns=await store.running(), lease=LEASE)  # fmt: skip
    assert [c.campaign_id for c in claimed] == [first]
    waiting = await store._pool.fetchrow(
        "SELECT last_result, next_attempt_at, state FROM campaign_targets WHERE rule = 'r2'"
    )
    assert waiting is not None and waiting["state"] == "pending"
    assert waiting["last_result"] == "called_today"
    assert waiting["next_attempt_at"] == datetime(2026, 12, 3, 0, 0, tzinfo=MSK)


async def test_the_trunk_limit_holds_over_instances(store: CampaignStore) -> None:
    await running(store, parse_settings({}), *(target(n) for n in range(6)))
    campaigns = await store.running()
    a = await store.claim(now=NOW, instance="a", trunk="trunk", channels=4, want=3,
                          campaigns=campaigns, lease=LEASE)  # fmt: skip
    b = await store.claim(now=NOW, instance="b", trunk="trunk", channels=4, want=3,
                          campaigns=campaigns, lease=LEASE)  # fmt: skip
    other = await store.claim(now=NOW, instance="b", trunk="trunk2", channels=4, want=3,
                              campaigns=campaigns, lease=LEASE)  # fmt: skip
    assert (len(a), len(b)) == (3, 1)
    assert len(other) == 2  # another trunk has its own channels
    assert len({c.target.phone for c in a + b + other}) == 6


async def test_the_clinic_limit(store: CampaignStore) -> None:
    s = parse_settings({"clinic_channels": 1})
    await running(store, s, target(1, clinic="north"), target(2, clinic="north"),
                  target(3, clinic="south"))  # fmt: skip
    claimed = await store.claim(now=NOW, instance="a", trunk="trunk", channels=10, want=10,
                                campaigns=await store.running(), lease=LEASE)  # fmt: skip
    assert sorted(c.target.clinic for c in claimed) == ["north", "south"]

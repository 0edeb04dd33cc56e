"""The Redis lookup cache against real Redis: invalidation racing a lookup in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from crm_bridge.cache import RedisLookupCache
from crm_bridge.models import PatientCard
from crm_bridge.service import CrmService

PHONE = "+79161234567"
OLD = PatientCard(id="P-1", full_name="Иванова Анна", phones=(PHONE,), last_operator="PJSIP/op101")
NEW = PatientCard(id="P-1", full_name="Иванова Анна", phones=(PHONE,), last_operator="PJSIP/op104")


class GatedCrm:
    """A CRM whose lookup reads the card, then waits for ``gate`` before answering."""

    def __init__(self, card: PatientCard) -> None:
        self.card = card
        self.read = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()

    async def lookup(self, phone: str) -> PatientCard | None:
        card = self.card
        self.read.set()
        await self.gate.wait()
        return card

    async def deliver(self, kind: str, data: Mapping[str, Any], *, idempotency_key: str) -> None:
        raise AssertionError("not used")


class NoOutbox:
    async def enqueue(self, kind: str, data: Mapping[str, Any], *, idempotency_key: str) -> bool:
        raise AssertionError("not used")

    async def enqueue_many(self, items: Sequence[tuple[str, Mapping[str, Any], str]]) -> int:
        raise AssertionError("not used")


async def test_a_lookup_in_flight_during_a_write_does_not_cache_the_old_card(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    """Bug: a lookup that read the card before a write put it into the cache after the write's
    invalidation, so the old card (old last operator → wrong sticky routing) was served for
    the whole TTL."""
    cache = RedisLookupCache(redis_client, prefix=redis_prefix, ttl=60, negative_ttl=60)
    crm = GatedCrm(OLD)
    service = CrmService(crm, NoOutbox(), cache, lookup_timeout=2.0)
    crm.gate.clear()
    in_flight = asyncio.create_task(service.lookup(PHONE))
    await asyncio.wait_for(crm.read.wait(), 2.0)
    crm.card = NEW  # the write (e.g. a delivered call record) ...
    await cache.invalidate(PHONE)  # ... and its invalidation
    crm.gate.set()
    assert await in_flight == OLD  # that caller got what was read before the write
    assert await service.lookup(PHONE) == NEW
    assert await service.lookup(PHONE) == NEW
    assert await cache.get(PHONE) in ((True, NEW), (False, None))


async def test_cache_still_serves_hits_and_unknown_numbers(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    cache = RedisLookupCache(redis_client, prefix=redis_prefix, ttl=60, negative_ttl=60)
    assert await cache.get(PHONE) == (False, None)
    await cache.put(PHONE, OLD)
    assert await cache.get(PHONE) == (True, OLD)
    await cache.invalidate(PHONE)
    assert await cache.get(PHONE) == (False, None)
    await cache.put("+79990001122", None)
    assert await cache.get("+79990001122") == (True, None)

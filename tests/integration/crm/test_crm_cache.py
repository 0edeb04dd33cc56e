"""The Redis lookup cache against real Redis: invalidation racing a lookup in flight."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis

from crm_bridge.cache import RedisLookupCache
from crm_bridge.errors import CrmTimeout
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


class SlowProxy:
    """Forwards to Redis, holding replies back ``delay`` seconds; counts connections."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.delay = 0.0
        self.accepted = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_r, up_w = await asyncio.open_connection(*self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, slow: bool) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    if slow and self.delay:
                        await asyncio.sleep(self.delay)
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_w, False), pipe(up_r, writer, True))


async def test_a_late_redis_reply_keeps_its_connection(redis_url: str, redis_prefix: str) -> None:
    """Bug: a lookup over its deadline cancelled the Redis command, redis-py dropped the
    connection, and every late lookup under load paid for a new one (more CPU, more lateness)."""
    url = urlsplit(redis_url)
    proxy = SlowProxy(url.hostname or "127.0.0.1", url.port or 6379)
    port = await proxy.start()
    client = aioredis.from_url(f"redis://127.0.0.1:{port}{url.path}", socket_timeout=2.0)
    try:
        cache = RedisLookupCache(client, prefix=redis_prefix, timeout=0.05)
        await cache.put(PHONE, OLD)
        proxy.delay = 0.3
        for _ in range(3):
            with contextlib.suppress(CrmTimeout):
                await cache.get(PHONE)
                raise AssertionError("a reply held back 0.3 s beat a 0.05 s deadline")
        proxy.delay = 0.0
        await asyncio.sleep(0.5)  # the late replies arrive and free their connections
        for _ in range(5):
            assert await cache.get(PHONE) == (True, OLD)
        assert proxy.accepted <= 3  # the timed-out commands' connections were reused
    finally:
        await client.aclose()
        assert proxy.server is not None
        proxy.server.close()

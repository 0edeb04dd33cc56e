"""The web form's rate limiter on a real Redis; with Redis gone it lets requests through."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from callbacks.errors import TooManyRequests
from callbacks.webform import RateLimiter
from devtools.services import free_port

pytestmark = pytest.mark.integration


async def test_fixed_window_per_key(redis_url: str, redis_prefix: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        limiter = RateLimiter(client, redis_prefix)
        for _ in range(3):
            await limiter.hit("phone", "+79161234567", 3, 60)
        with pytest.raises(TooManyRequests) as info:
            await limiter.hit("phone", "+79161234567", 3, 60)
        assert 1 <= info.value.details["retry_after_s"] <= 60
        await limiter.hit("phone", "+79161234568", 3, 60)  # another number: its own window
        assert limiter.limited == 1
        keys = [k.decode() async for k in client.scan_iter(f"{redis_prefix}callbacks:rl:*")]
        assert len(keys) == 2 and not any("7916" in k for k in keys)  # numbers are hashed
    finally:
        await client.aclose()


async def test_redis_down_lets_requests_through() -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        limiter = RateLimiter(client, "x:")
        for _ in range(5):
            await limiter.hit("phone", "+79161234567", 1, 60)
        assert limiter.unlimited == 5 and limiter.limited == 0
    finally:
        await client.aclose()

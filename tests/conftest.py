"""Shared fixtures: real PostgreSQL and Redis, each test run in its own throwaway namespace.

Uses the servers on 127.0.0.1:5432/6379 when they answer, else starts private instances
(devtools.services). Every test session gets its own database (dropped at the end) and its own
Redis key prefix (deleted at the end).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from devtools.services import Services, ensure_services


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    svc = ensure_services()
    yield svc
    svc.stop()


def _replace_db(dsn: str, db: str) -> str:
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{db}"


@pytest.fixture(scope="session")
def pg_dsn(services: Services) -> Iterator[str]:
    """DSN of a fresh database created for this test session and dropped after it."""
    name = f"cstest_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(services.pg_dsn, timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(services.pg_dsn, timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    yield _replace_db(services.pg_dsn, name)
    asyncio.run(drop())


@pytest.fixture
async def fresh_pg_dsn(services: Services) -> AsyncIterator[str]:
    """DSN of a database created for this one test (an empty schema)."""
    name = f"cstest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(services.pg_dsn, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield _replace_db(services.pg_dsn, name)
    conn = await asyncpg.connect(services.pg_dsn, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def redis_url(services: Services) -> str:
    return services.redis_url


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"cstest:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()

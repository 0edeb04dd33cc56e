"""Fixtures for crm_bridge integration tests: a migrated per-test database, a Redis client, and
``ClinicCrm`` — a real aiohttp server standing in for a clinic's CRM, counting what it receives."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web

import crm_bridge
from callserver.store.migrate import MigrationSource, apply_migrations
from crm_bridge.signing import HEADER, verify

SECRET = "test-secret-äö"
CRM_MIGRATIONS = [MigrationSource("crm_bridge", Path(crm_bridge.__file__).parent / "migrations")]


@pytest.fixture
async def crm_pool(fresh_pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(fresh_pg_dsn, min_size=1, max_size=8, timeout=10)
    assert pool is not None
    async with pool.acquire() as conn:
        await apply_migrations(conn, CRM_MIGRATIONS)
    yield pool
    await pool.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


class ClinicCrm:
    """The clinic's CRM: ``GET /lookup?phone=`` and ``POST /webhook`` (HMAC checked).

    ``mode``: ``up``, ``error`` (503 to everything). ``stop()`` / ``start()`` take the listening
    socket away and bring it back on the same port (connection refused in between).
    """

    def __init__(self) -> None:
        self.cards: dict[str, dict[str, Any]] = {}
        self.mode = "up"
        self.lookup_delay = 0.0
        self.lookups = 0
        self.accepted: Counter[str] = Counter()
        self.bodies: dict[str, dict[str, Any]] = {}
        self.bad_signatures = 0
        self.refused_while_error = 0
        self.port = 0
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_get("/lookup", self._lookup)
        app.router.add_post("/webhook", self._webhook)
        self._app = app

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if not self.port:
            server = site._server
            assert isinstance(server, asyncio.Server)
            self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _lookup(self, request: web.Request) -> web.StreamResponse:
        self.lookups += 1
        if self.lookup_delay:
            await asyncio.sleep(self.lookup_delay)
        if self.mode == "error":
            return web.Response(status=503)
        card = self.cards.get(request.query.get("phone", ""))
        if card is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(card)

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not verify(SECRET, request.headers.get(HEADER, ""), body):
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.mode == "error":
            self.refused_while_error += 1
            return web.Response(status=503)
        payload = json.loads(body)
        key = payload["idempotency_key"]
        assert request.headers["Idempotency-Key"] == key
        if key in self.bodies:
            return web.Response(status=409)
        self.accepted[key] += 1
        self.bodies[key] = payload
        return web.json_response({"ok": True})


@pytest.fixture
async def clinic_crm() -> AsyncIterator[ClinicCrm]:
    crm = ClinicCrm()
    await crm.start()
    yield crm
    await crm.stop()

"""The read/admin side of PostgreSQL for the composition root: a pool, migrations applied on
start (retried in the background while PostgreSQL is down), and readers for the API.

The call *writer* has its own connection (``store.call_writer``) and buffers while this is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from callserver.config import DatabaseConfig
from callserver.errors import CallserverError
from callserver.store.call_repository import CallRepository
from callserver.store.migrate import MigrationError, apply_migrations
from callserver.store.postgres import create_pool

log = logging.getLogger(__name__)

RETRY_MIN = 0.5
RETRY_MAX = 15.0


class DatabaseUnavailable(CallserverError):
    error_id = "database-unavailable"


class Database:
    def __init__(self, config: DatabaseConfig) -> None:
        self._config = config
        self.pool: asyncpg.Pool | None = None
        self.ready = asyncio.Event()
        self.last_error = ""
        self._task: asyncio.Task[None] | None = None
        self._ready_hooks: list[Callable[[], Awaitable[None]]] = []

    async def open(self) -> asyncpg.Pool:
        """Create the shared pool without connecting yet (``min_size=0``: no I/O here), so the
        components that need it can be built while PostgreSQL is still down."""
        if self.pool is None:
            self.pool = await asyncpg.create_pool(
                self._config.dsn, min_size=0, max_size=10, timeout=5.0, command_timeout=10.0
            )
        return self.pool

    async def start(self) -> None:
        """Migrate in the background (retrying while PostgreSQL is down); the ``on_ready``
        hooks run once the schema is in place."""
        await self.open()
        self._task = asyncio.create_task(self._connect_loop(), name="database-migrate")

    def on_ready(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` once the schema is in place. Register before ``start()``."""
        self._ready_hooks.append(hook)

    async def _connect_loop(self) -> None:
        delay = RETRY_MIN
        pool = await self.open()
        while True:
            try:
                async with asyncio.timeout(60.0), pool.acquire() as conn:
                    await apply_migrations(conn)
                break
            except (MigrationError, OSError, TimeoutError, asyncpg.PostgresError) as exc:
                self.last_error = str(exc)
                log.warning("PostgreSQL not ready (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
        self.last_error = ""
        self.ready.set()
        log.info("PostgreSQL ready, schema up to date")
        for hook in self._ready_hooks:
            try:
                await hook()
            except Exception:
                log.exception("start-up step after migrations failed: %r", hook)

    async def migrate_once(self) -> list[str]:
        """Apply migrations now (``callserver migrate``); raises when PostgreSQL is down."""
        pool = await create_pool(self._config.dsn, min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                return await apply_migrations(conn)
        finally:
            await pool.close()

    def require_pool(self) -> asyncpg.Pool:
        """The pool once the schema is in place; DatabaseUnavailable (503) before that."""
        if self.pool is None or not self.ready.is_set():
            raise DatabaseUnavailable(message="database not ready yet", reason=self.last_error)
        return self.pool

    def calls_reader(self) -> _LazyCalls:
        return _LazyCalls(self)

    async def ping(self) -> bool:
        pool = self.require_pool()
        async with asyncio.timeout(2.0):
            return bool(await pool.fetchval("SELECT 1"))

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task})  # propagates our own cancellation, not the task's
        if self.pool is not None:
            await self.pool.close()
            self.pool = None


class _LazyCalls:
    """``CallsReader`` over a pool that may not exist yet (503 until it does)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        return await CallRepository(self._db.require_pool()).recent(limit)

    async def get(self, call_id: str) -> dict[str, Any] | None:
        return await CallRepository(self._db.require_pool()).get(call_id)

"""The read/admin side of PostgreSQL for the composition root: a pool, migrations applied on
start (retried in the background while PostgreSQL is down), and readers for the API.

The call *writer* has its own connection (``store.call_writer``) and buffers while this is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import asyncpg

from callserver.config import DatabaseConfig
from callserver.core.backoff import Backoff
from callserver.core.tasks import cancel_and_wait
from callserver.errors import CallserverError, ErrorCategory
from callserver.store.call_repository import CallRepository
from callserver.store.migrate import MigrationError, MigrationSource, apply_migrations
from callserver.store.postgres import NoResetConnection, create_pool, ping

log = logging.getLogger(__name__)

RETRY_MIN = 0.5
RETRY_MAX = 15.0


class DatabaseUnavailable(CallserverError):
    error_id = "database-unavailable"
    category = ErrorCategory.UNAVAILABLE


class Database:
    def __init__(self, config: DatabaseConfig, sources: Sequence[MigrationSource]) -> None:
        """``sources``: every migrations folder to apply, in order (core first)."""
        self._config = config
        self._sources = list(sources)
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
                self._config.dsn, min_size=0, max_size=10, timeout=5.0, command_timeout=10.0,
                connection_class=NoResetConnection,
            )  # fmt: skip
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
        backoff = Backoff(RETRY_MIN, RETRY_MAX)
        pool = await self.open()
        while True:
            delay = backoff.next()
            try:
                async with asyncio.timeout(60.0), pool.acquire() as conn:
                    await apply_migrations(conn, self._sources)
                break
            except (MigrationError, OSError, TimeoutError, asyncpg.PostgresError) as exc:
                self.last_error = str(exc)
                log.warning("PostgreSQL not ready (%s); retrying in %.1f s", exc, delay)
            except Exception as exc:  # e.g. a DSN asyncpg refuses: say so, never die silently
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("PostgreSQL unusable (%s; check [database] dsn); retrying in %.1f s",
                          self.last_error, delay)  # fmt: skip
            await asyncio.sleep(delay)
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
                return await apply_migrations(conn, self._sources)
        finally:
            await pool.close()

    def require_pool(self) -> asyncpg.Pool:
        """The pool once the schema is in place; DatabaseUnavailable (503) before that."""
        if self.pool is None or not self.ready.is_set():
            raise DatabaseUnavailable(message="database not ready yet", reason=self.last_error)
        return self.pool

    def calls_reader(self, annotators: Sequence[CallAnnotator] = ()) -> _LazyCalls:
        """Calls for the API; each annotator adds its key (routing's ``routing`` record …)."""
        return _LazyCalls(self, annotators)

    async def ping(self) -> float:
        """``SELECT 1`` latency in seconds; raises DatabaseUnavailable / StoreError."""
        return await ping(self.require_pool())

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        if self.pool is not None:
            await self.pool.close()
            self.pool = None


class CallAnnotator(Protocol):
    key: str

    async def annotate(self, linkedids: Sequence[str]) -> dict[str, object]: ...


class _LazyCalls:
    """``CallsReader`` over a pool that may not be ready yet (503 until it is), with the call
    tracking record (DID, ad source, campaign, decision, reasons, rule version) attached."""

    def __init__(self, database: Database, annotators: Sequence[CallAnnotator]) -> None:
        self._db = database
        self._annotators = list(annotators)

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        calls = await CallRepository(self._db.require_pool()).recent(limit)
        return await self._attach(calls)

    async def get(self, call_id: str) -> dict[str, Any] | None:
        call = await CallRepository(self._db.require_pool()).get(call_id)
        return None if call is None else (await self._attach([call]))[0]

    async def _attach(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not calls:
            return calls
        linkedids = [str(c["linkedid"]) for c in calls]
        for annotator in self._annotators:
            values = await annotator.annotate(linkedids)
            for call in calls:
                call[annotator.key] = values.get(str(call["linkedid"]))
        return calls

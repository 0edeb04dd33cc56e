"""Keeps ``dashboards_call_facts`` (the marketer reports' rollup) current.

Every ``interval`` seconds one instance (a PostgreSQL advisory lock: several callserver nodes
may run this) upserts the facts of inbound calls finished since the watermark, marks missed
calls called back / reached by later calls, and links calls to the appointments they led to.
The watermark is the previous run's start minus ``margin`` seconds (rows written a little late
by the call writer are still seen; every step is idempotent). A call row written more than
``margin`` late (e.g. after a long PostgreSQL outage) is picked up by ``rebuild``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from callserver.core.tasks import cancel_and_wait
from dashboards import rollup_sql as q

log = logging.getLogger(__name__)
LOCK = 0x64617368  # "dash"
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class Rollup:
    """Component (after the database). ``run_once`` is what the loop and tests call."""

    def __init__(self, pool: asyncpg.Pool, *, interval: float, margin: float,
                 callback_window_hours: float, booking_window_hours: float,
                 timezone: str = "Europe/Moscow", timeout: float = 300.0) -> None:  # fmt: skip
        self._pool = pool
        self._interval, self._margin, self._timeout = interval, margin, timeout
        self._callback_hours = callback_window_hours
        self._booking_hours = booking_window_hours
        self._tz = timezone
        self._task: asyncio.Task[None] | None = None
        self.runs = 0
        self.rows = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="dashboards-rollup")

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
                log.warning("dashboards rollup failed: %s", type(exc).__name__)
            await asyncio.sleep(self._interval)

    async def rebuild(self) -> int:
        """Forget the watermark and roll up every call again."""
        async with asyncio.timeout(self._timeout):
            await self._pool.execute("DELETE FROM dashboards_rollup_state")
        return await self.run_once()

    async def run_once(self) -> int:
        """One pass; returns the facts upserted (0 when another instance holds the lock).
        Raises asyncpg errors / TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(self._timeout), self._pool.acquire() as conn, \
                conn.transaction():  # fmt: skip
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK):
                return 0
            started: datetime = await conn.fetchval("SELECT now()")
            mark = await conn.fetchval(
                "SELECT watermark FROM dashboards_rollup_state WHERE name = 'facts'")
            since = NEVER if mark is None else mark - timedelta(seconds=self._margin)
            rows = await self._pass(conn, since, started)
            await conn.execute(
                "INSERT INTO dashboards_rollup_state (name, watermark) VALUES ('facts', $1)"
                " ON CONFLICT (name) DO UPDATE SET watermark = EXCLUDED.watermark", started)
        self.runs += 1
        self.rows += rows
        return rows

    async def _pass(self, conn: asyncpg.Connection | PoolConnectionProxy, since: datetime,
                    started: datetime) -> int:  # fmt: skip
        tables = await conn.fetchrow(
            "SELECT to_regclass('route_decisions') IS NOT NULL AS d,"
            " to_regclass('crm_appointments') IS NOT NULL AS c")
        assert tables is not None
        status = await conn.execute(q.facts_sql(bool(tables["d"])), since, started, self._tz)
        await conn.execute(q.CALLED_BACK, since, self._callback_hours)
        await conn.execute(q.REACHED, since, self._callback_hours)
        if tables["c"]:
            await conn.execute(q.BOOKED_NEW_FACTS, since, self._booking_hours, started)
            await conn.execute(q.BOOKED_NEW_APPOINTMENTS, since, self._booking_hours)
            await conn.execute(q.VISIT_STATUS, since)
        return int(status.split()[-1])

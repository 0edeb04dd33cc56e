"""The retention job: deletes personal data older than its ``[retention]`` period.

An owned component (``start``/``aclose``) started once the database is ready: it runs at once,
then every ``interval_hours``. Rows go in batches of ``batch_size`` (one short transaction
each); files (recordings, rotated logs) are removed in a worker thread; cached patient cards in
Redis
get their time-to-live cut to ``crm_cache_days``. Tables of plugins that are not
installed are skipped. A failed run is logged and counted; the next run tries again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from callserver.core.tasks import cancel_and_wait
from privacy.config import DAY, RetentionSettings
from privacy.sql import card_key_prefix, column_of, delete_in_batches, existing_tables, ident
from privacy.subject import audit

log = logging.getLogger(__name__)

KINDS = ("call_records", "call_events", "recordings", "transcripts", "crm_cache", "outbox",
         "logs")  # fmt: skip
REDIS_TIMEOUT = 30.0
"""Seconds the Redis part of one run may take."""


@dataclass(frozen=True)
class Rule:
    kind: str
    table: str
    columns: tuple[str, ...]
    """Time columns, the first present one is used."""
    extra: str = ""


RULES = (
    Rule("call_records", "calls", ("ended_at",)),  # COALESCE(ended_at, started_at), below
    Rule("call_records", "route_decisions", ("decided_at",)),
    Rule("call_records", "crm_call_records", ("received_at",)),
    Rule("call_records", "crm_call_outcomes", ("received_at",)),
    Rule("call_records", "crm_callback_requests", ("created_at",)),
    Rule("call_records", "crm_appointment_requests", ("created_at",)),
    Rule("call_records", "desk_call_outcomes", ("updated_at", "created_at")),
    Rule("call_records", "dashboards_call_facts", ("started_at",)),
    Rule("call_events", "call_events", ("at",)),
    Rule("transcripts", "ivr_transcripts", ("ended_at", "created_at", "started_at")),
    Rule("outbox", "crm_outbox", ("updated_at",), "status IN ('delivered', 'dead')"),
)


def _days(settings: RetentionSettings, kind: str) -> int:
    days: int = getattr(settings, f"{kind}_days")
    if kind == "call_events" and settings.call_records_days:  # never outlive the call record
        days = min(days, settings.call_records_days) if days else settings.call_records_days
    return days


def purge_files(folder: str, older_than: float) -> int:
    """Delete regular files under ``folder`` (recursively, links not followed) last modified
    before ``older_than`` (POSIX seconds). Blocking: run it in a thread. Returns files deleted."""
    if not folder or not os.path.isdir(folder):
        return 0
    deleted = 0
    for path in Path(folder).rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < older_than:
                path.unlink()
                deleted += 1
        except OSError as exc:  # a file that went away or is not ours: the rest still go
            log.warning("retention: %s not deleted: %s", path.name, exc.strerror)
    return deleted


class RetentionJob:
    """See the module doc. ``deleted`` counts rows/files/keys per kind since start."""

    def __init__(
        self, settings: RetentionSettings, *, pool: asyncpg.Pool, redis: aioredis.Redis,
        redis_prefix: str, clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self._settings, self._pool, self._redis = settings, pool, redis
        self._cache_match = card_key_prefix(redis_prefix) + "*"
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.deleted: Counter[str] = Counter({k: 0 for k in KINDS})
        self.runs = 0
        self.failures = 0
        self.last_run_at = 0.0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="privacy-retention")

    async def aclose(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except (asyncpg.PostgresError, OSError, aioredis.RedisError, TimeoutError) as exc:
                self.failures += 1
                log.warning("retention run failed (%s: %s); next run in %.0f h",
                            type(exc).__name__, exc, self._settings.interval_hours)  # fmt: skip
            except Exception:  # a bug must not end retention for good: log it, run next time
                self.failures += 1
                log.exception("retention run crashed; next run in %.0f h",
                              self._settings.interval_hours)  # fmt: skip
            await asyncio.sleep(self._settings.interval_hours * 3600.0)

    async def run_once(self) -> dict[str, int]:
        """One pass over every kind; returns what it deleted per kind (also audited)."""
        now = self._clock()
        counts: Counter[str] = Counter()
        for kind, n in (await self._tables(now)).items():
            counts[kind] += n
        for kind, folder in (("recordings", self._settings.recordings_dir),
                             ("logs", self._settings.log_dir)):  # fmt: skip
            if (days := _days(self._settings, kind)) and folder:
                counts[kind] += await asyncio.to_thread(purge_files, folder, now - days * DAY)
        if days := self._settings.crm_cache_days:
            async with asyncio.timeout(REDIS_TIMEOUT):
                counts["crm_cache"] += await self._cap_cache(int(days * DAY))
        self.deleted.update(counts)
        self.runs += 1
        self.last_run_at = now
        result = {k: v for k, v in counts.items() if v}
        async with self._pool.acquire() as conn:
            if await existing_tables(conn, ["privacy_audit"]):
                await audit(conn, action="retention", actor="retention-job", counts=result)
        log.info("retention run: %s", ", ".join(f"{k} {v}" for k, v in result.items()) or
                 "nothing older than its period")  # fmt: skip
        return result

    async def _tables(self, now: float) -> Counter[str]:
        counts: Counter[str] = Counter()
        async with self._pool.acquire() as conn:
            present = await existing_tables(conn, [r.table for r in RULES])
            plans = []
            for rule in RULES:
                days = _days(self._settings, rule.kind)
                column = await column_of(conn, rule.table, rule.columns) if days else None
                if rule.table in present and column is not None:
                    plans.append((rule, column, days))
        for rule, column, days in plans:
            moment = f"COALESCE({ident(column)}, started_at)" if rule.table == "calls" \
                else ident(column)  # fmt: skip
            where = f"{moment} < to_timestamp($1)" + (f" AND {rule.extra}" if rule.extra else "")
            counts[rule.kind] += await delete_in_batches(
                self._pool, rule.table, where, (now - days * DAY,), self._settings.batch_size
            )
        return counts

    async def _cap_cache(self, max_ttl: int) -> int:
        """Cached cards without a TTL or with a longer one get ``max_ttl`` seconds."""
        capped = 0
        async for key in self._redis.scan_iter(match=self._cache_match, count=500):
            ttl = await self._redis.ttl(key)
            if ttl == -1 or ttl > max_ttl:
                await self._redis.expire(key, max_ttl)
                capped += 1
        return capped

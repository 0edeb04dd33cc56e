"""PostgreSQL adapters of the routing ports (the only routing module that imports asyncpg).

``PgDecisionLog`` buffers call tracking records in memory and writes them in batches from its own
task, so the call path never waits for the database; when the database is down the buffer keeps
up to ``buffer_limit`` records (oldest dropped first, counted in ``dropped``) and is written when
it comes back. ``PgOverrideStore`` keeps overrides and their audit trail. Library errors become
``StoreError`` (``callserver.store.postgres.store_errors``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from callserver.core.backoff import Backoff
from callserver.core.tasks import cancel_and_wait
from callserver.core.text import clean_text
from callserver.logs import escape_control
from callserver.store.errors import StoreError, StoreQueryError
from callserver.store.postgres import store_errors
from routing.models import AuditEntry, Decision, Override, RouteRecord, Tracking
from routing.rules import RuleSet

log = logging.getLogger(__name__)

_COLUMNS = (
    "uniqueid, linkedid, origin, did, ad_source, campaign, paid, clinic, queue, mode, priority,"
    " preferred_agent, sticky_seconds, language, skill, reasons, rule_version, profile_status,"
    " patient_id, elapsed_ms, decided_at"
)
_INSERT = (
    f"INSERT INTO route_decisions ({_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,"
    "$14,$15,$16,$17,$18,$19,$20,$21) ON CONFLICT (uniqueid) DO UPDATE SET"
    " (queue, mode, priority, preferred_agent, sticky_seconds, reasons, rule_version,"
    " decided_at) = (EXCLUDED.queue, EXCLUDED.mode, EXCLUDED.priority, EXCLUDED.preferred_agent,"
    " EXCLUDED.sticky_seconds, EXCLUDED.reasons, EXCLUDED.rule_version, EXCLUDED.decided_at)"
)


def _row(r: RouteRecord) -> tuple[Any, ...]:
    d, t = r.decision, r.decision.tracking
    return (
        r.uniqueid, r.linkedid, r.origin, t.did, t.source, t.campaign, t.paid, t.clinic, d.queue,
        d.mode, d.priority, d.preferred_agent, d.sticky_seconds, d.language, d.skill,
        list(d.reasons), d.rule_version, r.profile_status, r.patient_id, r.elapsed_ms,
        r.decided_at,
    )  # fmt: skip


def _record(row: asyncpg.Record) -> RouteRecord:
    tracking = Tracking(row["did"], row["ad_source"], row["campaign"], row["paid"], row["clinic"])
    decision = Decision(
        queue=row["queue"], mode=row["mode"], priority=row["priority"],
        preferred_agent=row["preferred_agent"], sticky_seconds=row["sticky_seconds"],
        language=row["language"], skill=row["skill"], reasons=tuple(row["reasons"]),
        rule_version=row["rule_version"], tracking=tracking,
    )  # fmt: skip
    return RouteRecord(row["uniqueid"], row["linkedid"], row["origin"], decision,
                       row["decided_at"], row["profile_status"], row["patient_id"],
                       row["elapsed_ms"])  # fmt: skip


SEQ_MEMORY = 10_000
"""Calls whose decision's place in the write order is remembered (for ``wait_written``)."""


class PgDecisionLog:
    """``DecisionLog`` on PostgreSQL. ``flush_interval`` and ``timeout`` are seconds."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        buffer_limit: int = 100_000,
        timeout: float = 5.0,
    ) -> None:
        self._pool = pool
        self._batch = batch_size
        self._interval = flush_interval
        self._timeout = timeout
        self._buffer: deque[RouteRecord] = deque(maxlen=buffer_limit)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._seq = self._done = 0
        """Records buffered so far / records that left the buffer (both counted from start)."""
        self._seq_of: dict[str, int] = {}
        self._backoff = Backoff(max(flush_interval, 0.05), 5.0)
        self.written = 0
        self.dropped = 0

    def record(self, record: RouteRecord) -> None:
        """Buffer ``record`` and wake the writer at once: a decision reaches PostgreSQL while
        the route script is still setting its variables (a few ms), so a ``kill -9`` right
        after a call was routed loses at most the decisions of that instant; under load the
        records that arrive during one write go together in the next."""
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
            self._done += 1  # the oldest falls out of the buffer unwritten: it is settled too
        self._buffer.append(record)
        self._seq += 1
        self._seq_of[record.uniqueid] = self._seq
        while len(self._seq_of) > SEQ_MEMORY:
            self._seq_of.pop(next(iter(self._seq_of)))
        self._wake.set()

    async def wait_written(self, uniqueid: str, within: float) -> bool:
        """Wait at most ``within`` seconds until the record of ``uniqueid`` left the buffer
        (written, or refused and dropped); True when it did. The route script waits for
        this before it ends, so a ``kill -9`` after a call was routed loses no decision."""
        seq = self._seq_of.get(uniqueid)
        if seq is None:
            return True
        try:
            async with asyncio.timeout(within):
                while self._done < seq:
                    self._settled.clear()
                    await self._settled.wait()
        except TimeoutError:
            return False
        return True

    async def get(self, uniqueid: str) -> RouteRecord | None:
        """By uniqueid, else the newest by linkedid. Raises StoreError."""
        with store_errors("route decision"):
            async with asyncio.timeout(self._timeout):
                row = await self._pool.fetchrow(
                    f"SELECT {_COLUMNS} FROM route_decisions WHERE uniqueid = $1 OR linkedid = $1"
                    " ORDER BY (uniqueid = $1) DESC, decided_at DESC LIMIT 1",
                    uniqueid,
                )
        return _record(row) if row is not None else None

    async def tracking_for(self, linkedids: Sequence[str]) -> dict[str, dict[str, object]]:
        """The newest tracking record per call (by linkedid), JSON-ready: for ``/api/calls``
        and a call's detail. Unknown ids are absent. Raises StoreError."""
        if not linkedids:
            return {}
        with store_errors("route decisions of calls"):
            async with asyncio.timeout(self._timeout):
                rows = await self._pool.fetch(
                    f"SELECT DISTINCT ON (linkedid) {_COLUMNS} FROM route_decisions"
                    " WHERE linkedid = ANY($1::text[]) ORDER BY linkedid, decided_at DESC",
                    list(linkedids),
                )
        return {row["linkedid"]: _record(row).to_dict() for row in rows}

    async def flush(self) -> int:
        """Write what is buffered now; returns the number written. Raises StoreError when the
        database is unavailable (the records stay buffered). A batch the server refuses
        (StoreQueryError) is written row by row and a refused row is dropped (``dropped``):
        one bad record must not hold back every record after it."""
        total = 0
        while self._buffer:
            batch = [self._buffer[i] for i in range(min(self._batch, len(self._buffer)))]
            try:
                await self._write(batch)
                written = len(batch)
            except StoreQueryError:
                written = await self._write_one_by_one(batch)
            for _ in batch:
                self._buffer.popleft()
            self._done += len(batch)
            self._settled.set()
            total += written
            self.written += written
        return total

    async def _write(self, batch: Sequence[RouteRecord]) -> None:
        with store_errors("write route decisions"):
            async with asyncio.timeout(self._timeout):
                await self._pool.executemany(_INSERT, [_row(r) for r in batch])

    async def _write_one_by_one(self, batch: Sequence[RouteRecord]) -> int:
        written = 0
        for record in batch:
            try:
                await self._write([record])
            except StoreQueryError as exc:
                self.dropped += 1
                log.error("call tracking record of %s dropped, refused: %s",
                          escape_control(record.uniqueid), exc)  # fmt: skip
            else:
                written += 1
        return written

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="routing-decision-log")

    async def aclose(self) -> None:
        """Stop the writer after a last flush attempt (bounded by ``timeout``)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        try:
            await self.flush()
        except StoreError as exc:
            log.error("%d call tracking records not written at shutdown: %s",
                      len(self._buffer), exc)  # fmt: skip

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            if not self._buffer:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
            try:
                await self.flush()
            except StoreError as exc:
                log.warning("call tracking records buffered (%d), database: %s",
                            len(self._buffer), exc)  # fmt: skip
                await asyncio.sleep(self._backoff.next())
            else:
                self._backoff.reset()


def _override(row: asyncpg.Record) -> Override:
    return Override(
        id=row["id"], scope=row["scope"], value=row["value"], created_at=row["created_at"],
        expires_at=row["expires_at"], created_by=row["created_by"], mode=row["mode"],
        queue=row["queue"], priority=row["priority"], note=row["note"],
    )  # fmt: skip


def _override_from_json(d: dict[str, Any]) -> Override:
    return Override(
        id=d["id"], scope=d["scope"], value=d["value"],
        created_at=datetime.fromisoformat(d["created_at"]),
        expires_at=datetime.fromisoformat(d["expires_at"]), created_by=d["created_by"],
        mode=d["mode"], queue=d["queue"], priority=d["priority"], note=d["note"],
    )  # fmt: skip


class PgOverrideStore:
    """``OverrideStore`` on PostgreSQL. A deleted or expired override's row is removed; the
    audit keeps its full content. An ``expire`` is audited once even with many instances.
    Text PostgreSQL cannot hold (NUL, lone surrogates) is cleaned before writing."""

    def __init__(self, pool: asyncpg.Pool, *, timeout: float = 2.0) -> None:
        self._pool = pool
        self._timeout = timeout

    async def save(self, entry: AuditEntry) -> None:
        with store_errors("save routing override"):
            async with (
                asyncio.timeout(self._timeout),
                self._pool.acquire() as conn,
                conn.transaction(),
            ):
                await _save(conn, entry)

    async def active(self, now: datetime) -> list[Override]:
        with store_errors("active routing overrides"):
            async with asyncio.timeout(self._timeout):
                rows = await self._pool.fetch(
                    "SELECT * FROM routing_overrides WHERE created_at <= $1 AND expires_at > $1",
                    now,
                )
        return [_override(r) for r in rows]

    async def audit(self, limit: int) -> list[AuditEntry]:
        with store_errors("routing override audit"):
            async with asyncio.timeout(self._timeout):
                rows = await self._pool.fetch(
                    "SELECT at, action, actor, override FROM routing_override_audit"
                    " ORDER BY at DESC, id DESC LIMIT $1",
                    limit,
                )
        return [
            AuditEntry(
                r["at"], r["action"], r["actor"], _override_from_json(json.loads(r["override"]))
            )
            for r in rows
        ]


async def sync_tracking(pool: asyncpg.Pool, rules: RuleSet, *, deadline_s: float = 5.0) -> None:
    """Mirror ``rules``' campaigns and DIDs into ``routing_campaigns``/``routing_dids`` (called
    after each (re)load). Raises StoreError."""
    campaigns = [(c.name, c.source, c.paid, rules.version) for c in rules.campaigns.values()]
    dids = [
        (d.did, d.campaign, d.source, d.paid, d.clinic, d.queue, rules.version)
        for d in rules.dids.values()
    ]
    with store_errors("sync call tracking tables"):
        async with asyncio.timeout(deadline_s), pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM routing_campaigns")
            await conn.execute("DELETE FROM routing_dids")
            await conn.executemany("INSERT INTO routing_campaigns (name, source, paid,"
                                   " rule_version) VALUES ($1,$2,$3,$4)", campaigns)  # fmt: skip
            await conn.executemany(
                "INSERT INTO routing_dids (did, campaign, source, paid, clinic, queue,"
                " rule_version) VALUES ($1,$2,$3,$4,$5,$6,$7)",
                dids,
            )


async def _save(conn: asyncpg.Connection | PoolConnectionProxy, entry: AuditEntry) -> None:
    # text PostgreSQL refuses (NUL, half an emoji) is cleaned, never a reason to lose the entry
    o = replace(entry.override, note=clean_text(entry.override.note, 200),
                created_by=clean_text(entry.override.created_by, 64))  # fmt: skip
    entry = replace(entry, actor=clean_text(entry.actor, 64), override=o)
    if entry.action == "create":
        await conn.execute(
            "INSERT INTO routing_overrides (id, scope, value, mode, queue, priority, note,"
            " created_by, created_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
            " ON CONFLICT (id) DO NOTHING",
            o.id, o.scope, o.value, o.mode, o.queue, o.priority, o.note, o.created_by,
            o.created_at, o.expires_at,
        )  # fmt: skip
    else:
        gone = await conn.fetchval("DELETE FROM routing_overrides WHERE id = $1 RETURNING id", o.id)
        if gone is None:
            return  # another instance already ended it and audited that
    await conn.execute(
        "INSERT INTO routing_override_audit (at, action, actor, override_id, override)"
        " VALUES ($1, $2, $3, $4, $5::jsonb)",
        entry.at, entry.action, entry.actor, o.id, json.dumps(o.to_dict()),
    )  # fmt: skip


class PgTrackingSync:
    """``RulesListener``: mirrors campaigns/DIDs into PostgreSQL on start-up and every reload."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def rules_loaded(self, rules: RuleSet) -> None:
        await sync_tracking(self._pool, rules)

"""PostgreSQL outbox for CRM pushes: at-least-once delivery, never twice at the same time.

``Outbox.enqueue`` stores a push (unique idempotency key: a second enqueue is a no-op).
``OutboxWorker``s — any number, in any number of processes — claim due rows with
``FOR UPDATE SKIP LOCKED`` and a lease (``settings.lease`` s, longer than a delivery's deadline),
deliver them, and mark them delivered (only while still holding the claim token). A failed delivery
is retried after ``backoff_base * 2**(attempts-1)`` s (capped at ``backoff_max``, 10 % jitter); a
permanent failure (CrmRejected) or the ``max_attempts``-th failure moves the row to ``dead``,
where ``list_dead`` / ``retry_dead`` (HTTP API) can see and revive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from callserver.core.backoff import exponential_delay
from callserver.core.tasks import cancel_and_wait
from callserver.core.text import clean_json, clean_text
from callserver.store.errors import StoreUnavailable
from callserver.store.postgres import translate_error
from crm_bridge.config import CrmConfig
from crm_bridge.errors import CrmError, CrmRejected, OutboxError
from crm_bridge.ports import CrmBackend

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """Seconds unless named otherwise."""

    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_max: float = 600.0
    lease: float = 60.0
    batch: int = 20
    poll_interval: float = 1.0
    delivery_timeout: float = 5.0
    db_timeout: float = 5.0
    retention: float = 7 * 86400.0
    """Delivered rows older than this are deleted (every ``purge_interval`` s, by any worker)."""
    purge_interval: float = 3600.0

    def __post_init__(self) -> None:
        if self.delivery_timeout >= self.lease:
            raise OutboxError(message="outbox lease must exceed the delivery timeout")

    @classmethod
    def from_config(cls, crm: CrmConfig) -> OutboxSettings:
        return cls(
            max_attempts=crm.outbox_max_attempts,
            backoff_base=crm.outbox_backoff_base,
            backoff_max=crm.outbox_backoff_max,
            lease=crm.outbox_lease,
            batch=crm.outbox_batch,
            poll_interval=crm.outbox_poll_interval,
            delivery_timeout=crm.push_timeout,
        )

    def backoff(self, attempts: int) -> float:
        """Seconds before the next delivery after ``attempts`` failed ones (10 % jitter)."""
        return exponential_delay(
            attempts - 1, minimum=self.backoff_base, maximum=self.backoff_max, jitter=0.1
        )


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    idempotency_key: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    """Including the current one."""
    claim_token: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    idempotency_key: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    last_error: str
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "idempotency_key": self.idempotency_key,
            "kind": self.kind,
            "payload": self.payload,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


_CLAIM = """
WITH due AS (
    SELECT id FROM crm_outbox
    WHERE (status = 'pending' AND next_attempt_at <= now())
       OR (status = 'delivering' AND locked_until < now())
    ORDER BY next_attempt_at, id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE crm_outbox o
SET status = 'delivering', attempts = o.attempts + 1, claim_token = gen_random_uuid(),
    claimed_by = $2, locked_until = now() + make_interval(secs => $3), updated_at = now()
FROM due WHERE o.id = due.id
RETURNING o.id, o.idempotency_key, o.kind, o.payload::text AS payload, o.attempts,
          o.claim_token::text AS claim_token
"""


_ENQUEUE_MANY = """
INSERT INTO crm_outbox (idempotency_key, kind, payload)
SELECT t.key, t.kind, t.payload::jsonb FROM unnest($1::text[], $2::text[], $3::text[])
    WITH ORDINALITY AS t(key, kind, payload, n)
ORDER BY t.n
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id
"""


class Outbox:
    """The outbox table (``crm_outbox``). Raises OutboxError when PostgreSQL fails or is slow."""

    def __init__(self, pool: asyncpg.Pool, settings: OutboxSettings | None = None) -> None:
        self._pool = pool
        self.settings = settings or OutboxSettings()
        self._on_enqueue: list[Callable[[], None]] = []

    def on_enqueue(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (cheap, non-blocking) after each new row: wakes local workers."""
        self._on_enqueue.append(callback)

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        """A pooled connection under ``settings.db_timeout``. Raises OutboxError with
        ``details['transient']``: True when retrying later may succeed (unreachable, timed out),
        False when PostgreSQL refused the statement. The database's own text stays in the
        chained exception (for the log), never in the message (which may reach an answer)."""
        try:
            async with asyncio.timeout(self.settings.db_timeout), self._pool.acquire() as conn:
                yield conn
        except TimeoutError as exc:
            raise OutboxError(message="outbox database timed out", transient=True) from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            error = translate_error(exc, operation="outbox")
            raise OutboxError(
                message=f"outbox database failed ({error.error_id})",
                transient=isinstance(error, StoreUnavailable),
            ) from exc

    async def enqueue(self, kind: str, data: Mapping[str, Any], *, idempotency_key: str) -> bool:
        """Store a push; False when the key was already queued (then nothing changes).
        Text PostgreSQL cannot hold (NUL, lone surrogates) is cleaned first."""
        return await self.enqueue_many([(kind, data, idempotency_key)]) == 1

    async def enqueue_many(self, items: Sequence[tuple[str, Mapping[str, Any], str]]) -> int:
        """Store ``(kind, data, idempotency_key)`` pushes with one statement; returns how many
        were new (a key already queued, or repeated in ``items``, is skipped). Text PostgreSQL
        cannot hold is cleaned first. Raises OutboxError (``details['transient']``)."""
        if not items:
            return 0
        keys = [clean_text(key, 500) for _, _, key in items]
        kinds = [clean_text(kind, 100) for kind, _, _ in items]
        payloads = [json.dumps(clean_json(data), ensure_ascii=False) for _, data, _ in items]
        async with self._conn() as conn:
            rows = await conn.fetch(_ENQUEUE_MANY, keys, kinds, payloads)
        if rows:
            for callback in self._on_enqueue:
                callback()
        return len(rows)

    async def claim(self, worker_id: str, limit: int) -> list[OutboxItem]:
        """Lease up to ``limit`` due rows to ``worker_id`` for ``settings.lease`` s."""
        async with self._conn() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, limit, worker_id, self.settings.lease)
        return [
            OutboxItem(
                id=r["id"],
                idempotency_key=r["idempotency_key"],
                kind=r["kind"],
                payload=json.loads(r["payload"]),
                attempts=r["attempts"],
                claim_token=r["claim_token"],
            )
            for r in rows
        ]

    async def mark_delivered(self, item: OutboxItem) -> bool:
        """False when the lease was lost meanwhile (another worker may deliver it again)."""
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE crm_outbox SET status = 'delivered', delivered_at = now(),"
                " updated_at = now(), claim_token = NULL, locked_until = NULL, last_error = ''"
                " WHERE id = $1 AND claim_token = $2::uuid",
                item.id,
                item.claim_token,
            )
        return bool(status == "UPDATE 1")

    async def mark_failed(self, item: OutboxItem, error: str, *, permanent: bool) -> str:
        """Schedule a retry or dead-letter the row; returns the new status ('' if lease lost)."""
        dead = permanent or item.attempts >= self.settings.max_attempts
        delay = 0.0 if dead else self.settings.backoff(item.attempts)
        async with self._conn() as conn:
            status = await conn.fetchval(
                "UPDATE crm_outbox SET status = $3, last_error = $4, updated_at = now(),"
                " next_attempt_at = now() + make_interval(secs => $5),"
                " claim_token = NULL, locked_until = NULL"
                " WHERE id = $1 AND claim_token = $2::uuid RETURNING status",
                item.id,
                item.claim_token,
                "dead" if dead else "pending",
                error[:2000],
                delay,
            )
        return str(status or "")

    async def release(self, items: Sequence[OutboxItem]) -> int:
        """Give claimed rows back unattempted (their claim tokens must still be current)."""
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE crm_outbox SET status = 'pending', attempts = attempts - 1,"
                " claim_token = NULL, locked_until = NULL, updated_at = now()"
                " WHERE claim_token = ANY($1::uuid[])",
                [i.claim_token for i in items],
            )
        return int(status.split()[-1])

    async def list_dead(self, limit: int = 100, offset: int = 0) -> list[DeadLetter]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT id, idempotency_key, kind, payload::text AS payload, attempts, last_error,"
                " created_at, updated_at FROM crm_outbox WHERE status = 'dead'"
                " ORDER BY updated_at DESC, id DESC LIMIT $1 OFFSET $2",
                limit,
                offset,
            )
        return [DeadLetter(**{**dict(r), "payload": json.loads(r["payload"])}) for r in rows]

    async def retry_dead(self, ids: Sequence[int] | None = None) -> int:
        """Revive dead rows (all when ``ids`` is None) with a fresh attempt budget."""
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE crm_outbox SET status = 'pending', attempts = 0, next_attempt_at = now(),"
                " updated_at = now()"
                " WHERE status = 'dead' AND ($1::bigint[] IS NULL OR id = ANY($1))",
                None if ids is None else list(ids),
            )
        return int(status.split()[-1])

    async def stats(self) -> dict[str, int]:
        """Row count per status (every status present, 0 when none)."""
        async with self._conn() as conn:
            rows = await conn.fetch("SELECT status, count(*) AS n FROM crm_outbox GROUP BY status")
        counts = dict.fromkeys(("pending", "delivering", "delivered", "dead"), 0)
        counts.update({r["status"]: r["n"] for r in rows})
        return counts

    async def purge_delivered(self, older_than: float) -> int:
        """Delete rows delivered more than ``older_than`` seconds ago; returns how many."""
        async with self._conn() as conn:
            status = await conn.execute(
                "DELETE FROM crm_outbox WHERE status = 'delivered'"
                " AND delivered_at < now() - make_interval(secs => $1)",
                older_than,
            )
        return int(status.split()[-1])


class OutboxWorker:
    """Delivers outbox rows to ``target``. One task between start() and aclose()."""

    def __init__(self, outbox: Outbox, target: CrmBackend, *, worker_id: str) -> None:
        self._outbox = outbox
        self._target = target
        self.worker_id = worker_id
        self._settings = outbox.settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.failed = 0
        outbox.on_enqueue(self.wake)

    def wake(self) -> None:
        """Look for work now instead of after the poll interval."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"crm-outbox-{self.worker_id}")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_purge = loop.time()
        while True:
            try:
                if loop.time() >= next_purge:
                    next_purge = loop.time() + self._settings.purge_interval
                    await self._outbox.purge_delivered(self._settings.retention)
                handled = await self.run_once()
            except CrmError as exc:
                log.warning("outbox worker %s: %s", self.worker_id, exc)
                handled = 0
            except Exception:  # a bug must not end delivery for good: log, pause, go on
                log.exception("outbox worker %s crashed a round", self.worker_id)
                handled = 0
            if handled < self._settings.batch:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._settings.poll_interval):
                        await self._wake.wait()

    async def run_once(self) -> int:
        """Claim one batch and deliver it; returns how many rows were claimed.

        Cancelled midway (shutdown), it hands the unfinished rows back at once instead of
        leaving them leased for ``settings.lease`` s (the row being sent may arrive twice).
        A row is only sent while its lease outlasts a whole delivery (``delivery_timeout``);
        the rest of a slow batch is handed back, so no other worker is sending it meanwhile.
        """
        loop = asyncio.get_running_loop()
        send_until = loop.time() + self._settings.lease - self._settings.delivery_timeout
        items = await self._outbox.claim(self.worker_id, self._settings.batch)
        for done, item in enumerate(items):
            if loop.time() >= send_until:
                await self._outbox.release(items[done:])
                break
            try:
                await self._deliver(item)
            except asyncio.CancelledError:
                with contextlib.suppress(CrmError, TimeoutError):
                    async with asyncio.timeout(1.0):
                        await asyncio.shield(self._outbox.release(items[done:]))
                raise
        return len(items)

    async def _deliver(self, item: OutboxItem) -> None:
        if item.attempts > self._settings.max_attempts:  # a crashed worker's lease expired
            await self._outbox.mark_failed(item, "attempts exhausted", permanent=True)
            return
        try:
            async with asyncio.timeout(self._settings.delivery_timeout):
                await self._target.deliver(
                    item.kind, item.payload, idempotency_key=item.idempotency_key
                )
        except TimeoutError:
            await self._failed(item, "delivery timed out", permanent=False)
        except CrmRejected as exc:
            await self._failed(item, f"{exc.error_id}: {exc}", permanent=True)
        except CrmError as exc:
            permanent = exc.error_id not in ("crm-unavailable", "crm-timeout")
            await self._failed(item, f"{exc.error_id}: {exc}", permanent=permanent)
        except Exception as exc:  # a bug in a backend must not stop the worker: retry later
            log.exception("outbox %s: delivery of %s crashed", self.worker_id, item.id)
            await self._failed(item, f"internal: {exc!r}", permanent=False)
        else:
            self.delivered += 1
            if not await self._outbox.mark_delivered(item):
                log.warning("outbox row %s delivered after its lease expired", item.id)

    async def _failed(self, item: OutboxItem, error: str, *, permanent: bool) -> None:
        self.failed += 1
        status = await self._outbox.mark_failed(item, error, permanent=permanent)
        log.info(
            "outbox row %s (%s) attempt %d failed → %s: %s",
            item.id,
            item.kind,
            item.attempts,
            status or "lease lost",
            error.replace("\n", " "),
        )

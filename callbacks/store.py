"""PostgreSQL storage of callback jobs, attempts and the do-not-call list (asyncpg).

Every state change is one statement or one transaction guarded by the row's current state, so
two callserver instances sharing the tables never dial one job, one patient or one operator
twice at the same moment: jobs are claimed with ``FOR UPDATE SKIP LOCKED`` and partial unique
indexes allow one ``dialing`` attempt per phone, per operator and per job. An attempt is
finished once (``WHERE state = 'dialing'``). Times are POSIX seconds.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from callbacks.models import ClaimedJob, JobSpec

_JOB_COLUMNS = "*"


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


_UPSERT = """
INSERT INTO callback_jobs (id, phone, state, reason, source, queue, patient_id, patient_name,
    name, comment, utm, patient_tz, call_ids, priority, missed_at, last_missed_at,
    next_attempt_at, created_at)
VALUES ($1, $2, 'open', $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11,
    CASE WHEN $12 = '' THEN '{}'::text[] ELSE ARRAY[$12] END, $13, $14, $14, $15, $16)
ON CONFLICT (phone) WHERE state <> 'done' DO UPDATE SET
    missed_count = callback_jobs.missed_count
        + CASE WHEN $12 <> '' AND $12 = ANY(callback_jobs.call_ids) THEN 0 ELSE 1 END,
    call_ids = CASE WHEN $12 = '' OR $12 = ANY(callback_jobs.call_ids)
        THEN callback_jobs.call_ids ELSE callback_jobs.call_ids || $12 END,
    last_missed_at = greatest(callback_jobs.last_missed_at, EXCLUDED.last_missed_at),
    priority = greatest(callback_jobs.priority, EXCLUDED.priority),
    next_attempt_at = CASE WHEN callback_jobs.state = 'open'
        THEN least(callback_jobs.next_attempt_at, EXCLUDED.next_attempt_at)
        ELSE callback_jobs.next_attempt_at END,
    source = coalesce(nullif(callback_jobs.source, ''), EXCLUDED.source),
    queue = coalesce(nullif(callback_jobs.queue, ''), EXCLUDED.queue),
    patient_id = coalesce(nullif(callback_jobs.patient_id, ''), EXCLUDED.patient_id),
    patient_name = coalesce(nullif(callback_jobs.patient_name, ''), EXCLUDED.patient_name),
    name = coalesce(nullif(callback_jobs.name, ''), EXCLUDED.name),
    patient_tz = coalesce(nullif(callback_jobs.patient_tz, ''), EXCLUDED.patient_tz),
    comment = CASE WHEN EXCLUDED.comment = '' THEN callback_jobs.comment
        WHEN callback_jobs.comment = '' THEN EXCLUDED.comment
        ELSE callback_jobs.comment || E'\\n' || EXCLUDED.comment END
RETURNING id, (xmax = 0) AS created
"""

_DUE = """
SELECT * FROM callback_jobs j
WHERE j.state = 'open' AND j.next_attempt_at <= $1
  AND ($2::boolean OR j.queue = '' OR j.queue = ANY($3::text[]))
  AND NOT EXISTS (SELECT 1 FROM callback_attempts a WHERE a.phone = j.phone AND a.state = 'dialing')
ORDER BY j.priority DESC, j.next_attempt_at
LIMIT 1
FOR UPDATE SKIP LOCKED
"""


@dataclass(frozen=True)
class Expired:
    """A ``dialing`` attempt whose owner stopped renewing its lease."""

    id: str
    job_id: str | None
    uniqueid: str
    phone: str
    attempts: int
    patient_tz: str


class CallbackStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # ---- jobs -----------------------------------------------------------------------------

    async def upsert_job(self, spec: JobSpec, *, now: float, next_at: float) -> tuple[str, bool]:
        """Insert a job or merge into the open one of ``spec.phone``: (job id, created)."""
        row = await self._pool.fetchrow(
            _UPSERT, new_id("cb"), spec.phone, spec.reason, spec.source, spec.queue,
            spec.patient_id, spec.patient_name, spec.name, spec.comment, json.dumps(spec.utm),
            spec.patient_tz, spec.call_id, spec.priority, spec.missed_at or now, next_at, now,
        )  # fmt: skip
        assert row is not None
        return str(row["id"]), bool(row["created"])

    async def get(self, job_id: str) -> asyncpg.Record | None:
        return await self._pool.fetchrow("SELECT * FROM callback_jobs WHERE id = $1", job_id)

    async def list_jobs(self, state: str | None, queue: str | None, limit: int) -> list[Any]:
        order = "priority DESC, next_attempt_at" if state == "open" else "created_at DESC"
        return list(
            await self._pool.fetch(
                f"SELECT * FROM callback_jobs WHERE ($1::text IS NULL OR state = $1) "
                f"AND ($2::text IS NULL OR queue = $2) ORDER BY {order} LIMIT $3",
                state, queue, limit,
            )
        )  # fmt: skip

    async def attempts_of(self, job_id: str) -> list[Any]:
        return list(
            await self._pool.fetch(
                "SELECT * FROM callback_attempts WHERE job_id = $1 ORDER BY started_at, n", job_id
            )
        )

    async def close_for_phone(self, phone: str, outcome: str, now: float) -> list[str]:
        """Finish every unfinished job of ``phone`` (the patient reached us or got booked)."""
        rows = await self._pool.fetch(
            "UPDATE callback_jobs SET state = 'done', outcome = $2, closed_at = $3, "
            "lease_owner = '', lease_until = 0 WHERE phone = $1 AND state <> 'done' RETURNING id",
            phone, outcome, now,
        )  # fmt: skip
        return [str(r["id"]) for r in rows]

    # ---- the scheduler's claim ------------------------------------------------------------

    async def any_due(self, now: float) -> bool:
        """Whether some open job is due (one index probe; spares a claim per free operator)."""
        return bool(await self._pool.fetchval(
            "SELECT 1 FROM callback_jobs WHERE state = 'open' AND next_attempt_at <= $1 LIMIT 1",
            now,
        ))  # fmt: skip

    async def claim_due(
        self, *, now: float, operator: str, queues: Sequence[str], any_queue: bool, owner: str,
        lease_until: float,
    ) -> ClaimedJob | None:  # fmt: skip
        """Claim the most urgent due job ``operator`` may take and open its attempt, or None
        (nothing due, or another instance is dialling this operator or patient)."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                job = await conn.fetchrow(_DUE, now, any_queue, list(queues))
                if job is None:
                    return None
                return await _open_attempt(conn, job, operator, owner, now, lease_until)
        except asyncpg.UniqueViolationError:
            return None

    async def claim_job(
        self, job_id: str, *, operator: str, owner: str, now: float, lease_until: float
    ) -> ClaimedJob | None:
        """Claim the open job ``job_id`` for one attempt on ``operator`` (virtual hold: its
        placeholder channel), or None (not open: being dialled, claimed by hand, done)."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                job = await conn.fetchrow(
                    "SELECT * FROM callback_jobs WHERE id = $1 AND state = 'open' FOR UPDATE",
                    job_id,
                )
                if job is None:
                    return None
                return await _open_attempt(conn, job, operator, owner, now, lease_until)
        except asyncpg.UniqueViolationError:
            return None

    async def open_adhoc_attempt(
        self, *, operator: str, phone: str, owner: str, now: float, lease_until: float
    ) -> str:
        """An attempt with no job (the ``dialer`` port: click-to-call). Raises
        asyncpg.UniqueViolationError when that operator or phone is being dialled."""
        attempt_id = new_id("at")
        await self._pool.execute(
            "INSERT INTO callback_attempts (id, operator, phone, state, owner, lease_until, "
            "started_at) VALUES ($1, $2, $3, 'dialing', $4, $5, $6)",
            attempt_id, operator, phone, owner, lease_until, now,
        )  # fmt: skip
        return attempt_id

    async def renew(self, attempt_id: str, owner: str, lease_until: float) -> bool:
        status = await self._pool.execute(
            "UPDATE callback_attempts SET lease_until = $3 "
            "WHERE id = $1 AND owner = $2 AND state = 'dialing'",
            attempt_id, owner, lease_until,
        )  # fmt: skip
        if status.endswith(" 1"):
            await self._pool.execute(
                "UPDATE callback_jobs SET lease_until = $2 WHERE id = "
                "(SELECT job_id FROM callback_attempts WHERE id = $1) AND state = 'active'",
                attempt_id, lease_until,
            )  # fmt: skip
        return status.endswith(" 1")

    async def set_uniqueid(self, attempt_id: str, uniqueid: str) -> None:
        await self._pool.execute(
            "UPDATE callback_attempts SET uniqueid = $2 WHERE id = $1", attempt_id, uniqueid
        )

    async def finish_attempt(
        self, attempt_id: str, *, result: str, cause: str, now: float, counted: int,
        next_at: float | None, outcome: str,
    ) -> bool:  # fmt: skip
        """Record the attempt's result once and move its job on (``next_at`` None: finished
        with ``outcome``). False when the attempt was already finished (reconciled)."""
        async with self._pool.acquire() as conn, conn.transaction():
            job_id = await conn.fetchval(
                "UPDATE callback_attempts SET state = 'done', result = $2, cause = $3, "
                "ended_at = $4 WHERE id = $1 AND state = 'dialing' RETURNING coalesce(job_id, '')",
                attempt_id, result, cause, now,
            )  # fmt: skip
            if job_id is None:
                return False
            if job_id:
                await conn.execute(
                    "UPDATE callback_jobs SET attempts = attempts + $2, last_result = $3, "
                    "lease_owner = '', lease_until = 0, "
                    "state = CASE WHEN $4::float8 IS NULL THEN 'done' ELSE 'open' END, "
                    "next_attempt_at = coalesce($4, next_attempt_at), "
                    "outcome = CASE WHEN $4::float8 IS NULL THEN $5 ELSE outcome END, "
                    "closed_at = CASE WHEN $4::float8 IS NULL THEN $6::float8 END "
                    "WHERE id = $1 AND state = 'active' AND claimed_by = ''",
                    job_id, counted, result, next_at, outcome, now,
                )  # fmt: skip
            return True

    async def expired(self, now: float) -> list[Expired]:
        rows = await self._pool.fetch(
            "SELECT a.id, a.job_id, a.uniqueid, a.phone, coalesce(j.attempts, 0) AS attempts, "
            "coalesce(j.patient_tz, '') AS patient_tz FROM callback_attempts a "
            "LEFT JOIN callback_jobs j ON j.id = a.job_id "
            "WHERE a.state = 'dialing' AND a.lease_until < $1",
            now,
        )
        return [Expired(r["id"], r["job_id"], r["uniqueid"], r["phone"], r["attempts"],
                        r["patient_tz"]) for r in rows]  # fmt: skip

    async def take_over(self, attempt_id: str, owner: str, now: float, lease_until: float) -> bool:
        """Take an expired attempt's lease (compare-and-set: one instance wins)."""
        status = await self._pool.execute(
            "UPDATE callback_attempts SET owner = $2, lease_until = $4 "
            "WHERE id = $1 AND state = 'dialing' AND lease_until < $3",
            attempt_id, owner, now, lease_until,
        )  # fmt: skip
        return status.endswith(" 1")

    async def reopen_stale_claims(self, now: float) -> int:
        status = await self._pool.execute(
            "UPDATE callback_jobs SET state = 'open', claimed_by = '', lease_until = 0 "
            "WHERE state = 'active' AND claimed_by <> '' AND lease_until < $1",
            now,
        )
        return int(status.split()[-1])

    # ---- operators' actions ---------------------------------------------------------------

    async def claim_manual(self, job_id: str, user: str, until: float) -> Any:
        """The operator ``user`` takes the job (None when someone else has it or it is done or
        being dialled)."""
        return await self._pool.fetchrow(
            "UPDATE callback_jobs SET state = 'active', claimed_by = $2, lease_until = $3 "
            "WHERE id = $1 AND state <> 'done' AND "
            "(claimed_by = $2 OR (claimed_by = '' AND state = 'open')) RETURNING *",
            job_id, user, until,
        )  # fmt: skip

    async def operator_result(
        self, job_id: str, *, user: str, result: str, note: str, now: float,
        next_at: float | None, outcome: str,
    ) -> Any:  # fmt: skip
        """Record an operator's result: finished (``next_at`` None) or back to ``open``. Only
        the claimer, or anyone when unclaimed and not being dialled; None otherwise."""
        return await self._pool.fetchrow(
            "UPDATE callback_jobs SET note = $4, last_result = $3, claimed_by = '', "
            "lease_until = 0, lease_owner = '', "
            "attempts = attempts + CASE WHEN $5::float8 IS NULL THEN 0 ELSE 1 END, "
            "state = CASE WHEN $5::float8 IS NULL THEN 'done' ELSE 'open' END, "
            "next_attempt_at = coalesce($5, next_attempt_at), "
            "outcome = CASE WHEN $5::float8 IS NULL THEN $6 ELSE outcome END, "
            "closed_at = CASE WHEN $5::float8 IS NULL THEN coalesce(closed_at, $7) END "
            "WHERE id = $1 AND (claimed_by = $2 OR claimed_by = '') "
            "AND NOT (state = 'active' AND claimed_by = '') "
            "AND (state <> 'done' OR $5::float8 IS NULL) RETURNING *",
            job_id, user, result, note, next_at, outcome, now,
        )  # fmt: skip

    # ---- do-not-call ----------------------------------------------------------------------

    async def is_dnc(self, phone: str) -> bool:
        return bool(
            await self._pool.fetchval("SELECT 1 FROM callback_dnc WHERE phone = $1", phone)
        )

    async def add_dnc(self, phone: str, reason: str, by: str, now: float) -> None:
        await self._pool.execute(
            "INSERT INTO callback_dnc (phone, reason, added_by, added_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (phone) DO UPDATE SET reason = EXCLUDED.reason",
            phone, reason, by, now,
        )  # fmt: skip

    async def remove_dnc(self, phone: str) -> bool:
        status = await self._pool.execute("DELETE FROM callback_dnc WHERE phone = $1", phone)
        return status.endswith(" 1")

    async def list_dnc(self) -> list[Any]:
        return list(await self._pool.fetch("SELECT * FROM callback_dnc ORDER BY added_at DESC"))

    # ---- figures --------------------------------------------------------------------------

    async def stats(self, since: float) -> dict[str, float]:
        row = await self._pool.fetchrow(
            "SELECT count(*) FILTER (WHERE state = 'open') AS open, "
            "count(*) FILTER (WHERE state = 'active') AS active, "
            "count(*) FILTER (WHERE state = 'done') AS done, "
            "count(*) FILTER (WHERE outcome IN ('reached', 'booked')) AS reached, "
            "count(*) FILTER (WHERE outcome = 'booked') AS booked, "
            "coalesce(avg(attempts) FILTER (WHERE state = 'done'), 0) AS attempts_avg, "
            "coalesce(percentile_cont(0.5) WITHIN GROUP "
            "  (ORDER BY first_attempt_at - missed_at), 0) AS first_p50, "
            "coalesce(percentile_cont(0.99) WITHIN GROUP "
            "  (ORDER BY first_attempt_at - missed_at), 0) AS first_p99 "
            "FROM callback_jobs WHERE created_at >= $1",
            since,
        )
        assert row is not None
        return {k: float(v) for k, v in dict(row).items()}


async def _open_attempt(
    conn: Any, job: Any, operator: str, owner: str, now: float, lease_until: float
) -> ClaimedJob:
    """Insert the ``dialing`` attempt of a locked open job and mark the job active (in the
    caller's transaction)."""
    attempt_id = new_id("at")
    await conn.execute(
        "INSERT INTO callback_attempts (id, job_id, n, operator, phone, state, owner, "
        "lease_until, started_at) VALUES ($1, $2, $3, $4, $5, 'dialing', $6, $7, $8)",
        attempt_id, job["id"], job["attempts"] + 1, operator, job["phone"], owner,
        lease_until, now,
    )  # fmt: skip
    await conn.execute(
        "UPDATE callback_jobs SET state = 'active', lease_owner = $2, "
        "lease_until = $3, first_attempt_at = coalesce(first_attempt_at, $4) "
        "WHERE id = $1",
        job["id"], owner, lease_until, now,
    )  # fmt: skip
    return ClaimedJob(
        job["id"], job["phone"], job["reason"], job["source"], job["queue"],
        job["patient_name"], job["patient_tz"], job["missed_at"], job["attempts"],
        job["missed_count"], attempt_id, operator,
    )  # fmt: skip

"""PostgreSQL side of campaigns: campaigns, targets, the claim of due calls, every dial's result.

The claim is what makes "never twice" hold across instances and restarts:

* due targets are locked ``FOR UPDATE SKIP LOCKED`` (two instances never take the same row);
* each call takes one of its trunk's slots (``campaign_channels``, one row per channel, taken
  ``FOR UPDATE SKIP LOCKED``, freed in the transaction that settles or recovers the dial), so
  instances together stay within the trunk's limit without waiting for each other;
* ``campaign_patient_days`` has one row per patient and clinic-local day (primary key): a second
  campaign (or a duplicate target) cannot call the same patient that day;
* the dial row (``UNIQUE (target_id, attempt)``) is written before the Originate. A target whose
  lease expired while ``dialing`` (its instance died) is **not** redialled the same day: the dial
  is recorded ``unknown`` and the target waits for the next local day.

Times are passed in (the runner's settable clock), never ``now()``. Raises asyncpg errors
(PostgreSQL down): the runner backs off and retries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from campaigns.claim import Campaigns, ClaimRequest, next_day
from campaigns.errors import CampaignConflict, CampaignNotFound
from campaigns.models import CampaignSettings, ClaimedCall, Target, parse_settings

_TARGET_COLS = ("campaign_id, patient_key, patient_id, phone, full_name, lang, clinic, "
                "appointment_id, doctor, doctor_id, starts_at, rule, next_attempt_at")  # fmt: skip
_STATES = {"running": ("paused",), "paused": ("running",), "cancelled": ("running", "paused"),
           "done": ("running", "paused")}  # fmt: skip


class CampaignStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # --- campaigns ----------------------------------------------------------------------

    async def create(self, name: str, kind: str, settings: CampaignSettings, by: str) -> int:
        cid: int = await self._pool.fetchval(
            "INSERT INTO campaigns (name, kind, settings, created_by) VALUES ($1, $2, $3, $4) "
            "RETURNING id", name, kind, json.dumps(settings.to_json()), by,
        )  # fmt: skip
        return cid

    async def campaign(self, cid: int) -> dict[str, Any]:
        """Raises CampaignNotFound."""
        row = await self._pool.fetchrow("SELECT * FROM campaigns WHERE id = $1", cid)
        if row is None:
            raise CampaignNotFound(message=f"campaign {cid} not found", campaign_id=cid)
        return _campaign_dict(row)

    async def campaigns(self, limit: int = 200) -> list[dict[str, Any]]:
        rows = await self._pool.fetch("SELECT * FROM campaigns ORDER BY id DESC LIMIT $1", limit)
        return [_campaign_dict(r) for r in rows]

    async def running(self) -> dict[int, tuple[str, CampaignSettings]]:
        rows = await self._pool.fetch(
            "SELECT id, kind, settings FROM campaigns WHERE state = 'running'"
        )
        return {r["id"]: (r["kind"], parse_settings(json.loads(r["settings"]))) for r in rows}

    async def set_state(self, cid: int, state: str) -> None:
        """Raises CampaignNotFound, CampaignConflict (e.g. resuming a cancelled campaign)."""
        allowed_from = _STATES.get(state)
        if allowed_from is None:
            raise CampaignConflict(message=f"unknown state {state!r}", state=state)
        done = await self._pool.fetchval(
            "UPDATE campaigns SET state = $2, updated_at = now() WHERE id = $1 AND state = ANY($3) "
            "RETURNING id", cid, state, list(allowed_from),
        )  # fmt: skip
        if done is None:
            current = (await self.campaign(cid))["state"]
            if current != state:
                raise CampaignConflict(message=f"campaign is {current}; cannot become {state}",
                                       state=current)  # fmt: skip

    async def add_targets(self, cid: int, targets: Sequence[Target]) -> int:
        """Insert targets (a repeated patient/appointment/rule is ignored); how many were new."""
        rows = [(cid, t.patient_key, t.patient_id, t.phone, t.full_name, t.lang, t.clinic,
                 t.appointment_id, t.doctor, t.doctor_id, t.starts_at, t.rule, t.next_attempt_at)
                for t in targets]  # fmt: skip
        async with self._pool.acquire() as conn, conn.transaction():
            before = await conn.fetchval(
                "SELECT count(*) FROM campaign_targets WHERE campaign_id=$1", cid
            )
            await conn.executemany(
                f"INSERT INTO campaign_targets ({_TARGET_COLS}) VALUES "
                "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) ON CONFLICT DO NOTHING", rows,
            )  # fmt: skip
            after = await conn.fetchval(
                "SELECT count(*) FROM campaign_targets WHERE campaign_id=$1", cid
            )
        return int(after - before)

    # --- the do-not-call list -----------------------------------------------------------

    async def add_dnc(self, phones: Sequence[str], source: str) -> int:
        result: str = await self._pool.execute(
            "INSERT INTO campaign_dnc (phone, source) SELECT unnest($1::text[]), $2 "
            "ON CONFLICT DO NOTHING", list(phones), source,
        )  # fmt: skip
        return int(result.rsplit(" ", 1)[-1])

    async def dnc(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT phone, source, created_at FROM campaign_dnc ORDER BY created_at DESC LIMIT $1",
            limit,
        )
        return [{"phone": r["phone"], "source": r["source"],
                 "created_at": r["created_at"].timestamp()} for r in rows]  # fmt: skip

    # --- claiming and settling dials ----------------------------------------------------

    async def claim(
        self, *, now: datetime, instance: str, trunk: str, channels: int, want: int,
        campaigns: Campaigns, lease: timedelta,
    ) -> list[ClaimedCall]:  # fmt: skip
        """Claim up to ``want`` due calls on ``trunk`` for ``campaigns`` (open windows only),
        never more than ``channels`` calls in progress on the trunk over all instances: one
        statement, ``campaign_claim`` in the migration (locks, do-not-call, the day ledger)."""
        req = ClaimRequest(now, instance, trunk, channels, want, campaigns, lease)
        if not campaigns or want <= 0:
            return []
        rows = await self._pool.fetch(
            "SELECT * FROM campaign_claim($1, $2, $3, $4, $5, $6, $7, $8, $9)", now, *req.args()
        )
        return req.calls(rows)

    async def settle(
        self, call: ClaimedCall, *, instance: str, result: str, outcome: str, final: str,
        data: dict[str, str], now: datetime, retry_at: datetime | None,
        then: ClaimRequest | None = None,
    ) -> tuple[bool, list[ClaimedCall]]:  # fmt: skip
        """Record a dial's result/dialog ``outcome`` and the target's next step (``retry_at``
        None: done with the ``final`` outcome) — and with ``then``, claim the calls that take
        its channel, in the same round trip. ``settled`` is False when the dial was already
        settled elsewhere (lease expired and recovered)."""
        settle = (call.dial_id, result, outcome, json.dumps(data), now,
                  "pending" if retry_at else "done", retry_at, "" if retry_at else final,
                  instance)  # fmt: skip
        if then is None or not then.campaigns or then.want <= 0:
            ok: bool = await self._pool.fetchval(
                "SELECT campaign_settle($1, $2, $3, $4, $5, $6, $7, $8, $9)", *settle
            )
            return ok, []
        rows = await self._pool.fetch(
            "SELECT * FROM campaign_settle_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
            "$12, $13, $14, $15, $16)", *settle, *then.args()[1:],
        )  # fmt: skip
        return bool(rows[0]["settled"]), then.calls([r for r in rows if r["o_dial"] is not None])

    async def finish_campaigns(self) -> int:
        """Running campaigns with every target done become ``done``; how many."""
        result: str = await self._pool.execute(
            "UPDATE campaigns c SET state = 'done', updated_at = now() WHERE state = 'running' "
            "AND NOT EXISTS (SELECT 1 FROM campaign_targets t WHERE t.campaign_id = c.id "
            "AND t.state <> 'done')"
        )
        return int(result.rsplit(" ", 1)[-1])

    async def recover_expired(self, now: datetime) -> int:
        """Dials whose instance vanished (lease expired): recorded ``unknown``; their targets wait
        for the next clinic-local day (never redialled the same day). Returns how many."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT t.id, c.settings->>'tz' AS tz, (c.settings->>'max_attempts')::int AS maxa, "
                "t.attempts FROM campaign_targets t JOIN campaigns c ON c.id = t.campaign_id "
                "WHERE t.state = 'dialing' AND t.lease_until < $1 FOR UPDATE OF t SKIP LOCKED", now,
            )  # fmt: skip
            for r in rows:
                await conn.execute(
                    "WITH d AS (UPDATE campaign_dials SET result = 'unknown', ended_at = $2 "
                    "WHERE target_id = $1 AND result = 'dialing' RETURNING id, trunk) "
                    "UPDATE campaign_channels c SET dial_id = NULL FROM d "
                    "WHERE c.trunk = d.trunk AND c.dial_id = d.id",
                    r["id"], now,
                )  # fmt: skip
                done = r["attempts"] >= (r["maxa"] or 1)
                await conn.execute(
                    "UPDATE campaign_targets SET state = $2, last_result = 'unknown', "
                    "outcome = $3, claimed_by = '', lease_until = NULL, updated_at = $4, "
                    "next_attempt_at = $5 WHERE id = $1",
                    r["id"], "done" if done else "pending", "unreached" if done else "", now,
                    next_day(now, r["tz"] or "Europe/Moscow"),
                )  # fmt: skip
        return len(rows)


def _campaign_dict(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "kind": row["kind"], "state": row["state"],
        "settings": json.loads(row["settings"]), "created_by": row["created_by"],
        "created_at": row["created_at"].timestamp(),
    }  # fmt: skip

"""Turning locked due targets into dial rows, set-based (a few statements per batch, whatever
its size): do-not-call targets are closed, a patient already called today (by any campaign, on
any instance: ``campaign_patient_days``) waits for the next day, the clinic's channel limit is
kept, the rest become ``dialing`` with a lease and get their attempt row.
Runs inside the caller's transaction (``store.claim``), which holds the rows' locks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.models import CampaignSettings, ClaimedCall, Target
from campaigns.policy import next_allowed

Campaigns = dict[int, tuple[str, CampaignSettings]]


def next_day(now: datetime, tz: str) -> datetime:
    """Local midnight after ``now`` in ``tz``."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=zone)


def target_of(row: Any) -> Target:
    return Target(
        phone=row["phone"], patient_key=row["patient_key"], next_attempt_at=row["next_attempt_at"],
        patient_id=row["patient_id"], full_name=row["full_name"], lang=row["lang"],
        clinic=row["clinic"], appointment_id=row["appointment_id"], doctor=row["doctor"],
        doctor_id=row["doctor_id"], starts_at=row["starts_at"], rule=row["rule"],
    )  # fmt: skip


@dataclass(frozen=True)
class ClaimBatch:
    now: datetime
    instance: str
    trunk: str
    lease: timedelta

    async def claim(
        self, conn: Any, rows: Sequence[Any], campaigns: Campaigns,
        clinic_load: dict[str, int] | None,
    ) -> list[ClaimedCall]:  # fmt: skip
        """Dial rows for ``rows`` (locked ``campaign_targets`` rows with a ``dnc`` column)."""
        dnc = [r["id"] for r in rows if r["dnc"]]
        if dnc:
            await conn.execute(
                "UPDATE campaign_targets SET state = 'done', outcome = 'do_not_call', "
                "updated_at = $2 WHERE id = ANY($1::bigint[])", dnc, self.now,
            )  # fmt: skip
        rows = [r for r in rows if not r["dnc"] and _fits(r, campaigns, clinic_load)]
        days = {r["id"]: self.now.astimezone(campaigns[r["campaign_id"]][1].window.zone).date()
                for r in rows}  # fmt: skip
        go, later = await self._ledger(conn, rows, days)
        if later:
            await self._postpone(conn, later, campaigns)
        if not go:
            return []
        made = await conn.fetch(
            "WITH u AS (UPDATE campaign_targets t SET state = 'dialing', attempts = attempts + 1, "
            "claimed_by = $3, lease_until = $4, updated_at = $5 FROM unnest($1::bigint[], "
            "$2::date[]) AS x(id, day) WHERE t.id = x.id "
            "RETURNING t.id, t.campaign_id, t.attempts, t.phone, x.day) "
            "INSERT INTO campaign_dials (target_id, campaign_id, attempt, phone, instance, trunk, "
            "call_day, started_at) SELECT id, campaign_id, attempts, phone, $3, $6, day, $5 FROM u "
            "RETURNING id, target_id, attempt",
            [r["id"] for r in go], [days[r["id"]] for r in go], self.instance,
            self.now + self.lease, self.now, self.trunk,
        )  # fmt: skip
        by_id = {r["id"]: r for r in go}
        out = []
        for m in made:
            row = by_id[m["target_id"]]
            kind, settings = campaigns[row["campaign_id"]]
            out.append(ClaimedCall(m["id"], row["id"], row["campaign_id"], kind, m["attempt"],
                                   target_of(row), settings))  # fmt: skip
        return out

    async def _ledger(
        self, conn: Any, rows: list[Any], days: dict[int, date]
    ) -> tuple[list[Any], list[Any]]:
        """(rows that own their patient's day, rows whose patient was called today)."""
        first: dict[tuple[str, date], Any] = {}
        later: list[Any] = []
        for r in rows:  # one call per patient and day within the batch too
            key = (r["patient_key"], days[r["id"]])
            if key in first:
                later.append(r)
            else:
                first[key] = r
        if not first:
            return [], later
        owners = await conn.fetch(
            "INSERT INTO campaign_patient_days (patient_key, call_day, target_id) "
            "SELECT * FROM unnest($1::text[], $2::date[], $3::bigint[]) "
            "ON CONFLICT (patient_key, call_day) "
            "DO UPDATE SET target_id = campaign_patient_days.target_id "
            "RETURNING patient_key, call_day, target_id",
            [k[0] for k in first], [k[1] for k in first], [r["id"] for r in first.values()],
        )  # fmt: skip
        owner = {(o["patient_key"], o["call_day"]): o["target_id"] for o in owners}
        go: list[Any] = []
        for key, r in first.items():
            (go if owner.get(key) == r["id"] else later).append(r)
        return go, later

    async def _postpone(self, conn: Any, rows: list[Any], campaigns: Campaigns) -> None:
        """Someone else's campaign call reached the patient today: try tomorrow."""
        ats = []
        for r in rows:
            window = campaigns[r["campaign_id"]][1].window
            tomorrow = next_allowed(window, next_day(self.now, window.tz))
            ats.append(tomorrow or self.now + timedelta(days=1))
        await conn.execute(
            "UPDATE campaign_targets t SET next_attempt_at = x.at, last_result = 'called_today', "
            "updated_at = $3 FROM unnest($1::bigint[], $2::timestamptz[]) AS x(id, at) "
            "WHERE t.id = x.id", [r["id"] for r in rows], ats, self.now,
        )  # fmt: skip


def _fits(row: Any, campaigns: Campaigns, clinic_load: dict[str, int] | None) -> bool:
    """Within the clinic's channel limit (counting this batch's claims)."""
    settings = campaigns[row["campaign_id"]][1]
    if clinic_load is None or not settings.clinic_channels:
        return True
    if clinic_load.get(row["clinic"], 0) >= settings.clinic_channels:
        return False
    clinic_load[row["clinic"]] = clinic_load.get(row["clinic"], 0) + 1
    return True

"""Who a campaign calls: target lists built from the embedded CRM's tables
(``crm_bridge/migrations/0001_embedded_crm.sql``) with SQL, or from an uploaded CSV.

* reminder / confirmation — appointments ``booked`` in ``[date_from, date_to)``, one target per
  reminder the schedule plans (``policy.plan_reminders``);
* feedback — visits (``came``) ``days_ago`` clinic-local days ago;
* recall — the last visit at least ``months`` ago and no future appointment;
* waitlist — the active waitlist of a doctor, offered a freed slot.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg

from callserver.core.phone import PhoneNumberError, normalize_phone
from campaigns.errors import CampaignInvalid
from campaigns.models import CampaignSettings, Target
from campaigns.policy import next_allowed, plan_reminders

MAX_CSV_ROWS = 100_000
_PATIENT = (
    "SELECT DISTINCT ON (p.id) p.id AS patient_id, p.full_name, p.language, ph.phone "
    "FROM crm_patients p JOIN crm_patient_phones ph ON ph.patient_id = p.id "
)
_APPOINTMENTS = (
    "SELECT a.id, a.starts_at, a.doctor_id, coalesce(d.full_name, '') AS doctor, "
    "coalesce(cl.name, '') AS clinic, x.patient_id, x.full_name, x.language, x.phone "
    "FROM crm_appointments a "
    f"JOIN ({_PATIENT} ORDER BY p.id, ph.kind <> 'mobile', ph.phone) x "
    "ON x.patient_id = a.patient_id "
    "LEFT JOIN crm_doctors d ON d.id = a.doctor_id LEFT JOIN crm_clinics cl ON cl.id = a.clinic_id "
)


def _local_range(settings: CampaignSettings, first: date, last: date) -> tuple[datetime, datetime]:
    zone = settings.window.zone
    return (datetime.combine(first, time(0), tzinfo=zone),
            datetime.combine(last, time(0), tzinfo=zone))  # fmt: skip


def _from_row(r: asyncpg.Record, at: datetime, rule: str, with_appointment: bool) -> Target:
    return Target(
        phone=r["phone"], patient_key=f"p:{r['patient_id']}", next_attempt_at=at,
        patient_id=r["patient_id"], full_name=r["full_name"], lang=r["language"] or "ru",
        clinic=r.get("clinic", ""),
        appointment_id=r["id"] if with_appointment else None,
        doctor=r["doctor"] if with_appointment else "",
        doctor_id=r["doctor_id"] if with_appointment else None,
        starts_at=r["starts_at"] if with_appointment else None, rule=rule,
    )  # fmt: skip


async def reminder_targets(
    pool: asyncpg.Pool, settings: CampaignSettings, *, date_from: date, date_to: date,
    now: datetime,
) -> list[Target]:  # fmt: skip
    """A target per planned reminder of each booked appointment in ``[date_from, date_to)``."""
    lo, hi = _local_range(settings, date_from, date_to)
    rows = await pool.fetch(
        _APPOINTMENTS + "WHERE a.status = 'booked' AND a.starts_at >= $1 AND a.starts_at < $2 "
        "ORDER BY a.starts_at, a.id", lo, hi,
    )  # fmt: skip
    out = []
    for r in rows:
        for planned in plan_reminders(r["starts_at"], settings.schedule, settings.window, now=now):
            out.append(_from_row(r, planned.at, planned.rule, True))
    return out


async def feedback_targets(
    pool: asyncpg.Pool, settings: CampaignSettings, *, days_ago: int, now: datetime
) -> list[Target]:
    """Patients whose visit (``came``) was ``days_ago`` clinic-local days before ``now``."""
    day = now.astimezone(settings.window.zone).date() - timedelta(days=days_ago)
    lo, hi = _local_range(settings, day, day + timedelta(days=1))
    rows = await pool.fetch(
        _APPOINTMENTS + "WHERE a.status = 'came' AND a.starts_at >= $1 AND a.starts_at < $2 "
        "ORDER BY a.starts_at, a.id", lo, hi,
    )  # fmt: skip
    at = next_allowed(settings.window, now) or now
    return [_from_row(r, at, f"feedback:{days_ago}d", True) for r in rows]


async def recall_targets(
    pool: asyncpg.Pool, settings: CampaignSettings, *, months: int, now: datetime
) -> list[Target]:
    """Patients whose last visit was at least ``months`` months ago, with nothing booked."""
    cutoff = now - timedelta(days=round(months * 30.44))
    rows = await pool.fetch(
        f"SELECT x.*, '' AS clinic FROM "
        f"({_PATIENT} ORDER BY p.id, ph.kind <> 'mobile', ph.phone) x "
        "WHERE (SELECT max(a.starts_at) FROM crm_appointments a WHERE a.patient_id = x.patient_id "
        "  AND a.status = 'came') <= $1 "
        "AND NOT EXISTS (SELECT 1 FROM crm_appointments a WHERE a.patient_id = x.patient_id "
        "  AND a.starts_at > $2 AND a.status IN ('booked', 'confirmed')) ORDER BY x.patient_id",
        cutoff, now,
    )  # fmt: skip
    at = next_allowed(settings.window, now) or now
    return [_from_row(r, at, f"recall:{months}m", False) for r in rows]


async def waitlist_targets(
    pool: asyncpg.Pool, settings: CampaignSettings, *, doctor_id: int, slot: datetime,
    doctor: str, now: datetime, limit: int = 5,
) -> list[Target]:  # fmt: skip
    """The first ``limit`` patients waiting for ``doctor_id``, offered the slot at ``slot``."""
    rows = await pool.fetch(
        "SELECT id, patient_id, phone, full_name FROM campaign_waitlist WHERE active "
        "AND doctor_id = $1 ORDER BY created_at, id LIMIT $2", doctor_id, limit,
    )  # fmt: skip
    at = next_allowed(settings.window, now) or now
    return [
        Target(phone=r["phone"], patient_key=f"p:{r['patient_id']}" if r["patient_id"]
               else f"tel:{r['phone']}", next_attempt_at=at, patient_id=r["patient_id"],
               full_name=r["full_name"], doctor=doctor, doctor_id=doctor_id, starts_at=slot,
               rule=f"waitlist:{r['id']}")
        for r in rows
    ]  # fmt: skip


def csv_targets(
    text: str, settings: CampaignSettings, *, now: datetime
) -> tuple[list[Target], list[dict[str, Any]]]:
    """Targets from CSV ``phone,name[,lang,doctor,starts_at,clinic]`` (header row required;
    ``starts_at`` ISO 8601, clinic-local when it has no offset). Returns (targets, errors per
    bad row: ``{"line", "error"}``). Raises CampaignInvalid without a ``phone`` column."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "phone" not in [f.strip().lower() for f in reader.fieldnames]:
        raise CampaignInvalid(
            message="CSV: a header row with a 'phone' column is required", field="csv"
        )
    at = next_allowed(settings.window, now) or now
    targets, errors = [], []
    for line, raw in enumerate(reader, start=2):
        if line > MAX_CSV_ROWS + 1:
            errors.append({"line": line, "error": f"more than {MAX_CSV_ROWS} rows"})
            break
        row = {
            (k or "").strip().lower(): (v or "").strip()
            for k, v in raw.items()
            if isinstance(v, str)
        }
        try:
            targets.append(_csv_target(row, settings, at))
        except (PhoneNumberError, ValueError) as e:
            errors.append({"line": line, "error": str(e)[:200]})
    return targets, errors


def _csv_target(row: dict[str, str], settings: CampaignSettings, at: datetime) -> Target:
    phone = normalize_phone(row.get("phone", ""))
    starts = None
    if row.get("starts_at"):
        starts = datetime.fromisoformat(row["starts_at"])
        if starts.tzinfo is None:
            starts = starts.replace(tzinfo=settings.window.zone)
    lang = row.get("lang", "ru") or "ru"
    if lang not in ("ru", "en"):
        raise ValueError(f"lang {lang[:10]!r}: ru or en")
    return Target(phone=phone, patient_key=f"tel:{phone}", next_attempt_at=at,
                  full_name=row.get("name", "")[:200], lang=lang,
                  doctor=row.get("doctor", "")[:200], starts_at=starts,
                  clinic=row.get("clinic", "")[:200], rule="csv")  # fmt: skip

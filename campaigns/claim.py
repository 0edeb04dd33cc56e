"""Helpers of the claim (the claim itself is ``campaign_claim`` in the migration: one round
trip, which is what keeps the gap between a call's hang-up and the next dial short)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.models import CampaignSettings, Target

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

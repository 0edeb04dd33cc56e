"""Helpers of the claim (the claim itself is ``campaign_claim`` in the migration: one round
trip, which is what keeps the gap between a call's hang-up and the next dial short)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.models import CampaignSettings, ClaimedCall, Target

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
class ClaimRequest:
    """What to claim: up to ``want`` due calls on ``trunk`` (``channels`` over all instances)
    for the ``campaigns`` whose window is open ``now``."""

    now: datetime
    instance: str
    trunk: str
    channels: int
    want: int
    campaigns: Campaigns
    lease: timedelta

    def args(self) -> tuple[Any, ...]:
        """``campaign_claim``'s parameters after ``p_now``."""
        ids = list(self.campaigns)
        return (self.instance, self.trunk, self.channels, self.want, ids,
                [self.campaigns[c][1].window.tz for c in ids],
                [self.campaigns[c][1].clinic_channels for c in ids], self.lease)  # fmt: skip

    def calls(self, rows: Sequence[Any]) -> list[ClaimedCall]:
        out = []
        for row in rows:
            kind, settings = self.campaigns[row["campaign_id"]]
            out.append(ClaimedCall(row["o_dial"], row["id"], row["campaign_id"], kind,
                                   row["o_attempt"], target_of(row), settings))  # fmt: skip
        return out

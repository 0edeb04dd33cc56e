"""Campaign settings (parsed and validated from the API's JSON), targets and claimed calls."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from campaigns.errors import CampaignInvalid
from campaigns.policy import CallingWindow, ReminderSchedule, parse_rules, parse_spans

KINDS = ("reminder", "confirmation", "feedback", "recall", "waitlist", "custom")
FINAL_UNREACHED = "unreached"


@dataclass(frozen=True)
class CampaignSettings:
    """A campaign's dialog, schedule and policy (stored as JSON in ``campaigns.settings``)."""

    clinic_name: str = "Клиника"
    text: str = ""
    """The offer of a ``custom`` campaign, said after the greeting."""
    schedule: ReminderSchedule = field(
        default_factory=lambda: ReminderSchedule(parse_rules(["24h"]))
    )
    window: CallingWindow = field(default_factory=CallingWindow)
    max_attempts: int = 3
    retry_delay: timedelta = timedelta(hours=2)
    same_day_retry: bool = False
    """False: an unanswered call is retried on a later day (one campaign call a day)."""
    trunk: str = "trunk"
    caller_id: str = ""
    clinic_channels: int = 0
    """Concurrent calls of this campaign's clinic (0: only the trunk's limit)."""

    def to_json(self) -> dict[str, Any]:
        w, s = self.window, self.schedule
        return {
            "clinic_name": self.clinic_name, "text": self.text,
            "rules": [r.text for r in s.rules],
            "early_before": s.early_before.isoformat("minutes"),
            "evening_at": s.evening_at.isoformat("minutes"),
            "morning_at": s.morning_at.isoformat("minutes"),
            "tz": w.tz, "window": f"{w.start.isoformat('minutes')}-{w.end.isoformat('minutes')}",
            "weekdays": sorted(w.weekdays), "holidays": sorted(d.isoformat() for d in w.holidays),
            "quiet": [f"{a.isoformat('minutes')}-{b.isoformat('minutes')}" for a, b in w.quiet],
            "max_attempts": self.max_attempts,
            "retry_delay_min": int(self.retry_delay.total_seconds() // 60),
            "same_day_retry": self.same_day_retry, "trunk": self.trunk,
            "caller_id": self.caller_id, "clinic_channels": self.clinic_channels,
        }  # fmt: skip


def _str(raw: dict[str, Any], key: str, default: str, limit: int = 200, pattern: str = "") -> str:
    """Text without control characters (it reaches AMI headers and speech); ``pattern`` a
    full-match regex for identifiers (trunk, caller ID)."""
    value = raw.get(key, default)
    if not isinstance(value, str) or len(value) > limit:
        raise CampaignInvalid(message=f"{key}: expected text up to {limit} characters", field=key)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise CampaignInvalid(message=f"{key}: control characters are not allowed", field=key)
    if pattern and not re.fullmatch(pattern, value):
        raise CampaignInvalid(message=f"{key}: {value[:40]!r} is not allowed here", field=key)
    return value


def _int(raw: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise CampaignInvalid(message=f"{key}: expected an integer {lo}–{hi}", field=key)
    return value


def _time(raw: dict[str, Any], key: str, default: time) -> time:
    try:
        return time.fromisoformat(_str(raw, key, default.isoformat("minutes"), 5))
    except ValueError:
        raise CampaignInvalid(message=f"{key}: expected HH:MM", field=key) from None


def _window(raw: dict[str, Any]) -> CallingWindow:
    tz = _str(raw, "tz", "Europe/Moscow", 64)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise CampaignInvalid(message=f"tz: unknown time zone {tz!r}", field="tz") from None
    try:
        (start, end), *_ = parse_spans([_str(raw, "window", "09:00-20:00", 11)])
        quiet = parse_spans([str(q) for q in raw.get("quiet", [])][:4])
        holidays = frozenset(date.fromisoformat(str(d)) for d in raw.get("holidays", [])[:400])
        weekdays = frozenset(int(d) for d in raw.get("weekdays", range(7)))
    except (ValueError, TypeError) as e:
        raise CampaignInvalid(
            message=f"window/quiet/holidays/weekdays: {e}", field="window"
        ) from None
    if not start < end or not weekdays <= set(range(7)):
        raise CampaignInvalid(message="window: start must be before end", field="window")
    return CallingWindow(tz, start, end, weekdays, holidays, quiet)


def parse_settings(raw: object) -> CampaignSettings:
    """Settings from a request body's ``settings`` object.

    Raises CampaignInvalid naming the field."""
    if not isinstance(raw, dict):
        raise CampaignInvalid(message="settings: expected an object", field="settings")
    rules_raw = raw.get("rules", ["24h"])
    try:
        rules = parse_rules([str(r) for r in rules_raw][:6]) if isinstance(rules_raw, list) else ()
    except ValueError as e:
        raise CampaignInvalid(message=str(e), field="rules") from None
    schedule = ReminderSchedule(
        rules, early_before=_time(raw, "early_before", time(10, 0)),
        morning_at=_time(raw, "morning_at", time(8, 0)),
        evening_at=_time(raw, "evening_at", time(19, 0)),
    )  # fmt: skip
    return CampaignSettings(
        clinic_name=_str(raw, "clinic_name", "Клиника"), text=_str(raw, "text", "", 1000),
        schedule=schedule, window=_window(raw),
        max_attempts=_int(raw, "max_attempts", 3, 1, 10),
        retry_delay=timedelta(minutes=_int(raw, "retry_delay_min", 120, 1, 7 * 24 * 60)),
        same_day_retry=bool(raw.get("same_day_retry", False)),
        trunk=_str(raw, "trunk", "trunk", 64, r"[A-Za-z0-9_.-]+"),
        caller_id=_str(raw, "caller_id", "", 32, r"\+?[0-9]*"),
        clinic_channels=_int(raw, "clinic_channels", 0, 0, 1000),
    )  # fmt: skip


@dataclass(frozen=True)
class Target:
    """One planned call to a patient (a row of ``campaign_targets``)."""

    phone: str
    patient_key: str
    next_attempt_at: datetime
    patient_id: int | None = None
    full_name: str = ""
    lang: str = "ru"
    clinic: str = ""
    appointment_id: int | None = None
    doctor: str = ""
    doctor_id: int | None = None
    starts_at: datetime | None = None
    rule: str = ""


@dataclass(frozen=True)
class ClaimedCall:
    """A target this instance claimed and may dial now (``dial_id`` is the attempt row)."""

    dial_id: int
    target_id: int
    campaign_id: int
    kind: str
    attempt: int
    target: Target
    settings: CampaignSettings
    extra: dict[str, str] = field(default_factory=dict)

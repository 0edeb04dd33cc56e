"""The reminder scheduling policy: rules, early-morning visits, calling window, quiet hours,
holidays — table tests with explicit times (the policy's clock is its ``now`` argument)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigns.policy import (
    CallingWindow,
    ReminderSchedule,
    is_allowed,
    next_allowed,
    next_attempt,
    parse_rules,
    plan_reminders,
    prev_allowed,
)

MSK = ZoneInfo("Europe/Moscow")
WINDOW = CallingWindow("Europe/Moscow", time(9, 0), time(20, 0))
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=MSK)


def msk(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=MSK)


def plan(starts: datetime, rules: list[str], window: CallingWindow = WINDOW,
         now: datetime = NOW) -> list[tuple[str, datetime]]:  # fmt: skip
    sched = ReminderSchedule(parse_rules(rules))
    return [(p.rule, p.at) for p in plan_reminders(starts, sched, window, now=now)]


@pytest.mark.parametrize(
    ("starts", "rules", "expected"),
    [
        # Thursday 3 Dec 14:00: 3 days before, 24 h before, the morning of (08:00 → window 09:00)
        (
            msk(3, 14),
            ["3d", "24h", "morning"],
            [
                ("days_before:3", msk(30, 14, month=11)),
                ("hours_before:24", msk(2, 14)),
                ("morning_of", msk(3, 9)),
            ],
        ),
        # an early visit (08:30) is reminded the evening before instead of the morning of
        (msk(3, 8, 30), ["morning"], [("evening_before", msk(2, 19))]),
        # 2 h before a 09:30 visit is 07:30: before the window, and 09:00 is past the 1 h lead
        # → the last allowed minute of the day before
        (msk(3, 9, 30), ["2h"], [("hours_before:2", msk(2, 19, 59))]),
        # 3 days before an 08:00 visit is 08:00 → later the same day at the window's start
        (msk(3, 8), ["3d"], [("days_before:3", msk(30, 9, month=11))]),
        # two rules the same day: one call a day (the earlier)
        (msk(3, 8, 30), ["24h", "morning"], [("hours_before:24", msk(2, 9))]),
        # reminders already in the past are not planned
        (msk(21, 14, month=11), ["3d", "24h"], [("hours_before:24", msk(20, 14, month=11))]),
    ],
)
def test_plan_reminders(starts: datetime, rules: list[str],
                        expected: list[tuple[str, datetime]]) -> None:  # fmt: skip
    assert plan(starts, rules) == expected


def test_quiet_hours_move_an_evening_reminder_earlier() -> None:
    quiet = CallingWindow("Europe/Moscow", time(9), time(20), quiet=((time(18, 30), time(9, 0)),))
    assert plan(msk(3, 8, 0), ["morning"], quiet) == [("evening_before", msk(2, 18, 29))]


def test_a_holiday_moves_the_reminder_to_the_day_before() -> None:
    holiday = CallingWindow(
        "Europe/Moscow", time(9), time(20), holidays=frozenset({date(2026, 12, 2)})
    )
    assert plan(msk(3, 14), ["24h"], holiday) == [("hours_before:24", msk(1, 19, 59))]


def test_sunday_closed_moves_the_reminder_back_to_saturday() -> None:
    weekdays = CallingWindow("Europe/Moscow", time(9), time(20), weekdays=frozenset(range(6)))
    # Monday 7 Dec 15:00, 24 h before is Sunday 6 Dec
    assert plan(msk(7, 15), ["24h"], weekdays) == [("hours_before:24", msk(5, 19, 59))]


@pytest.mark.parametrize(
    ("utc", "allowed"),
    [
        (datetime(2026, 12, 3, 6, 0, tzinfo=ZoneInfo("UTC")), True),  # 09:00 MSK
        (datetime(2026, 12, 3, 5, 59, tzinfo=ZoneInfo("UTC")), False),  # 08:59 MSK
        (datetime(2026, 12, 3, 16, 59, tzinfo=ZoneInfo("UTC")), True),  # 19:59 MSK
        (datetime(2026, 12, 3, 17, 0, tzinfo=ZoneInfo("UTC")), False),  # 20:00 MSK: end excluded
    ],
)
def test_calling_window_is_in_the_clinic_time_zone(utc: datetime, allowed: bool) -> None:
    assert is_allowed(WINDOW, utc) is allowed


def test_quiet_hours_wrapping_midnight_cut_the_window() -> None:
    w = CallingWindow("Asia/Yekaterinburg", time(8), time(21), quiet=((time(20, 0), time(10, 0)),))
    zone = ZoneInfo("Asia/Yekaterinburg")
    assert not is_allowed(w, datetime(2026, 12, 3, 9, 30, tzinfo=zone))
    assert is_allowed(w, datetime(2026, 12, 3, 10, 0, tzinfo=zone))
    assert not is_allowed(w, datetime(2026, 12, 3, 20, 15, tzinfo=zone))
    assert next_allowed(w, datetime(2026, 12, 3, 20, 15, tzinfo=zone)) == datetime(
        2026, 12, 4, 10, 0, tzinfo=zone
    )
    assert prev_allowed(w, datetime(2026, 12, 3, 9, 0, tzinfo=zone)) == datetime(
        2026, 12, 2, 19, 59, tzinfo=zone
    )


def test_retry_waits_for_the_next_day_unless_same_day_is_allowed() -> None:
    after = msk(3, 11)
    assert next_attempt(WINDOW, after, delay=timedelta(hours=2), same_day=False) == msk(4, 9)
    assert next_attempt(WINDOW, after, delay=timedelta(hours=2), same_day=True) == msk(3, 13)
    # same day but past the window's end → the next morning
    assert next_attempt(WINDOW, msk(3, 19), delay=timedelta(hours=2), same_day=True) == msk(4, 9)


def test_a_window_that_never_opens_gives_none() -> None:
    closed = CallingWindow(weekdays=frozenset())
    assert next_allowed(closed, msk(3, 10)) is None
    assert plan(msk(3, 14), ["24h"], closed) == []


@pytest.mark.parametrize("bad", ["0d", "x", "3w", "-1h", ""])
def test_bad_rules_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="reminder rule"):
        parse_rules([bad])


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"clinic_name": "Улыбка\r\nAction: Hangup"}, "clinic_name"),
        ({"trunk": "trunk/evil"}, "trunk"),
        ({"caller_id": "74951234567\n"}, "caller_id"),
        ({"window": "20:00-09:00"}, "window"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"rules": ["tomorrow"]}, "rules"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_campaign_settings_refuse_what_could_reach_ami_or_make_no_sense(
    settings: dict[str, object], field: str
) -> None:
    from campaigns.errors import CampaignInvalid
    from campaigns.models import parse_settings

    with pytest.raises(CampaignInvalid) as caught:
        parse_settings(settings)
    assert caught.value.details["field"] == field

"""callbacks.policy: retry schedule inside business and patient hours, priorities, and which
ended calls are misses. Table tests; every instant is given (no clock)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from callbacks.config import CallbacksConfig
from callbacks.plugin import retry_policy
from callbacks.policy import (
    CallFacts,
    MissRules,
    classify_abandon,
    classify_ended,
    counts_as_attempt,
    priority,
)

MSK = ZoneInfo("Europe/Moscow")
POLICY = retry_policy(CallbacksConfig())  # 09:00-20:00 Mon-Sat, patient 09:00-21:00, 5/30 min


def at(text: str, tz: ZoneInfo = MSK) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def local(t: float | None, tz: ZoneInfo = MSK) -> str:
    assert t is not None
    return datetime.fromtimestamp(t, tz).strftime("%a %Y-%m-%d %H:%M")


# 2026-12-01 is a Tuesday; 2026-12-05 Saturday, 2026-12-06 Sunday
@pytest.mark.parametrize(("now", "attempts", "result", "expected"), [
    ("2026-12-01 10:42", 1, "busy", "Tue 2026-12-01 10:47"),          # +5 min
    ("2026-12-01 10:42", 2, "no_answer", "Tue 2026-12-01 11:12"),     # +30 min
    ("2026-12-01 10:42", 3, "failed", "Wed 2026-12-02 09:00"),        # next working morning
    ("2026-12-01 19:58", 1, "busy", "Wed 2026-12-02 09:00"),          # +5 min is after 20:00
    ("2026-12-05 19:50", 2, "busy", "Mon 2026-12-07 09:00"),          # Sunday is closed
    ("2026-12-01 07:10", 1, "busy", "Tue 2026-12-01 09:00"),          # before opening
    ("2026-12-01 10:42", 1, "operator_no_answer", "Tue 2026-12-01 10:42"),  # +5 s, same minute
])  # fmt: skip
def test_next_attempt_follows_delays_then_the_next_working_morning(
    now: str, attempts: int, result: str, expected: str
) -> None:
    assert local(POLICY.after(at(now), attempts, result)) == expected


def test_operator_failures_retry_in_seconds_and_do_not_count() -> None:
    t = at("2026-12-01 10:42")
    assert POLICY.after(t, 1, "operator_no_answer") == pytest.approx(t + 5.0)
    assert not counts_as_attempt("operator_no_answer")
    assert not counts_as_attempt("not_dialed")
    assert counts_as_attempt("busy")


@pytest.mark.parametrize("result", ["answered"])
def test_answered_stops(result: str) -> None:
    assert POLICY.after(at("2026-12-01 10:42"), 1, result) is None


def test_max_attempts_stops() -> None:
    assert POLICY.after(at("2026-12-01 10:42"), 4, "busy") is None
    assert POLICY.after(at("2026-12-01 10:42"), 3, "busy") is not None


def test_patient_hours_in_the_patients_zone() -> None:
    """Vladivostok is MSK+7: at 14:00 Moscow it is 21:00 there — too late to call; the
    earliest instant inside both windows is 09:00 Vladivostok = 02:00 Moscow, before the
    clinic opens, so: 09:00 Moscow next day (16:00 in Vladivostok)."""
    vvo = ZoneInfo("Asia/Vladivostok")
    t = POLICY.allowed_at(at("2026-12-01 14:00"), vvo)
    assert local(t) == "Wed 2026-12-02 09:00"
    assert local(t, vvo) == "Wed 2026-12-02 16:00"


def test_a_time_inside_both_windows_is_kept() -> None:
    t = at("2026-12-01 12:34")
    assert POLICY.allowed_at(t) == t


@pytest.mark.parametrize(("source", "vip", "reason", "expected"), [
    ("", False, "abandoned", 0),
    ("yandex", False, "abandoned", 10),
    ("organic", False, "abandoned", 0),
    ("", True, "abandoned", 100),
    ("yandex", True, "web_form", 111),
    ("", False, "bot", 1),
])  # fmt: skip
def test_priority_vip_then_paid_then_explicit(
    source: str, vip: bool, reason: str, expected: int
) -> None:
    got = priority(source=source, paid_sources=frozenset({"yandex"}), vip=vip, reason=reason)
    assert got == expected


RULES = MissRules(short_call_s=10, busy_wait_s=60, ivr_min_s=3, ignore_modes=frozenset({"bot"}))


def facts(**kw: object) -> CallFacts:
    base: dict[str, object] = dict(direction="inbound", state="ended", started_at=100.0,
                                   ended_at=130.0, queued_at=None, answered_at=None,
                                   talk_seconds=None, wait_seconds=None, mode="queue")
    base.update(kw)
    return CallFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "expected"), [
    ({}, "ivr_hangup"),                                              # hung up in the IVR
    ({"ended_at": 101.5}, None),                                     # a 1.5 s misdial
    ({"mode": "bot"}, None),                                         # the voice bot's call
    ({"mode": "voicemail"}, None),                                   # after-hours path
    ({"queued_at": 105.0}, "rang_out"),                              # queued, never answered
    ({"state": "abandoned", "queued_at": 105.0}, None),              # CallAbandoned did it
    ({"direction": "outbound"}, None),
    ({"queued_at": 105.0, "answered_at": 170.0, "talk_seconds": 4.0,
      "wait_seconds": 65.0}, "short_call"),                          # 4 s after a 65 s wait
    ({"queued_at": 105.0, "answered_at": 110.0, "talk_seconds": 4.0,
      "wait_seconds": 5.0}, None),                                   # short, but not busy
    ({"queued_at": 105.0, "answered_at": 170.0, "talk_seconds": 40.0,
      "wait_seconds": 65.0}, None),                                  # a real conversation
])  # fmt: skip
def test_classify_ended(kw: dict[str, object], expected: str | None) -> None:
    assert classify_ended(facts(**kw), RULES) == expected


def test_abandon_at_the_queue_timeout_is_a_ring_out() -> None:
    assert classify_abandon(9.0, 45.0) == "abandoned"
    assert classify_abandon(45.0, 45.0) == "queue_timeout"

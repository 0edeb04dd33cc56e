"""Pure decisions of the callbacks domain: which ended call is a miss, a job's priority, and
when its next attempt may happen (retry delays, business hours, the patient's hours).

No I/O and no clock of its own: every function takes ``now`` (POSIX seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

DAY_MIN = 24 * 60


@dataclass(frozen=True)
class Window:
    """Allowed minutes of a day ``[start, end)`` on ISO ``days`` in zone ``tz``."""

    tz: ZoneInfo
    start: int
    end: int
    days: frozenset[int] = frozenset(range(1, 8))

    def next_open(self, t: float) -> float:
        """The earliest instant ≥ ``t`` inside the window (``t`` itself when inside)."""
        local = datetime.fromtimestamp(t, self.tz)
        for offset in range(0, 15):
            day = (local + timedelta(days=offset)).date()
            if day.isoweekday() not in self.days:
                continue
            opens = datetime(day.year, day.month, day.day, tzinfo=self.tz) + timedelta(
                minutes=self.start
            )
            closes = opens + timedelta(minutes=self.end - self.start)
            if local < closes:
                return max(t, opens.timestamp())
        raise ValueError("window has no open day")  # days is never empty (config validates)

    def next_morning(self, t: float) -> float:
        """The window's opening on the first allowed day after ``t``'s local day."""
        local = datetime.fromtimestamp(t, self.tz)
        tomorrow = datetime(local.year, local.month, local.day, tzinfo=self.tz) + timedelta(days=1)
        return self.next_open(tomorrow.timestamp())


@dataclass(frozen=True)
class RetryPolicy:
    business: Window
    patient_start: int
    patient_end: int
    delays: tuple[float, ...]
    max_attempts: int
    operator_retry_s: float

    def patient_window(self, tz: ZoneInfo | None) -> Window:
        return Window(tz or self.business.tz, self.patient_start, self.patient_end)

    def allowed_at(self, t: float, patient_tz: ZoneInfo | None = None) -> float:
        """Earliest instant ≥ ``t`` inside business hours *and* the patient's hours."""
        patient = self.patient_window(patient_tz)
        for _ in range(30):
            b = self.business.next_open(t)
            p = patient.next_open(b)
            if p == b:
                return b
            t = p
        return t  # windows never overlap: the last candidate (config allowed it)

    def after(
        self, now: float, attempts: int, result: str, patient_tz: ZoneInfo | None = None
    ) -> float | None:
        """When to try again after an attempt ended with ``result`` (``attempts`` counted
        so far, this one included); None: stop (reached, or out of attempts)."""
        if result == "answered":
            return None
        if result in ("operator_no_answer", "not_dialed"):
            return self.allowed_at(now + self.operator_retry_s, patient_tz)
        if attempts >= self.max_attempts:
            return None
        if attempts - 1 < len(self.delays):
            return self.allowed_at(now + self.delays[attempts - 1], patient_tz)
        return self.allowed_at(self.business.next_morning(now), patient_tz)


def counts_as_attempt(result: str) -> bool:
    """Whether an attempt rang the patient (operator failures and AMI outages do not)."""
    return result not in ("operator_no_answer", "not_dialed")


def priority(*, source: str, paid_sources: frozenset[str], vip: bool, reason: str) -> int:
    """Higher first: VIP patients, then paid-ad sources, then requests the patient made."""
    score = 0
    if vip:
        score += 100
    if source and source in paid_sources:
        score += 10
    if reason in ("web_form", "bot", "virtual_hold"):
        score += 1
    return score


@dataclass(frozen=True)
class CallFacts:
    """What classification reads from a ``CallEnded`` snapshot."""

    direction: str
    state: str
    started_at: float
    ended_at: float | None
    queued_at: float | None
    answered_at: float | None
    talk_seconds: float | None
    wait_seconds: float | None
    mode: str = ""
    """``ROUTE_MODE`` routing set (``queue``, ``bot``, ``voicemail``, ``callback``)."""


@dataclass(frozen=True)
class MissRules:
    short_call_s: float
    busy_wait_s: float
    ivr_min_s: float
    ignore_modes: frozenset[str]


ROUTED_AWAY = frozenset({"voicemail", "callback"})
"""Modes the after-hours path turns into jobs (with routing's reasons)."""


def classify_ended(f: CallFacts, rules: MissRules) -> str | None:
    """The miss reason of an ended call, or None. Abandons are handled at CallAbandoned (sooner);
    calls routing sent to voicemail/callback by the after-hours path."""
    if f.direction != "inbound" or f.state == "abandoned" or f.mode in ROUTED_AWAY:
        return None
    if f.answered_at is not None:
        talk = f.talk_seconds or 0.0
        if talk < rules.short_call_s and (f.wait_seconds or 0.0) >= rules.busy_wait_s:
            return "short_call"
        return None
    if f.queued_at is not None:
        return "rang_out"
    if f.mode in rules.ignore_modes:
        return None
    duration = (f.ended_at or f.started_at) - f.started_at
    return "ivr_hangup" if duration >= rules.ivr_min_s else None


def classify_abandon(hold_seconds: float, ring_out_s: float) -> str:
    """``queue_timeout`` when the caller was held until the dialplan's queue timeout."""
    return "queue_timeout" if hold_seconds >= ring_out_s - 0.5 else "abandoned"

"""When a campaign may call: reminder rules, the clinic's calling window, patients' quiet hours,
holidays. Pure: every function takes ``now``/the appointment time explicitly (the runner passes
its settable clock), so the rules are table-tested without sleeping.

Times are timezone-aware ``datetime``s; the window and quiet hours are wall-clock times in the
clinic's (or the patient's) time zone. Intervals are half-open ``[start, end)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

RuleKind = Literal["days_before", "hours_before", "morning_of"]
_DAY_MIN = 24 * 60
_SEARCH_DAYS = 21
"""How far ``next_allowed``/``prev_allowed`` look (a clinic closed three weeks is no window)."""


@dataclass(frozen=True)
class ReminderRule:
    """One reminder of an appointment type: ``days_before`` N (same time of day, N days
    earlier), ``hours_before`` N, or ``morning_of`` (the visit's day at ``morning_at``)."""

    kind: RuleKind
    amount: int = 0

    @property
    def name(self) -> str:
        return "morning_of" if self.kind == "morning_of" else f"{self.kind}:{self.amount}"

    @property
    def text(self) -> str:
        """As a clinic writes it: ``3d``, ``24h``, ``morning`` (``parse_rules`` reads it)."""
        if self.kind == "morning_of":
            return "morning"
        return f"{self.amount}{'d' if self.kind == 'days_before' else 'h'}"


@dataclass(frozen=True)
class ReminderSchedule:
    """The reminders a clinic sets for one appointment type.

    An appointment starting before ``early_before`` is reminded at ``evening_at`` the evening
    before instead of ``morning_of``. No reminder closer than ``min_lead`` to the visit."""

    rules: tuple[ReminderRule, ...]
    early_before: time = time(10, 0)
    morning_at: time = time(8, 0)
    evening_at: time = time(19, 0)
    min_lead: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class CallingWindow:
    """When the clinic calls: ``start``–``end`` local time on ``weekdays`` (0 = Monday),
    never on ``holidays``; ``quiet`` are the patient's quiet hours (may wrap midnight)."""

    tz: str = "Europe/Moscow"
    start: time = time(9, 0)
    end: time = time(20, 0)
    weekdays: frozenset[int] = frozenset(range(7))
    holidays: frozenset[date] = frozenset()
    quiet: tuple[tuple[time, time], ...] = field(default_factory=tuple)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


@dataclass(frozen=True)
class PlannedCall:
    rule: str
    at: datetime


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _subtract(spans: list[tuple[int, int]], cut: tuple[int, int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if cut[1] <= a or cut[0] >= b:
            out.append((a, b))
            continue
        if a < cut[0]:
            out.append((a, cut[0]))
        if cut[1] < b:
            out.append((cut[1], b))
    return out


def day_spans(window: CallingWindow, day: date) -> list[tuple[int, int]]:
    """Allowed ``[from, to)`` minutes after local midnight of ``day`` (empty: no calls)."""
    if day in window.holidays or day.weekday() not in window.weekdays:
        return []
    spans = [(_minutes(window.start), _minutes(window.end) or _DAY_MIN)]
    for q_start, q_end in window.quiet:
        a, b = _minutes(q_start), _minutes(q_end)
        cuts = [(a, b)] if a < b else [(a, _DAY_MIN), (0, b)]
        for cut in cuts:
            spans = _subtract(spans, cut)
    return [s for s in spans if s[0] < s[1]]


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    base = datetime.combine(day, time(0, 0), tzinfo=zone)
    return (base + timedelta(minutes=minute)).astimezone(zone)


def is_allowed(window: CallingWindow, when: datetime) -> bool:
    """May the clinic call at ``when`` (aware)?"""
    local = when.astimezone(window.zone)
    minute = local.hour * 60 + local.minute + local.second / 60
    return any(a <= minute < b for a, b in day_spans(window, local.date()))


def next_allowed(window: CallingWindow, when: datetime) -> datetime | None:
    """The first allowed moment at or after ``when``; None if none within three weeks."""
    if is_allowed(window, when):
        return when
    local = when.astimezone(window.zone)
    minute = local.hour * 60 + local.minute + local.second / 60
    for offset in range(_SEARCH_DAYS):
        day = local.date() + timedelta(days=offset)
        for a, _b in day_spans(window, day):
            if offset > 0 or a >= minute:
                return _at(day, a, window.zone)
    return None


def prev_allowed(window: CallingWindow, when: datetime) -> datetime | None:
    """The last allowed minute at or before ``when``; None if none within three weeks."""
    if is_allowed(window, when):
        return when
    local = when.astimezone(window.zone)
    minute = local.hour * 60 + local.minute
    for offset in range(_SEARCH_DAYS):
        day = local.date() - timedelta(days=offset)
        for _a, b in reversed(day_spans(window, day)):
            if offset > 0 or b <= minute:
                return _at(day, b - 1, window.zone)
    return None


def _nominal(rule: ReminderRule, starts: datetime, sched: ReminderSchedule) -> tuple[str, datetime]:
    """The rule's ideal moment before adjustment (early visits: the evening before)."""
    zone = starts.tzinfo
    if rule.kind == "days_before":
        return rule.name, starts - timedelta(days=rule.amount)
    if rule.kind == "hours_before":
        return rule.name, starts - timedelta(hours=rule.amount)
    if starts.timetz().replace(tzinfo=None) < sched.early_before:
        eve = datetime.combine(starts.date() - timedelta(days=1), sched.evening_at, tzinfo=zone)
        return "evening_before", eve
    return rule.name, datetime.combine(starts.date(), sched.morning_at, tzinfo=zone)


def _adjust(window: CallingWindow, ideal: datetime, deadline: datetime) -> datetime | None:
    """Later the same local day if that is allowed and before ``deadline``, else the last
    allowed moment before ``ideal``."""
    forward = next_allowed(window, ideal)
    zone = window.zone
    same_day = (
        forward is not None and forward.astimezone(zone).date() == ideal.astimezone(zone).date()
    )
    if forward is not None and same_day and forward <= deadline:
        return forward
    back = prev_allowed(window, ideal)
    return back if back is not None and back <= deadline else None


def plan_reminders(
    starts_at: datetime, schedule: ReminderSchedule, window: CallingWindow, *, now: datetime
) -> list[PlannedCall]:
    """The reminder calls for an appointment starting at ``starts_at`` (aware), in time order,
    at most one per local day, none in the past or closer than ``schedule.min_lead``."""
    starts = starts_at.astimezone(window.zone)
    deadline = starts - schedule.min_lead
    planned: dict[date, PlannedCall] = {}
    for rule in schedule.rules:
        name, ideal = _nominal(rule, starts, schedule)
        at = _adjust(window, ideal, deadline)
        if at is None or at < now:
            continue
        day = at.astimezone(window.zone).date()
        if day not in planned or planned[day].at > at:
            planned[day] = PlannedCall(name, at)
    return sorted(planned.values(), key=lambda p: p.at)


def next_attempt(
    window: CallingWindow, after: datetime, *, delay: timedelta, same_day: bool
) -> datetime | None:
    """When to retry a call that was not answered at ``after``: ``delay`` later in an allowed
    moment; with ``same_day`` False not before the next local day (one call a day)."""
    start = after + delay
    if not same_day:
        local = after.astimezone(window.zone)
        tomorrow = datetime.combine(
            local.date() + timedelta(days=1), time(0, 0), tzinfo=window.zone
        )
        start = max(start, tomorrow)
    return next_allowed(window, start)


def parse_rules(texts: Iterable[str]) -> tuple[ReminderRule, ...]:
    """``["3d", "24h", "morning"]`` → rules. Raises ValueError naming the bad entry."""
    rules: list[ReminderRule] = []
    for text in texts:
        t = text.strip().lower()
        if t in ("morning", "morning_of"):
            rules.append(ReminderRule("morning_of"))
        elif t[:-1].isdigit() and t[-1] in "dh" and int(t[:-1]) > 0:
            kind: RuleKind = "days_before" if t[-1] == "d" else "hours_before"
            rules.append(ReminderRule(kind, int(t[:-1])))
        else:
            raise ValueError(f"reminder rule {text!r}: expected Nd, Nh or morning")
    return tuple(rules)


def parse_spans(texts: Sequence[str]) -> tuple[tuple[time, time], ...]:
    """``["21:00-09:00"]`` → quiet spans. Raises ValueError."""
    out = []
    for text in texts:
        a, sep, b = text.partition("-")
        if not sep:
            raise ValueError(f"time span {text!r}: expected HH:MM-HH:MM")
        out.append((time.fromisoformat(a.strip()), time.fromisoformat(b.strip())))
    return tuple(out)

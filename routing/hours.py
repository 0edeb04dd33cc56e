"""Business hours of a clinic: weekly opening intervals, holidays and special (short) days,
evaluated in the clinic's own time zone (``zoneinfo``, so DST shifts are handled by the tz data).

Pure: standard library only. Parsing raises ``RulesError`` naming the rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from routing.errors import RulesError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_INTERVAL = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")
OpenState = Literal["open", "closed", "holiday"]

Interval = tuple[int, int]
"""Opening interval in minutes since local midnight: [start, end), end ≤ 1440."""


def parse_intervals(text: object, rule: str) -> tuple[Interval, ...]:
    """``"08:00-13:00, 14:00-20:00"`` → ((480, 780), (840, 1200)); ``"closed"`` → ().

    Intervals must be increasing and non-overlapping; ``24:00`` is allowed as an end.
    Raises RulesError naming ``rule``.
    """
    if not isinstance(text, str):
        raise RulesError(message=f"{rule}: expected a string like '08:00-20:00'", rule=rule)
    if text.strip().lower() == "closed":
        return ()
    out: list[Interval] = []
    for part in text.split(","):
        m = _INTERVAL.fullmatch(part.strip())
        if m is None:
            raise RulesError(
                message=f"{rule}: {part.strip()!r} is not HH:MM-HH:MM or 'closed'", rule=rule
            )
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 1440 or start >= end:
            raise RulesError(message=f"{rule}: {part.strip()!r} is not a valid interval", rule=rule)
        if out and start < out[-1][1]:
            raise RulesError(message=f"{rule}: intervals overlap or are out of order", rule=rule)
        out.append((start, end))
    return tuple(out)


def parse_date(text: object, rule: str) -> date:
    """``"2026-12-31"`` (or a TOML date) → date. Raises RulesError naming ``rule``."""
    if isinstance(text, date) and not isinstance(text, datetime):
        return text
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise RulesError(message=f"{rule}: {text!r} is not a YYYY-MM-DD date", rule=rule) from None


def parse_timezone(text: object, rule: str) -> ZoneInfo:
    """An IANA zone name → ZoneInfo. Raises RulesError naming ``rule``."""
    if not isinstance(text, str) or not text:
        raise RulesError(message=f"{rule}: expected an IANA time zone name", rule=rule)
    try:
        return ZoneInfo(text)
    except (ValueError, KeyError):
        raise RulesError(message=f"{rule}: unknown time zone {text!r}", rule=rule) from None


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Opening hours in ``tz``. ``weekly`` has 7 entries, Monday first."""

    tz: ZoneInfo
    weekly: tuple[tuple[Interval, ...], ...]
    holidays: frozenset[date] = frozenset()
    dates: Mapping[date, tuple[Interval, ...]] = field(default_factory=dict)

    def state(self, now: datetime) -> OpenState:
        """Open, closed or holiday at the aware instant ``now`` (converted to local time).

        A date in ``dates`` (a short pre-holiday day, a Saturday working day) wins over the
        weekly schedule; a holiday is closed all day.
        """
        local = now.astimezone(self.tz)
        day = local.date()
        if day in self.dates:
            intervals = self.dates[day]
        elif day in self.holidays:
            return "holiday"
        else:
            intervals = self.weekly[local.weekday()]
        minute = local.hour * 60 + local.minute
        if any(start <= minute < end for start, end in intervals):
            return "open"
        return "closed"


ALWAYS_OPEN = BusinessHours(tz=ZoneInfo("UTC"), weekly=(((0, 1440),),) * 7)

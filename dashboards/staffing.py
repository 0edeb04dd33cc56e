"""Staffing per hour of the week: average calls per hour over the last N weeks, their AHT, the
operators Erlang C says are needed for the service-level target, and how many were logged in.
Pure: standard library only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dashboards.erlang import agents_needed, service_level, traffic

DEFAULT_AHT = 180.0
"""Seconds, used for an hour that had calls but no finished answered one to measure."""


@dataclass(frozen=True)
class Traffic:
    dow: int
    """ISO weekday, 1 = Monday."""
    hour: int
    calls: int
    """Calls offered to the queues in this hour over all the weeks."""
    aht: float | None


def staffing_table(
    traffic_rows: Iterable[Traffic], weeks: int, logged_in: Mapping[tuple[int, int], float],
    *, sl_seconds: float, sl_target: float, wrapup_seconds: float = 0.0,
) -> list[dict[str, Any]]:
    """One row per (weekday, hour) that had traffic or logged-in operators, Monday 00 first.
    ``needed`` = fewest operators reaching ``sl_target`` within ``sl_seconds``; ``expected_sl``
    = the service level Erlang C predicts with the operators that were logged in."""
    by_slot = {(t.dow, t.hour): t for t in traffic_rows}
    rows = []
    for slot in sorted(set(by_slot) | set(logged_in)):
        t = by_slot.get(slot)
        per_hour = (t.calls / weeks) if t else 0.0
        aht = (t.aht if t and t.aht else DEFAULT_AHT) + wrapup_seconds
        needed = agents_needed(per_hour, aht, sl_seconds, sl_target) if per_hour else 0
        present = logged_in.get(slot)
        expected = None
        if present is not None and per_hour:
            expected = service_level(int(present), traffic(per_hour, aht), aht, sl_seconds)
        rows.append({
            "dow": slot[0], "hour": slot[1], "calls_per_hour": round(per_hour, 2),
            "aht": round(aht, 1), "erlangs": round(traffic(per_hour, aht), 3), "needed": needed,
            "logged_in": None if present is None else round(present, 1),
            "expected_sl": None if expected is None else round(expected, 4),
            "short": None if present is None else max(0, needed - int(present)),
        })  # fmt: skip
    return rows

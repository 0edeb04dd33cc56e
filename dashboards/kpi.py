"""Queue service figures over time windows, from counts kept per minute. Pure: stdlib only.

A *bucket* holds what happened to calls leaving a queue during one minute: answered (with their
queue wait), abandoned (short ones apart), and finished conversations (talk time). From a sum of
buckets come the supervisor's figures:

- service level = answered within ``sl_seconds`` / offered, where offered = answered + abandoned,
  minus short abandons (< ``short_abandon_seconds``) when the clinic excludes them;
- abandon rate = abandoned / offered (same exclusion);
- ASA (average speed of answer) = mean queue wait of answered calls, seconds;
- AHT (average handle time) = mean talk time of finished answered calls, seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SlPolicy:
    """How the clinic counts its service level (``[dashboards]``)."""

    sl_seconds: float = 20.0
    sl_target: float = 0.8
    short_abandon_seconds: float = 5.0
    exclude_short_abandons: bool = True


@dataclass(slots=True)
class Bucket:
    """Counts for one queue and one minute."""

    answered: int = 0
    answered_in_sl: int = 0
    wait_sum: float = 0.0
    abandoned: int = 0
    short_abandoned: int = 0
    handled: int = 0
    talk_sum: float = 0.0

    def add(self, other: Bucket) -> None:
        self.answered += other.answered
        self.answered_in_sl += other.answered_in_sl
        self.wait_sum += other.wait_sum
        self.abandoned += other.abandoned
        self.short_abandoned += other.short_abandoned
        self.handled += other.handled
        self.talk_sum += other.talk_sum


def record_answer(bucket: Bucket, wait: float, policy: SlPolicy) -> None:
    """An answered call that waited ``wait`` seconds in the queue."""
    bucket.answered += 1
    bucket.wait_sum += max(0.0, wait)
    if wait <= policy.sl_seconds:
        bucket.answered_in_sl += 1


def record_abandon(bucket: Bucket, wait: float, policy: SlPolicy) -> None:
    """A caller who hung up after ``wait`` seconds in the queue."""
    bucket.abandoned += 1
    if wait < policy.short_abandon_seconds:
        bucket.short_abandoned += 1


def record_talk(bucket: Bucket, talk: float) -> None:
    """A finished answered call with ``talk`` seconds of conversation."""
    bucket.handled += 1
    bucket.talk_sum += max(0.0, talk)


def total(buckets: Iterable[Bucket]) -> Bucket:
    out = Bucket()
    for b in buckets:
        out.add(b)
    return out


@dataclass(frozen=True)
class QueueFigures:
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    service_level: float | None
    """0..1, None when nothing was offered."""
    abandon_rate: float | None
    asa: float | None
    """Seconds; None when nothing was answered."""
    aht: float | None
    """Seconds; None when no answered call has finished."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "offered": self.offered, "answered": self.answered, "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned, "service_level": _r(self.service_level),
            "abandon_rate": _r(self.abandon_rate), "asa": _r(self.asa), "aht": _r(self.aht),
        }  # fmt: skip


def figures(b: Bucket, policy: SlPolicy) -> QueueFigures:
    """The supervisor's figures from summed counts (see the module docstring)."""
    excluded = b.short_abandoned if policy.exclude_short_abandons else 0
    offered = b.answered + b.abandoned - excluded
    abandoned = b.abandoned - excluded
    return QueueFigures(
        offered=offered,
        answered=b.answered,
        abandoned=abandoned,
        short_abandoned=b.short_abandoned,
        service_level=b.answered_in_sl / offered if offered else None,
        abandon_rate=abandoned / offered if offered else None,
        asa=b.wait_sum / b.answered if b.answered else None,
        aht=b.talk_sum / b.handled if b.handled else None,
    )


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 4)

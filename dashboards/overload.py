"""The overload signal ("reduce advertising"): a pure state machine with hysteresis.

A queue becomes *overloaded* when its estimated wait or its abandon rate has stayed above the
raise thresholds for ``raise_after`` seconds without a break; it goes *back to normal* when both
have stayed below the (lower) clear thresholds for ``clear_after`` seconds. Any reading that
breaks the run restarts its timer, so a reading between the two thresholds keeps the current
state either way (hysteresis: no flapping around one threshold).
Times are seconds on whatever clock the caller passes (tests set it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["normal", "overloaded"]


@dataclass(frozen=True)
class OverloadThresholds:
    wait_raise: float = 120.0
    """Estimated wait, seconds, above which the queue counts as overloaded."""
    wait_clear: float = 60.0
    abandon_raise: float = 0.2
    """Abandon rate (0..1) above which the queue counts as overloaded."""
    abandon_clear: float = 0.1
    raise_after: float = 180.0
    """Seconds the readings must stay above before the alarm is raised."""
    clear_after: float = 300.0


@dataclass(frozen=True)
class Transition:
    queue: str
    state: State
    at: float
    estimated_wait: float
    abandon_rate: float
    since: float
    """When the condition that led here started."""


class OverloadDetector:
    """One queue's state. ``observe`` is called with each reading (e.g. every second)."""

    def __init__(self, queue: str, thresholds: OverloadThresholds) -> None:
        self.queue = queue
        self.t = thresholds
        self.state: State = "normal"
        self._since: float | None = None
        """Start of the current unbroken run toward the other state."""

    def observe(self, now: float, estimated_wait: float, abandon_rate: float) -> Transition | None:
        """Feed one reading; returns the transition when the state changes, else None."""
        if self.state == "normal":
            toward = estimated_wait > self.t.wait_raise or abandon_rate > self.t.abandon_raise
            hold = self.t.raise_after
        else:
            toward = estimated_wait < self.t.wait_clear and abandon_rate < self.t.abandon_clear
            hold = self.t.clear_after
        if not toward:
            self._since = None
            return None
        if self._since is None:
            self._since = now
        if now - self._since < hold:
            return None
        since, self._since = self._since, None
        self.state = "normal" if self.state == "overloaded" else "overloaded"
        return Transition(self.queue, self.state, now, estimated_wait, abandon_rate, since)


def estimated_wait(longest_wait: float, waiting: int, aht: float | None, agents: int) -> float:
    """Seconds a caller joining now is expected to wait: the longer of the longest current
    wait and the queue ahead drained by the logged-in agents (``waiting × AHT / agents``);
    with nobody logged in, anyone waiting means an unbounded wait (``inf``)."""
    if waiting <= 0:
        return max(0.0, longest_wait)
    if agents <= 0:
        return float("inf")
    return max(longest_wait, waiting * (aht or 0.0) / agents)

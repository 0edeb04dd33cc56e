"""The one backoff: jittered exponential delays between retries, capped, with reset.

Every reconnecting or retrying component (AMI, ARI, PostgreSQL, Redis, the CRM outbox) uses it
instead of writing ``min(cap, base * 2 ** n)`` again. Standard library only.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def exponential_delay(
    attempt: int,
    *,
    minimum: float,
    maximum: float,
    factor: float = 2.0,
    jitter: float = 0.5,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 = the first retry).

    ``minimum * factor ** attempt`` capped at ``maximum``; then up to ``jitter`` of it (a
    fraction, 0..1) is replaced by a random share, so many clients retrying together spread
    out (``jitter=0.5``: between half and all of the delay).
    """
    base = min(maximum, minimum * factor ** min(max(attempt, 0), 64))
    return base * (1.0 - jitter) + base * jitter * rng()


class Backoff:
    """Stateful form: ``next()`` gives the next delay and counts the failure; ``reset()`` after
    a success starts from ``minimum`` again."""

    def __init__(
        self,
        minimum: float,
        maximum: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < minimum <= maximum:
            raise ValueError(f"backoff needs 0 < minimum <= maximum, got {minimum}, {maximum}")
        self.minimum, self.maximum = minimum, maximum
        self._factor, self._jitter, self._rng = factor, jitter, rng
        self.failures = 0

    def next(self) -> float:
        delay = exponential_delay(
            self.failures, minimum=self.minimum, maximum=self.maximum,
            factor=self._factor, jitter=self._jitter, rng=self._rng,
        )  # fmt: skip
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0

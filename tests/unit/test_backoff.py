"""The one backoff helper every reconnecting component uses."""

from __future__ import annotations

import pytest

from callserver.core.backoff import Backoff, exponential_delay


def test_backoff_stays_bounded_in_a_very_long_outage() -> None:
    """Moved from the call writer's tests: hours of retries never overflow or exceed the cap."""
    backoff = Backoff(0.2, 5.0, jitter=0.0)
    delays = [backoff.next() for _ in range(5000)]
    assert delays[0] == 0.2 and delays[1] == 0.4 and max(delays) == 5.0


def test_jitter_keeps_each_delay_between_its_share_and_the_whole() -> None:
    lows = Backoff(1.0, 60.0, jitter=0.5, rng=lambda: 0.0)
    highs = Backoff(1.0, 60.0, jitter=0.5, rng=lambda: 1.0)
    assert [lows.next() for _ in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert [highs.next() for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]


def test_reset_starts_again_from_the_minimum() -> None:
    backoff = Backoff(0.5, 30.0, jitter=0.0)
    for _ in range(6):
        backoff.next()
    assert backoff.failures == 6
    backoff.reset()
    assert backoff.next() == 0.5


def test_the_stateless_form_serves_counted_attempts() -> None:
    """The CRM outbox keeps its attempt count in PostgreSQL."""
    assert exponential_delay(0, minimum=2.0, maximum=600.0, jitter=0.0) == 2.0
    assert exponential_delay(3, minimum=2.0, maximum=600.0, jitter=0.0) == 16.0
    assert exponential_delay(50, minimum=2.0, maximum=600.0, jitter=0.0) == 600.0
    assert exponential_delay(-1, minimum=2.0, maximum=600.0, jitter=0.0) == 2.0


def test_nonsense_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="minimum"):
        Backoff(0.0, 1.0)
    with pytest.raises(ValueError, match="minimum"):
        Backoff(5.0, 1.0)

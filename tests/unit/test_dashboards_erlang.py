"""Erlang C against published values.

- erlang.com (Westbay), "The Erlang-C formula" worked example: 360 calls per half hour, 4 minute
  calls, 55 agents, 15 s target → traffic 48 Erlangs, probability of waiting 0.2387 (23.87%),
  average speed of answer 8.2 s, service level 84.6%.
- Call Centre Helper, "Erlang C formula – made simple": 100 calls in 30 minutes, AHT 180 s
  (10 Erlangs) → probability of waiting 68.21% with 11 agents, 44.94% with 12, 28.53% with 13.
"""

from __future__ import annotations

import math

import pytest

from dashboards.erlang import (
    agents_needed,
    average_speed_of_answer,
    erlang_c,
    service_level,
    traffic,
)


def test_westbay_worked_example() -> None:
    load = traffic(720, 240)
    assert load == pytest.approx(48.0)
    assert erlang_c(55, load) == pytest.approx(0.2387, abs=5e-5)
    assert average_speed_of_answer(55, load, 240) == pytest.approx(8.2, abs=0.05)
    assert service_level(55, load, 240, 15) == pytest.approx(0.846, abs=5e-4)


@pytest.mark.parametrize(("agents", "waiting"), [(11, 0.6821), (12, 0.4494), (13, 0.2853)])
def test_call_centre_helper_table(agents: int, waiting: float) -> None:
    assert erlang_c(agents, traffic(200, 180)) == pytest.approx(waiting, abs=5e-5)


def test_agents_needed_is_the_first_count_reaching_the_goal() -> None:
    load = traffic(200, 180)
    n = agents_needed(200, 180, 20, 0.8)
    assert service_level(n, load, 180, 20) >= 0.8 > service_level(n - 1, load, 180, 20)
    assert n == 14  # 13 agents give 79.6% in 20 s, just short of 80%


def test_more_agents_never_lower_the_service_level() -> None:
    load = traffic(100, 180)
    levels = [service_level(n, load, 180, 20) for n in range(6, 15)]
    assert levels == sorted(levels)


def test_edges() -> None:
    assert agents_needed(0, 180, 20, 0.8) == 0
    assert erlang_c(5, 5.0) == 1.0 and service_level(5, 5.0, 180, 20) == 0.0
    assert math.isinf(average_speed_of_answer(4, 5.0, 180))
    assert erlang_c(3, 0.0) == 0.0
    with pytest.raises(ValueError):
        agents_needed(100, 180, 20, 1.0)
    # large centres stay numerically stable (no factorial overflow)
    assert 0 < erlang_c(600, traffic(20000, 100)) < 1

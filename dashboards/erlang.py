"""Erlang C (M/M/N queue): probability of waiting, service level, average speed of answer and the
agents needed for a service-level target. Pure: standard library only.

Units: ``calls_per_hour`` is arrivals per hour, ``aht`` (average handle time) and ``target`` are
seconds; traffic intensity ``A = calls_per_hour * aht / 3600`` Erlangs.
"""

from __future__ import annotations

import math

MAX_AGENTS = 2000


def traffic(calls_per_hour: float, aht: float) -> float:
    """Offered load in Erlangs."""
    return max(0.0, calls_per_hour) * max(0.0, aht) / 3600.0


def erlang_c(agents: int, load: float) -> float:
    """Probability an arriving call has to wait (0..1); 1.0 when ``agents <= load`` (unstable).

    Uses the Erlang B recursion (``B(n) = A·B(n-1) / (n + A·B(n-1))``), stable for large N,
    then ``C = N·B / (N − A·(1 − B))``.
    """
    if load <= 0:
        return 0.0
    if agents <= load:
        return 1.0
    b = 1.0
    for n in range(1, agents + 1):
        b = load * b / (n + load * b)
    return agents * b / (agents - load * (1.0 - b))


def service_level(agents: int, load: float, aht: float, target: float) -> float:
    """Share of calls answered within ``target`` seconds (0..1)."""
    if load <= 0:
        return 1.0
    if agents <= load:
        return 0.0
    pw = erlang_c(agents, load)
    return max(0.0, 1.0 - pw * math.exp(-(agents - load) * target / aht))


def average_speed_of_answer(agents: int, load: float, aht: float) -> float:
    """Mean wait in seconds over all calls; ``math.inf`` when ``agents <= load``."""
    if load <= 0:
        return 0.0
    if agents <= load:
        return math.inf
    return erlang_c(agents, load) * aht / (agents - load)


def agents_needed(calls_per_hour: float, aht: float, target: float, goal: float) -> int:
    """Fewest agents whose service level (answered within ``target`` s) reaches ``goal`` (0..1).

    0 when there is no traffic. Raises ValueError for a goal outside (0, 1) or when even
    ``MAX_AGENTS`` agents are not enough.
    """
    if not 0.0 < goal < 1.0:
        raise ValueError(f"service-level goal must be in (0, 1), got {goal}")
    load = traffic(calls_per_hour, aht)
    if load <= 0:
        return 0
    n = max(1, math.floor(load) + 1)
    while n <= MAX_AGENTS:
        if service_level(n, load, aht, target) >= goal:
            return n
        n += 1
    raise ValueError(f"more than {MAX_AGENTS} agents needed for {load:.1f} Erlangs")

"""``LiveState`` adapter over the in-process live model (``callserver.core.model.LiveModel``).

It is the fallback when Redis is down (and the primary on a single instance). The model's agent
and queue views are rebuilt at most every ``max_age_s`` seconds, so a burst of calls costs one
rebuild, not one per call. Estimated wait: 0 while a member is free, else the longest current
wait in the queue (a lower bound, good enough for an overflow threshold).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Protocol

from callserver.core.events import AgentSnapshot
from callserver.core.model.records import QueueSnapshot
from routing.models import LiveSnapshot, QueueLive

_OFFLINE = frozenset({"unavailable", "invalid"})


class _Model(Protocol):
    def agents(self) -> list[AgentSnapshot]: ...

    def queues(self, now: float | None = None) -> dict[str, QueueSnapshot]: ...


def snapshot_from_model(
    agents: list[AgentSnapshot], queues: dict[str, QueueSnapshot], names: Collection[str]
) -> LiveSnapshot:
    """Build the routing view of ``names`` from the model's agent and queue snapshots."""
    out: dict[str, QueueLive] = {}
    for name in names:
        members = [a for a in agents if name in a.queues]
        logged_in = frozenset(a.interface for a in members if a.status not in _OFFLINE)
        free = frozenset(
            a.interface
            for a in members
            if a.status == "not_inuse" and not a.paused and not a.in_call
        )
        q = queues.get(name)
        wait = 0.0 if free else (q.longest_wait if q is not None else 0.0)
        out[name] = QueueLive(logged_in, free, wait)
    return LiveSnapshot(out)


class LiveModelState:
    """``LiveState`` over a LiveModel; ``max_age_s`` (seconds) bounds staleness."""

    def __init__(self, model: _Model, *, max_age_s: float = 0.1) -> None:
        self._model = model
        self._max_age = max_age_s
        self._cached: LiveSnapshot | None = None
        self._names: frozenset[str] = frozenset()
        self._at = 0.0

    async def snapshot(self, queues: Collection[str]) -> LiveSnapshot:
        now = time.monotonic()
        names = frozenset(queues)
        if self._cached is None or names != self._names or now - self._at > self._max_age:
            self._cached = snapshot_from_model(self._model.agents(), self._model.queues(), names)
            self._names, self._at = names, now
        return self._cached

"""``LiveState`` adapters: over the in-process live model (``callserver.core.model.LiveModel``)
and over the live hashes other instances share in Redis (``callserver.store.live_state.
RedisLiveState.live_agents()/live_calls()``, reached through a Protocol: no redis import here).

The in-process model is the freshest source on the instance that ingests the node's AMI, and the
fallback when Redis is down. Views are rebuilt at most every ``max_age_s`` seconds, so a burst of
calls costs one rebuild (one Redis read), not one per call. Estimated wait: 0 while a member is
free, else the longest current wait in the queue (a lower bound, good enough for a threshold).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from callserver.core.events import AgentSnapshot
from routing.models import LiveSnapshot, QueueLive

_OFFLINE = frozenset({"unavailable", "invalid"})


class _Model(Protocol):
    def agents(self) -> list[AgentSnapshot]: ...

    def longest_waits(self, now: float | None = None) -> dict[str, float]: ...


def snapshot_from_model(
    agents: list[AgentSnapshot], waits: Mapping[str, float], names: Collection[str]
) -> LiveSnapshot:
    """Build the routing view of ``names`` from the model's agent snapshots and the longest
    current wait per queue (seconds)."""
    out: dict[str, QueueLive] = {}
    for name in names:
        members = [a for a in agents if name in a.queues]
        logged_in = frozenset(a.interface for a in members if a.status not in _OFFLINE)
        free = frozenset(
            a.interface
            for a in members
            if a.status == "not_inuse" and not a.paused and not a.in_call
        )
        wait = 0.0 if free else waits.get(name, 0.0)
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
            self._cached = snapshot_from_model(
                self._model.agents(), self._model.longest_waits(), names
            )
            self._names, self._at = names, now
        return self._cached


class _SharedSource(Protocol):
    async def live_agents(self) -> list[dict[str, Any]]: ...

    async def live_calls(self) -> list[dict[str, Any]]: ...


def _agent(d: Mapping[str, Any]) -> AgentSnapshot | None:
    """An AgentSnapshot from its ``to_dict()`` form, or None when malformed."""
    interface, queues = d.get("interface"), d.get("queues")
    if not isinstance(interface, str) or not isinstance(queues, list | tuple):
        return None
    return AgentSnapshot(
        interface=interface, name=str(d.get("name", "")),
        queues=tuple(q for q in queues if isinstance(q, str)), status=str(d.get("status", "")),
        paused=bool(d.get("paused")), paused_reason="", in_call=bool(d.get("in_call")),
        calls_taken=0, last_call=0.0,
    )  # fmt: skip


def _waits(calls: list[dict[str, Any]], now: float) -> dict[str, float]:
    """Longest current wait (seconds) per queue among queued calls."""
    out: dict[str, float] = {}
    for c in calls:
        queue, since = c.get("queue"), c.get("queued_at")
        if c.get("state") == "queued" and isinstance(queue, str) and isinstance(since, int | float):
            out[queue] = max(out.get(queue, 0.0), now - float(since))
    return out


class SharedLiveState:
    """``LiveState`` over the shared Redis live hashes; ``max_age_s`` (seconds) bounds staleness.

    Concurrent calls share one refresh. Raises what the source raises (``LiveStateError`` when
    Redis is down): the service then uses its fallback port.
    """

    def __init__(self, source: _SharedSource, *, max_age_s: float = 0.25) -> None:
        self._source = source
        self._max_age = max_age_s
        self._cached: LiveSnapshot | None = None
        self._names: frozenset[str] = frozenset()
        self._at = 0.0
        self._lock = asyncio.Lock()

    def _fresh(self, names: frozenset[str]) -> bool:
        return (
            self._cached is not None
            and names == self._names
            and time.monotonic() - self._at <= self._max_age
        )

    async def snapshot(self, queues: Collection[str]) -> LiveSnapshot:
        names = frozenset(queues)
        async with self._lock:
            if not self._fresh(names) or self._cached is None:
                agents = [a for a in map(_agent, await self._source.live_agents()) if a]
                waits = _waits(await self._source.live_calls(), time.time())
                self._cached = snapshot_from_model(agents, waits, names)
                self._names, self._at = names, time.monotonic()
            return self._cached

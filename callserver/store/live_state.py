"""Live state in Redis for other processes: pub/sub of every domain event plus live hashes.

Writes (one owned task, never on the caller's path):

* every domain event as JSON (``event.to_json()``) on channel ``{prefix}events``: one message
  per round trip holding that batch's events as JSON lines (split on ``\n``; JSON text never
  contains a raw newline), oldest first — one PUBLISH per event cost more than the rest of
  the pipeline;
* ``{prefix}call:{id}``: hash of the call's latest snapshot (``json``, ``state``, ``queue``,
  ``agent``, ``updated_at``), member of the set ``{prefix}calls`` while live; when the call ends
  (state ``ended``/``abandoned``) it leaves the set and the hash expires after ``ended_ttl``
  seconds. Live hashes carry a long TTL too (``live_ttl``) so a crashed instance leaves no
  garbage forever; the set membership and the TTL are written when the call appears and when
  it ends, its other changes are one HSET each;
* ``{prefix}agent:{interface}``: hash of the agent's latest snapshot (``json``, ``status``,
  ``paused``, ``in_call``), member of the set ``{prefix}agents``.

``submit`` is a bus subscriber: it appends to a bounded buffer and returns. Redis down or slow:
every round trip has a deadline, the failure is logged once per outage and counted, the task
backs off and retries. Pub/sub messages missed during an outage are dropped (pub/sub is
ephemeral and has no late subscribers to serve); the latest state of every call and agent is
kept and written when Redis answers again, so the live hashes converge.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from callserver.core.backoff import Backoff
from callserver.core.buffered_worker import BufferedWorker
from callserver.core.events import (
    AgentSnapshot,
    AgentStatusChanged,
    CallEvent,
    CallSnapshot,
    DomainEvent,
    ModelResynced,
)
from callserver.store.errors import LiveStateError

log = logging.getLogger(__name__)

FINAL_STATES = frozenset({"ended", "abandoned"})
_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


@dataclass(frozen=True)
class LiveStateSettings:
    """Limits of ``RedisLiveState``; times in seconds."""

    queue_size: int = 10_000
    """Events waiting to be published; beyond it the oldest are dropped (counted)."""
    batch_size: int = 100
    """Events per pipelined round trip."""
    states_per_trip: int = 20
    """Calls (and, apart, agents) whose state one round trip writes: bounds the time one
    round trip's preparation holds the event loop (the AMI reader waits behind it)."""
    op_timeout: float = 2.0
    """Deadline of one round trip (a pipeline, or one read of ``live_calls``)."""
    close_timeout: float = 5.0
    ended_ttl: int = 60
    live_ttl: int = 6 * 3600
    retry_min: float = 0.2
    retry_max: float = 5.0
    flush_interval: float = 0.2
    """Seconds the first pending event waits for others: a call's and an agent's successive
    states within it are written once (one HSET, not one per event), in one round trip."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _call_fields(snap: CallSnapshot, at: float) -> dict[FieldT, EncodableT]:
    return {
        "json": _dumps(snap.to_dict()),
        "state": snap.state,
        "queue": snap.queue,
        "agent": snap.agent,
        "updated_at": repr(at),
    }


def _agent_fields(agent: AgentSnapshot) -> dict[FieldT, EncodableT]:
    return {
        "json": _dumps(agent.to_dict()),
        "status": agent.status,
        "paused": int(agent.paused),
        "in_call": int(agent.in_call),
    }


def _take(pending: dict[str, Any], n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the first ``n`` entries, the rest) of ``pending``, oldest first."""
    if len(pending) <= n:
        return pending, {}
    items = list(pending.items())
    return dict(items[:n]), dict(items[n:])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisLiveState(BufferedWorker):
    """Publishes domain events and keeps live hashes in Redis; see the module docstring.

    ``client`` is not owned (the composition root closes it). Metrics are plain attributes:
    ``published`` (events published), ``errors`` (failed round trips), ``dropped`` (events not
    published: buffer overflow or outage), ``connected``.
    """

    def __init__(
        self, client: aioredis.Redis, prefix: str, settings: LiveStateSettings | None = None
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._s = settings or LiveStateSettings()
        super().__init__(Backoff(self._s.retry_min, self._s.retry_max), self._s.close_timeout)
        self._outbox: deque[DomainEvent] = deque()
        self._calls: dict[str, tuple[CallSnapshot, float]] = {}
        self._agents: dict[str, AgentSnapshot] = {}
        self._closed_calls: set[str] = set()
        self._listed_calls: set[str] = set()
        """Calls this writer put in ``{prefix}calls`` with their TTL (written once, not on
        every change; forgotten after a Redis failure, so everything is written again)."""
        self._listed_agents: set[str] = set()
        self._down_logged = False
        self.published = 0
        self.errors = 0
        self.dropped = 0

    @property
    def channel(self) -> str:
        return f"{self._prefix}events"

    def submit(self, event: DomainEvent) -> None:
        """Queue ``event`` for publishing and update the pending live state (non-blocking)."""
        if len(self._outbox) >= self._s.queue_size:
            self._outbox.popleft()
            self.dropped += 1
        self._outbox.append(event)
        if isinstance(event, CallEvent):
            self._calls[event.call.id] = (event.call, event.at)
            self._closed_calls.discard(event.call.id)
        elif isinstance(event, AgentStatusChanged):
            self._agents[event.agent.interface] = event.agent
        elif isinstance(event, ModelResynced):
            for call_id in event.closed_calls:
                pending = self._calls.get(call_id)
                if pending is not None and pending[0].state in FINAL_STATES:
                    continue  # its CallEnded came first: written (final state, TTL) as usual
                self._calls.pop(call_id, None)
                self._closed_calls.add(call_id)
        self._wakeup.set()

    task_name = "redis-live-state"
    stop_when_closing_fails = True  # Redis down at shutdown: nothing more to wait for

    async def aclose(self) -> None:
        """Publish what is pending for at most ``close_timeout`` seconds, then stop."""
        if not await self._stop():
            log.warning("live state closed with %d events unpublished", len(self._outbox))

    # -- read side (any process) -----------------------------------------------------------

    async def ping(self) -> float:
        """Round trip ``PING``; returns its latency in seconds (for health checks).

        Raises LiveStateError when Redis fails or does not answer within ``op_timeout``.
        """
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._s.op_timeout):
                await self._redis.ping()
        except _REDIS_ERRORS as exc:
            raise LiveStateError(
                message=f"ping Redis: {type(exc).__name__}", operation="ping"
            ) from exc
        return time.perf_counter() - started

    async def live_calls(self) -> list[dict[str, Any]]:
        """Snapshots (``CallSnapshot.to_dict()`` form) of the calls live now, oldest first.

        Raises LiveStateError when Redis fails or does not answer within ``op_timeout``.
        """
        return sorted(
            await self._read_set("calls", "call"), key=lambda c: c.get("started_at") or 0.0
        )

    async def live_agents(self) -> list[dict[str, Any]]:
        """Snapshots (``AgentSnapshot.to_dict()`` form) of the known agents, by interface.

        Raises LiveStateError when Redis fails or does not answer within ``op_timeout``.
        """
        agents = await self._read_set("agents", "agent")
        return sorted(agents, key=lambda a: str(a.get("interface", "")))

    async def _read_set(self, set_name: str, kind: str) -> list[dict[str, Any]]:
        try:
            async with asyncio.timeout(self._s.op_timeout):
                members = await self._redis.smembers(f"{self._prefix}{set_name}")
                pipe = self._redis.pipeline(transaction=False)
                names = sorted(_text(m) for m in members)
                for name in names:
                    pipe.hget(f"{self._prefix}{kind}:{name}", "json")
                values = await pipe.execute() if names else []
        except _REDIS_ERRORS as exc:
            raise LiveStateError(
                message=f"read live {set_name}: {type(exc).__name__}", operation=set_name
            ) from exc
        return [json.loads(_text(v)) for v in values if v is not None]

    # -- the publishing task ---------------------------------------------------------------

    def _has_work(self) -> bool:
        return bool(self._outbox or self._calls or self._agents or self._closed_calls)

    async def _wait_for_batch(self) -> None:
        s = self._s
        backlog = (len(self._outbox) >= s.batch_size or len(self._calls) > s.states_per_trip
                   or len(self._agents) > s.states_per_trip)  # fmt: skip
        if not self._closing and not backlog:
            await asyncio.sleep(s.flush_interval)

    async def _probe(self) -> bool:
        try:
            await self.ping()
        except LiveStateError as exc:
            self._on_failure(exc, 0, {}, {}, set())
            return False
        return True

    async def _flush_once(self) -> bool:
        n = min(self._s.batch_size, len(self._outbox))
        events = [self._outbox.popleft() for _ in range(n)]
        calls, self._calls = _take(self._calls, self._s.states_per_trip)
        agents, self._agents = _take(self._agents, self._s.states_per_trip)
        closed, self._closed_calls = self._closed_calls, set()
        try:
            async with asyncio.timeout(self._s.op_timeout):
                await self._pipeline(events, calls, agents, closed).execute()
            self._listed(calls, agents, closed)
        except asyncio.CancelledError:
            self._merge_back(calls, agents, closed)
            raise
        except _REDIS_ERRORS as exc:
            self._on_failure(exc, len(events), calls, agents, closed)
            return False
        self.published += len(events)
        self._mark_connected()
        return True

    def _listed(self, calls: dict[str, tuple[CallSnapshot, float]],
                agents: dict[str, AgentSnapshot], closed: set[str]) -> None:  # fmt: skip
        """Remember what the round trip just written put in (or took out of) the sets."""
        for call_id, (snap, _) in calls.items():
            if snap.state in FINAL_STATES:
                self._listed_calls.discard(call_id)
            else:
                self._listed_calls.add(call_id)
        self._listed_calls -= closed
        self._listed_agents |= agents.keys()

    def _mark_connected(self) -> None:
        if not self.connected:
            if self._down_logged:
                log.info("Redis reachable again: live state resumed")
            self.connected, self._down_logged = True, False

    def _pipeline(
        self,
        events: list[DomainEvent],
        calls: dict[str, tuple[CallSnapshot, float]],
        agents: dict[str, AgentSnapshot],
        closed: set[str],
    ) -> Pipeline:
        p, pipe = self._prefix, self._redis.pipeline(transaction=False)
        if events:  # one message per round trip: the events as JSON lines, oldest first
            pipe.publish(self.channel, "\n".join(event.to_json() for event in events))
        for call_id, (snap, at) in calls.items():
            key = f"{p}call:{call_id}"
            pipe.hset(key, mapping=_call_fields(snap, at))
            if snap.state in FINAL_STATES:
                pipe.srem(f"{p}calls", call_id)
                pipe.expire(key, self._s.ended_ttl)
            elif call_id not in self._listed_calls:
                pipe.sadd(f"{p}calls", call_id)
                pipe.expire(key, self._s.live_ttl)
        for interface, agent in agents.items():
            pipe.hset(f"{p}agent:{interface}", mapping=_agent_fields(agent))
            if interface not in self._listed_agents:
                pipe.sadd(f"{p}agents", interface)
        for call_id in closed:
            pipe.srem(f"{p}calls", call_id)
            pipe.expire(f"{p}call:{call_id}", self._s.ended_ttl)
        return pipe

    def _on_failure(
        self,
        exc: BaseException,
        n_events: int,
        calls: dict[str, tuple[CallSnapshot, float]],
        agents: dict[str, AgentSnapshot],
        closed: set[str],
    ) -> None:
        """Count and log (once per outage); keep the latest state, drop the pub/sub batch."""
        self.errors += 1
        self._listed_calls.clear()  # Redis may have lost them (a restart): list them again
        self._listed_agents.clear()
        self.dropped += n_events
        self.connected = False
        self._merge_back(calls, agents, closed)
        if not self._down_logged:
            self._down_logged = True
            log.warning(
                "Redis unreachable (%s): live events not published, live state kept for retry",
                type(exc.__cause__ or exc).__name__,
            )

    def _merge_back(
        self,
        calls: dict[str, tuple[CallSnapshot, float]],
        agents: dict[str, AgentSnapshot],
        closed: set[str],
    ) -> None:
        """Put unwritten state back unless something newer arrived meanwhile."""
        self._calls = {**calls, **self._calls}
        self._agents = {**agents, **self._agents}
        self._closed_calls |= closed - self._calls.keys()
